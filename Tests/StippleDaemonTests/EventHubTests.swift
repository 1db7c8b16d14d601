import Foundation
@testable import StippleDaemon
import StippleSafety
import StippleSupervision
import Synchronization
import Testing

/// The event hub never waits for a stream and never lets one cost the supervisor more than it
/// must: state events at once, telemetry decimated, encoded only when taken, and delivered in
/// batches; a stalled stream keeps only the newest lines; every way a stream ends unsubscribes.
@Suite struct EventHubTests {
    static func ids(_ text: String) -> [Int] {
        text.split(separator: "\n").compactMap { $0.hasPrefix("id: ") ? Int($0.dropFirst(4)) : nil }
    }

    @Test("state events reach every stream at once and in order, with increasing ids")
    func stateEventsAtOnce() async {
        let hub = EventHub()
        let first = hub.subscribe(fullRate: false)
        let second = hub.subscribe(fullRate: true)
        // The readers wait before anything is published: only a wake-up can bring the event.
        async let a = first.makeAsyncIterator().nextBatch()
        async let b = second.makeAsyncIterator().nextBatch()
        try? await Task.sleep(for: .milliseconds(20))
        hub.publish(DaemonEvent(.fault, ["reason": "over_depth"]))
        let (lineA, lineB) = await (a, b)
        #expect(lineA == lineB)
        #expect(lineA?.contains("event: fault\ndata: {\"reason\":\"over_depth\",\"type\":\"fault\"}") == true)
        hub.publish(DaemonEvent(.state, ["phase": "faulted"]))
        hub.publish(DaemonEvent(.warning, ["kind": "session_time"]))
        var iterator = first.makeAsyncIterator()
        let batch = await iterator.next() ?? ""
        #expect(Self.ids(batch) == [2, 3])
    }

    @Test("telemetry is decimated to 10 Hz unless a stream asks for every frame, and encoded only when taken")
    func telemetryDecimation() async throws {
        let hub = EventHub()
        let encodings = Mutex(0)
        var start = ContinuousClock.now
        func publishSecond() {
            defer { start += .seconds(1) }
            for millisecond in 0..<1000 {
                hub.publishTelemetry(at: start + .milliseconds(millisecond)) {
                    encodings.withLock { $0 += 1 }
                    return #"{"type":"telemetry"}"#
                }
            }
        }
        publishSecond()
        #expect(encodings.withLock { $0 } == 0, "no stream: no frame is encoded")

        let decimated = hub.subscribe(fullRate: false)
        publishSecond()
        #expect(encodings.withLock { $0 } == 10)
        var iterator = decimated.makeAsyncIterator()
        #expect(Self.ids(await iterator.next() ?? "").count == 10)

        let full = hub.subscribe(fullRate: true)
        encodings.withLock { $0 = 0 }
        publishSecond()
        #expect(encodings.withLock { $0 } == 1000, "encoded once per frame, however many streams take it")
        var fullIterator = full.makeAsyncIterator()
        var lines: [Int] = []
        while lines.count < 256 { lines += Self.ids(await fullIterator.next() ?? "") }
        #expect(lines.count == EventHub.bufferSize, "nobody read during the second: the newest lines are kept")
        let decimatedLines = Self.ids(await iterator.next() ?? "")
        #expect(decimatedLines.count == 10, "the decimated stream still gets its 10 Hz beside a full-rate one")
        let newest = try #require(lines.last)
        #expect(decimatedLines.allSatisfy { (newest - 999)...newest ~= $0 }, "one id per frame, shared by every stream that takes it")
        _ = (decimated, full)
    }

