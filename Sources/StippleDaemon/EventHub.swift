import Foundation
import StippleSupervision
import Synchronization

/// Fans events out to every open event stream without ever waiting for one.
///
/// Each subscriber has a bounded buffer that keeps the newest lines, so a slow or stalled client
/// loses events (and is told so by a gap in `id`) but never delays the supervisor. Telemetry is
/// decimated per subscriber (10 Hz unless it asked for full rate) and is only encoded when some
/// subscriber takes the frame. Waking a stream's task costs a thread hand-over, so a stream is
/// woken at once for state changes, faults and warnings, but for telemetry at most once per
/// `telemetryWakeInterval`: a full-rate engineer's stream at 1 kHz gets its frames in batches,
/// and the supervisor's thread is not taken from the pen for every frame of every stream. The
/// supervisor's tick (`tick()`) delivers whatever a batch left behind, on the same schedule.
/// Readers are resumed after every lock is released, and a batch is joined into text on the
/// reader's side, not the supervisor's.
public final class EventHub: Sendable {
    public static let telemetryInterval = Duration.milliseconds(100)
    public static let telemetryWakeInterval = Duration.milliseconds(25)
    public static let bufferSize = 256

    private struct State {
        var next = 0
        var seq: Int64 = 0
        var sinks: [Int: Sink] = [:]
        var lastKeepalive: ContinuousClock.Instant?
        /// After `finishAll()`: a stream opened now ends at once.
        var closed = false
    }

    private let state = Mutex(State())
    /// Whether any stream is open, read without the lock by the supervisor for every frame and
    /// tick: most of the time nobody watches.
    private let anyStream = Atomic<Bool>(false)

    public init() {}

    public var subscriberCount: Int { state.withLock { $0.sinks.count } }

    /// A new stream of event lines; `onTermination` runs once when it ends (the client went
    /// away, its task was cancelled, or the hub finished).
    public func subscribe(fullRate: Bool, onTermination: @escaping @Sendable () -> Void = {}) -> Subscription {
        let sink = Sink(fullRate: fullRate)
        let id = state.withLock { state -> Int? in
            guard !state.closed else { return nil }
            let id = state.next
            state.next += 1
            state.sinks[id] = sink
            anyStream.store(true, ordering: .relaxed)
            return id
        }
        if id == nil { sink.finish() }  // shutting down: the stream ends after its first event
        return Subscription(sink: sink) { [weak self] in
            if let id { self?.remove(id) }
            onTermination()
        }
    }

    private func remove(_ id: Int) {
        state.withLock { state in
            state.sinks.removeValue(forKey: id)
            anyStream.store(!state.sinks.isEmpty, ordering: .relaxed)
        }
    }

    /// A state change, fault, warning, pen, session or link event: every stream, at once.
    public func publish(_ event: DaemonEvent) {
        let wakes = state.withLock { state -> [Sink.Wake] in
            state.seq += 1
            let line = Self.line(seq: state.seq, kind: event.kind, json: event.json)
            return state.sinks.values.compactMap { $0.append(line) }
        }
        for wake in wakes { wake.resume() }
    }

    /// A telemetry frame: `encode` (the event's JSON) runs only if some stream takes this frame.
    public func publishTelemetry(at now: ContinuousClock.Instant = .now, _ encode: () -> String) {
        guard anyStream.load(ordering: .relaxed) else { return }
        let wakes = state.withLock { state -> [Sink.Wake] in
            var line: String?
            var wakes: [Sink.Wake] = []
            for sink in state.sinks.values where sink.takesTelemetry(at: now) {
                if line == nil {
                    state.seq += 1
                    line = Self.line(seq: state.seq, kind: .telemetry, json: encode())
                }
                if let wake = sink.appendTelemetry(line!, at: now) { wakes.append(wake) }
            }
            return wakes
        }
        for wake in wakes { wake.resume() }
    }

    /// The supervisor's tick: delivers telemetry a batch left waiting (no sooner than the wake
    /// interval allows), and once a second a comment line to every stream with nothing else
    /// waiting, so that a client that died is noticed by the failed write even when no event
    /// flows, and no idle timeout cuts a quiet stream.
    public func tick(at now: @autoclosure () -> ContinuousClock.Instant = .now) {
        guard anyStream.load(ordering: .relaxed) else { return }
        let now = now()
        let wakes = state.withLock { state -> [Sink.Wake] in
            let keepalive = state.lastKeepalive.map { now - $0 >= .seconds(1) } ?? true
            if keepalive { state.lastKeepalive = now }
            return state.sinks.values.compactMap { $0.tick(at: now, keepalive: keepalive) }
        }
        for wake in wakes { wake.resume() }
    }

    /// Ends every stream, and any opened later (shutdown).
    public func finishAll() {
        let sinks = state.withLock { state in
            defer {
                state.sinks.removeAll()
                state.closed = true
                anyStream.store(false, ordering: .relaxed)
            }
            return Array(state.sinks.values)
        }
        for sink in sinks { sink.finish() }
    }

    static func line(seq: Int64, kind: DaemonEvent.Kind, json: String) -> String {
        "id: \(seq)\nevent: \(kind.rawValue)\ndata: \(json)\n\n"
    }

    // MARK: - One stream

    /// One stream's buffer and its reader's wake-up.
    final class Sink: Sendable {
        /// A reader to resume, with what it is given: resumed once every lock is released.
        struct Wake {
            let waiter: CheckedContinuation<[String]?, Never>
            let lines: [String]
            func resume() { waiter.resume(returning: lines) }
        }

        private struct State {
            var lines = LineRing(capacity: EventHub.bufferSize)
            var waiter: CheckedContinuation<[String]?, Never>?
            var finished = false
            var lastTelemetry: ContinuousClock.Instant?
            var lastWake: ContinuousClock.Instant?

            /// The waiting reader and everything buffered, if a reader waits and there is anything.
            mutating func takeBatch() -> Wake? {
                guard let waiter, !lines.isEmpty else { return nil }
                self.waiter = nil
                return Wake(waiter: waiter, lines: lines.drain())
            }
        }

        let fullRate: Bool
        private let state = Mutex(State())

        init(fullRate: Bool) { self.fullRate = fullRate }

        func takesTelemetry(at now: ContinuousClock.Instant) -> Bool {
            fullRate || state.withLock { state in state.lastTelemetry.map { now - $0 >= EventHub.telemetryInterval } ?? true }
        }

        /// An event that goes out at once.
        func append(_ line: String) -> Wake? {
            state.withLock { state in
                guard !state.finished else { return nil }
                state.lines.append(line)
                return state.takeBatch()
            }
        }

        func appendTelemetry(_ line: String, at now: ContinuousClock.Instant) -> Wake? {
            state.withLock { state in
                guard !state.finished else { return nil }
                state.lastTelemetry = now
                state.lines.append(line)
                return Self.wakeIfDue(&state, at: now)
            }
        }

        func tick(at now: ContinuousClock.Instant, keepalive: Bool) -> Wake? {
            state.withLock { state in
                guard !state.finished else { return nil }
                // A keepalive only where nothing else waits: it never pushes out an event.
                if keepalive && state.lines.isEmpty {
                    state.lines.append(": keepalive\n\n")
                    return state.takeBatch()
                }
                return Self.wakeIfDue(&state, at: now)
            }
        }

        private static func wakeIfDue(_ state: inout State, at now: ContinuousClock.Instant) -> Wake? {
            guard state.waiter != nil, state.lastWake.map({ now - $0 >= EventHub.telemetryWakeInterval }) ?? true else { return nil }
            let wake = state.takeBatch()
            if wake != nil { state.lastWake = now }
            return wake
        }

        func finish() {
            let waiter = state.withLock { state in
                state.finished = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }

        /// The next batch of lines; nil once finished (lines buffered before are still given).
        func next() async -> [String]? {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let (ready, displaced) = state.withLock { state -> ([String]??, CheckedContinuation<[String]?, Never>?) in
                        if !state.lines.isEmpty { return (.some(state.lines.drain()), nil) }
                        if state.finished { return (.some(nil), nil) }
                        // One reader at a time: a second reader ends the stream for both
                        // (nobody is left waiting forever).
                        let displaced = state.waiter
                        state.waiter = continuation
                        return (nil, displaced)
                    }
                    displaced?.resume(returning: nil)
                    if let ready { continuation.resume(returning: ready) }
                }
            } onCancel: {
                finish()
            }
        }
    }

    /// An open event stream: batches of Server-Sent Event lines, in order. Ends when the hub
    /// finishes or the reading task is cancelled; dropping it unsubscribes.
    public final class Subscription: AsyncSequence, Sendable {
        public typealias Element = String
        private let sink: Sink
        private let ended: Mutex<(@Sendable () -> Void)?>

        init(sink: Sink, onEnd: @escaping @Sendable () -> Void) {
            self.sink = sink
            ended = Mutex(onEnd)
        }

        deinit { end() }

        /// Unsubscribes (once); the stream ends.
        public func end() {
            sink.finish()
            ended.withLock { $0.take() }?()
        }

        public struct AsyncIterator: AsyncIteratorProtocol {
            let subscription: Subscription
            public mutating func next() async -> String? {
                guard let batch = await subscription.sink.next() else {
                    subscription.end()
                    return nil
                }
                return batch.joined()
            }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(subscription: self) }
    }
}

/// The newest `capacity` lines, oldest first: appending to a full ring drops the oldest in
/// constant time (a stalled full-rate stream costs the supervisor no shifting).
struct LineRing {
    private var storage: [String] = []
    private var start = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    var isEmpty: Bool { storage.isEmpty }

    mutating func append(_ line: String) {
        if storage.count < capacity {
            storage.append(line)
        } else {
            storage[start] = line
            start = (start + 1) % capacity
        }
    }

    /// Everything, oldest first; the ring is empty afterwards.
    mutating func drain() -> [String] {
        defer { storage = []; start = 0 }
        return start == 0 ? storage : Array(storage[start...] + storage[..<start])
    }
}