    @Test("telemetry wakes a waiting stream at most once per wake interval; the tick delivers the rest; a state event goes at once")
    func telemetryBatches() async throws {
        let hub = EventHub()
        let stream = hub.subscribe(fullRate: true)
        let received = Shared<[String]>([])
        let reader = Task { [stream] in
            for await batch in stream { received.withLock { $0.append(batch) } }
        }
        defer { reader.cancel() }
        func waitFor(_ count: Int) async throws {
            for _ in 0..<500 where received.withLock({ $0.count }) < count { try await Task.sleep(for: .milliseconds(2)) }
            #expect(received.withLock { $0.count } == count)
        }
        let start = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(20))
        hub.publishTelemetry(at: start) { "{}" }
        try await waitFor(1)
        for millisecond in 1..<10 { hub.publishTelemetry(at: start + .milliseconds(millisecond)) { "{}" } }
        try await Task.sleep(for: .milliseconds(50))
        #expect(received.withLock { $0.count } == 1, "frames within the wake interval wait for a batch")
        hub.tick(at: start + .milliseconds(10))
        try await Task.sleep(for: .milliseconds(50))
        #expect(received.withLock { $0.count } == 1, "the tick, too, wakes a stream no sooner than the wake interval")
        hub.tick(at: start + EventHub.telemetryWakeInterval)
        try await waitFor(2)
        #expect(Self.ids(received.withLock { $0[1] }).count >= 9, "the tick delivered the waiting frames in one batch")
        hub.publish(DaemonEvent(.state, ["phase": "faulted"]))
        try await waitFor(3)
        #expect(received.withLock { $0[2] }.contains("event: state"))
    }

    @Test("a stream that ends — dropped, cancelled or finished — unsubscribes and tells its owner once")
    func streamsEnd() async throws {
        let hub = EventHub()
        let ended = Shared(0)
        do {
            _ = hub.subscribe(fullRate: true) { ended.withLock { $0 += 1 } }
        }
        #expect(hub.subscriberCount == 0)
        #expect(ended.withLock { $0 } == 1, "a dropped subscription ends")

        let cancelled = hub.subscribe(fullRate: false) { ended.withLock { $0 += 1 } }
        let reader = Task { for await _ in cancelled {} }
        try await Task.sleep(for: .milliseconds(20))
        reader.cancel()
        await reader.value
        cancelled.end()
        #expect(ended.withLock { $0 } == 2, "a cancelled reader ends the stream, once")
        #expect(hub.subscriberCount == 0)

        let finished = hub.subscribe(fullRate: false) { ended.withLock { $0 += 1 } }
        hub.publish(DaemonEvent(.session, ["state": "closed"]))
        hub.finishAll()
        var batches: [String] = []
        for await batch in finished { batches.append(batch) }
        #expect(batches.count == 1, "lines published before the finish are still given")
        #expect(ended.withLock { $0 } == 3)
        hub.publish(DaemonEvent(.session, ["state": "open"]))  // nobody left: nothing happens
    }

    @Test("a stream opened during shutdown ends at once; a second reader ends the stream instead of waiting forever")
    func shutdownAndMisuse() async throws {
        let hub = EventHub()
        let reading = hub.subscribe(fullRate: false)
        let first = Task { [reading] in
            var iterator = reading.makeAsyncIterator()
            return await iterator.next()
        }
        try await Task.sleep(for: .milliseconds(20))
        var second = reading.makeAsyncIterator()
        #expect(await second.next() == nil)
        #expect(await first.value == nil)

        hub.finishAll()
        let ended = Shared(false)
        let late = hub.subscribe(fullRate: true) { ended.withLock { $0 = true } }
        var iterator = late.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        #expect(ended.withLock { $0 } && hub.subscriberCount == 0)
    }

    @Test("the ring keeps the newest lines, oldest first, through any number of wraps")
    func lineRing() {
        var ring = LineRing(capacity: 4)
        #expect(ring.isEmpty && ring.drain().isEmpty)
        for count in [1, 4, 5, 11] {
            for index in 0..<count { ring.append("\(index)") }
            #expect(ring.drain() == (max(0, count - 4)..<count).map { "\($0)" }, "\(count) lines")
            #expect(ring.isEmpty)
        }
    }

    @Test("the stream's first event is the whole status, with the type every event carries")
    func statusEvent() async throws {
        let rig = try await DaemonRig()
        let status = await rig.supervisor.status()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let plain = try #require(try JSONSerialization.jsonObject(with: encoder.encode(status)) as? [String: Any])
        let event = try #require(try JSONSerialization.jsonObject(with: encoder.encode(Routes.StatusEvent(status: status))) as? [String: Any])
        #expect(event["type"] as? String == "status")
        #expect(Set(event.keys) == Set(plain.keys).union(["type"]), "every field of the status, and type")
        #expect(event["phase"] as? String == status.phase)
    }

    @Test("the hand-built telemetry event is the JSON a client expects, nulls for what the pen did not measure")
    func telemetryJSON() throws {
        let sample = TelemetrySample(peakProtrusionUm: 812, strokeRateHz: 120.5, motorOn: true, pedalPressed: true)
        let text = Supervisor.telemetryJSON(sample: sample, currentMa: 310, temperatureC: 31.5, sessionTimeMs: 65_000)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["type"] as? String == "telemetry")
        #expect(object["depth_um"] as? Int == 812)
        #expect(object["rate_hz"] as? Double == 120.5)
        #expect(object["motor_on"] as? Bool == true && object["pedal"] as? Bool == true)
        #expect(object["current_ma"] as? Int == 310 && object["temperature_c"] as? Double == 31.5)
        #expect(object["session_time_ms"] as? Int == 65_000)

        let unmeasured = TelemetrySample(peakProtrusionUm: nil, strokeRateHz: .nan, motorOn: false, pedalPressed: false)
        let nulls = Supervisor.telemetryJSON(sample: unmeasured, currentMa: nil, temperatureC: .infinity, sessionTimeMs: 0)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(nulls.utf8)) as? [String: Any])
        for key in ["depth_um", "rate_hz", "current_ma", "temperature_c"] { #expect(parsed[key] is NSNull, "\(key)") }
    }
}

/// A value tests share with escaping closures.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}

extension EventHub.Subscription.AsyncIterator {
    /// One batch, from an iterator that is not kept.
    func nextBatch() async -> String? {
        var copy = self
        return await copy.next()
    }
}
