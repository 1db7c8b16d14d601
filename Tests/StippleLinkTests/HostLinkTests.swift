import StippleLink
import StippleSafety
import StippleSim
import StippleWire
import Testing

/// The host side of the protocol against the simulated pen, on a virtual clock, and alone with
/// hand-made answers for the rules that need an exact order of bytes.
@Suite struct HostLinkTests {
    /// A link and a simulated pen stepped together, 1 ms at a time.
    struct Bench {
        var link = HostLink()
        var pen = PenSimulator(config: PenConfig(), seed: 3)
        var now = MonotonicInstant.zero
        var events: [HostLink.Event] = []
        var wire: [[UInt8]] = []
        var deliverToPen = true

        mutating func run(for duration: Duration) {
            let end = now + duration
            while now < end {
                now = now + .milliseconds(1)
                let (bytes, polled) = link.poll(at: now)
                events += polled
                if !bytes.isEmpty {
                    wire.append(bytes)
                    if deliverToPen { pen.receive(bytes) }
                }
                pen.advance(to: now)
                events += link.receive(pen.takeOutput(), at: now)
            }
        }

        var acks: [(Message, AckStatus)] {
            events.compactMap { if case .acknowledged(let message, let status, _) = $0 { (message, status) } else { nil } }
        }
    }

    @Test("section 6: HELLO, then SET_LIMITS read back with a matching checksum")
    func handshakeAndLimits() throws {
        var bench = Bench()
        let limits = SafetyLimits.defaults.penLimits(layer: .upperDermis, zone: .crown)
        bench.link.send(.hello(.init(protoMajor: 1, protoMinor: 0)))
        bench.link.send(.setLimits(limits.message))
        bench.run(for: .milliseconds(100))
        let reply = try #require(bench.events.compactMap { if case .helloReply(let reply) = $0 { reply } else { nil } }.first)
        #expect(PenIdentity(reply).serial == "SIM-0001")
        let readBack = try #require(bench.events.compactMap { if case .limits(let limits) = $0 { limits } else { nil } }.last)
        #expect(readBack.limitsCRC == limits.checksum, "the pen holds exactly the limits the core decided")
        #expect(bench.acks.map(\.1) == [.ok, .ok])
    }

    @Test("H5: the idle heartbeat follows the deadman: min(100, deadman/3) ms, and the pen never trips")
    func heartbeatKeepsTheDeadmanFed() {
        var bench = Bench()
        var limits = SafetyLimits.defaults.penLimits(layer: .upperDermis, zone: .crown)
        limits.deadmanMs = 150
        bench.link.send(.hello(.init(protoMajor: 1, protoMinor: 0)))
        bench.link.send(.setLimits(limits.message))
        bench.run(for: .seconds(2))
        #expect(bench.link.heartbeatPeriod == .milliseconds(50))
        #expect(bench.pen.latchedFault == .none)
    }

    @Test("H7: a command that gets no answer is retransmitted every 50 ms, five times, then given up")
    func retransmissionAndGiveUp() {
        var bench = Bench()
        bench.deliverToPen = false
        bench.link.send(.getStatus(.init()))
        bench.run(for: .milliseconds(400))
        #expect(bench.link.statistics.retransmissions == 5)
        #expect(bench.events.contains(.gaveUp(.getStatus(.init()))))
        #expect(bench.link.isLost)
        // The same bytes each time: the pen's duplicate filter would never apply it twice.
        let first = Array(bench.wire.first?.dropFirst() ?? [])  // after the flush byte
        #expect(bench.wire.filter { $0 == first }.count == 5, "five retransmissions of the very same bytes")
    }

    @Test("H7/H12: a stop is never given up: retransmitted until acknowledged")
    func stopsAreRetriedUntilAcknowledged() {
        var bench = Bench()
        bench.deliverToPen = false
        bench.link.send(.estop(.init()))
        bench.run(for: .seconds(1))
        #expect(bench.link.statistics.retransmissions >= 19)
        #expect(bench.link.commandInFlight == .estop(.init()))
        bench.deliverToPen = true
        bench.run(for: .milliseconds(100))
        #expect(bench.acks.contains { $0.0 == .estop(.init()) && $0.1 == .ok })
        #expect(bench.pen.latchedFault == .estop)
    }

    @Test("stops preempt: the command in flight is abandoned, ESTOP goes before MOTOR_STOP before DISARM")
    func stopsPreemptInOrder() {
        var link = HostLink()
        link.send(.getStatus(.init()))
        _ = link.poll(at: .zero + .milliseconds(1))
        #expect(link.commandInFlight == .getStatus(.init()))
        link.send(.disarm(.init()))
        link.send(.motorStop(.init()))
        link.send(.estop(.init()))
        var order: [MessageID] = []
        var decoder = FrameDecoder()
        var now = MonotonicInstant.zero + .milliseconds(2)
        for _ in 0..<3 {
            let (bytes, _) = link.poll(at: now)
            for byte in bytes {
                if case .frame(let frame)? = decoder.push(byte) { order.append(frame.message.id) }
            }
            if let flight = link.commandInFlight, let seq = lastSeq(of: bytes) {
                var ack: [UInt8] = []
                FrameEncoder.encode(Frame(seq: 0, message: .ack(.init(ackedSeq: seq, ackedID: flight.id.rawValue, status: .ok, detail: 0))), appendingTo: &ack)
                _ = link.receive(ack, at: now)
            }
            now = now + .milliseconds(1)
        }
        #expect(order == [.motorStop, .estop, .disarm] || order == [.estop, .motorStop, .disarm])
        #expect(!order.contains(.getStatus), "the abandoned command is not retransmitted")
    }

    func lastSeq(of bytes: [UInt8]) -> UInt8? {
        var decoder = FrameDecoder()
        var seq: UInt8?
        for byte in bytes { if case .frame(let frame)? = decoder.push(byte) { seq = frame.seq } }
        return seq
    }

    @Test("a stale ACK (wrong seq or id) is ignored; the pen's sequence gaps are counted")
    func staleAcksAndSequenceGaps() {
        var link = HostLink()
        link.send(.getStatus(.init()))
        _ = link.poll(at: .zero + .milliseconds(1))
        var bytes: [UInt8] = []
        FrameEncoder.encode(Frame(seq: 0, message: .ack(.init(ackedSeq: 99, ackedID: MessageID.getStatus.rawValue, status: .ok, detail: 0))), appendingTo: &bytes)
        FrameEncoder.encode(Frame(seq: 4, message: .ack(.init(ackedSeq: 1, ackedID: MessageID.arm.rawValue, status: .ok, detail: 0))), appendingTo: &bytes)
        let events = link.receive(bytes, at: .zero + .milliseconds(2))
        #expect(events.isEmpty)
        #expect(link.commandInFlight == .getStatus(.init()))
        #expect(link.statistics.penFramesLost == 3)
    }

    @Test("H7: corrupted bytes are reported as rejections and never acted on")
    func garbageIsRejected() {
        var link = HostLink()
        var bytes: [UInt8] = []
        FrameEncoder.encode(Frame(seq: 0, message: .telemetry(.init(
            penTimeUs: 1, strokeCount: 1, peakProtrusionUm: 1999, strokeRateDhz: 1200, motorCurrentMa: 0, temperatureDc: 0, flags: [.motorOn]))),
            appendingTo: &bytes)
        bytes[5] ^= 0x40
        let events = link.receive(bytes, at: .zero)
        #expect(events.allSatisfy { if case .rejected = $0 { true } else { false } })
        #expect(link.statistics.framesRejected == 1)
    }

    // MARK: - What the simulator's scripted host and the conformance suite need

    @Test("H5: with heartbeats off an idle link sends nothing (a host gone silent); commands still go out")
    func heartbeatsOffSilenceAnIdleLink() {
        var bench = Bench()
        bench.link.sendsHeartbeats = false
        bench.link.send(.hello(.init(protoMajor: 1, protoMinor: 0)))
        bench.run(for: .seconds(1))
        #expect(bench.acks.map(\.0.id) == [.hello], "the HELLO, and nothing after it")
        #expect(bench.link.statistics.commandsSent == 1)
        bench.link.sendsHeartbeats = true
        bench.run(for: .milliseconds(1))
        #expect(bench.link.statistics.commandsSent == 2, "a heartbeat at once: the last frame is long past")
    }

    @Test("a link opened at an instant sends its first heartbeat one period later; the flush byte is no frame")
    func openedAtDelaysTheFirstHeartbeat() {
        var link = HostLink(openedAt: .zero)
        let first = link.poll(at: .zero + .milliseconds(1))
        #expect(first.bytes == [0], "only the flush byte")
        #expect(link.poll(at: .zero + .milliseconds(99)).bytes.isEmpty)
        let heartbeat = link.poll(at: .zero + .milliseconds(100)).bytes
        #expect(frames(heartbeat).map(\.message.id) == [.heartbeat], "a period after opening, not after the flush")
        var fresh = HostLink()
        #expect(frames(fresh.poll(at: .zero + .milliseconds(1)).bytes).map(\.message.id) == [.heartbeat], "unopened: at once")
    }

    @Test("H7: the last command's frame sent again is answered again and never applied twice")
    func lastCommandFrameIsADuplicate() throws {
        var bench = Bench()
        bench.link.send(.hello(.init(protoMajor: 1, protoMinor: 0)))
        bench.link.send(.getStatus(.init()))
        bench.run(for: .milliseconds(20))
        let copy = bench.link.lastCommandFrame
        #expect(frames(copy).map(\.message.id) == [.getStatus])
        let applied = bench.pen.commandsApplied
        bench.pen.receive(copy)
        bench.run(for: .milliseconds(5))
        #expect(bench.pen.commandsApplied == applied, "a duplicate")
    }

    @Test("receiveFrames: every frame with its event; a stale ACK is a frame without one; the link changes as with receive")
    func receiveFramesShowsEveryFrame() {
        var link = HostLink()
        link.send(.getStatus(.init()))
        let sent = frames(link.poll(at: .zero + .milliseconds(1)).bytes)[0]
        var bytes: [UInt8] = []
        FrameEncoder.encode(Frame(seq: 0, message: .ack(.init(ackedSeq: sent.seq, ackedID: MessageID.arm.rawValue, status: .ok, detail: 0))), appendingTo: &bytes)
        FrameEncoder.encode(Frame(seq: 1, message: .ack(.init(ackedSeq: sent.seq, ackedID: sent.message.id.rawValue, status: .ok, detail: 0))), appendingTo: &bytes)
        bytes += [0x13, 0x37, 0x00]
        let arrivals = link.receiveFrames(bytes, at: .zero + .milliseconds(2))
        #expect(arrivals.count == 3)
        if case .frame(let stale, nil) = arrivals[0] { #expect(stale.seq == 0) } else { Issue.record("stale ACK: \(arrivals[0])") }
        #expect(arrivals[1] == .frame(frames(bytes)[1], .acknowledged(.getStatus(.init()), status: .ok, detail: 0)))
        if case .rejected = arrivals[2] {} else { Issue.record("garbage: \(arrivals[2])") }
        #expect(link.isIdle && link.statistics.framesReceived == 2 && link.statistics.framesRejected == 1)
    }

    func frames(_ bytes: [UInt8]) -> [Frame] {
        var decoder = FrameDecoder()
        return decoder.push(contentsOf: bytes).compactMap { if case .frame(let frame) = $0 { frame } else { nil } }
    }

    @Test("wire units become the core's: 65535 µm is not measured, tenths of a hertz, flags")
    func conversions() {
        let telemetry = Message.Telemetry(penTimeUs: 0, strokeCount: 9, peakProtrusionUm: 0xFFFF, strokeRateDhz: 1234,
                                          motorCurrentMa: 0, temperatureDc: 0, flags: [.motorOn, .estopPressed])
        let sample = TelemetrySample(telemetry)
        #expect(sample.peakProtrusionUm == nil && sample.strokeRateHz == 123.4 && sample.motorOn && sample.estopPressed)
        #expect(!sample.cartridgePresent && !sample.pedalPressed)
        #expect(Message.SetSetpoints(Setpoint(layer: .epidermis, depthUm: 300, rateHz: 120.04)) == Message.SetSetpoints(depthUm: 300, rateDhz: 1200))
    }

    @Test("H11: a stop drops every ARM and MOTOR_RUN still queued behind the command in flight")
    func aStopDropsQueuedArming() {
        var link = HostLink()
        link.send(.getStatus(.init()))
        _ = link.poll(at: .zero + .milliseconds(1))
        link.send(.arm(.init(limitsCRC: 1)))
        link.send(.motorRun(.init()))
        link.send(.disarm(.init()))
        var sent: [MessageID] = []
        var decoder = FrameDecoder()
        var now = MonotonicInstant.zero + .milliseconds(2)
        for _ in 0..<6 {
            let (bytes, _) = link.poll(at: now)
            for byte in bytes { if case .frame(let frame)? = decoder.push(byte) { sent.append(frame.message.id) } }
            if let flight = link.commandInFlight, let seq = lastSeq(of: bytes) {
                var ack: [UInt8] = []
                FrameEncoder.encode(Frame(seq: 0, message: .ack(.init(ackedSeq: seq, ackedID: flight.id.rawValue, status: .ok, detail: 0))), appendingTo: &ack)
                _ = link.receive(ack, at: now)
            }
            now = now + .milliseconds(60)
        }
        #expect(sent.contains(.disarm))
        #expect(!sent.contains(.arm) && !sent.contains(.motorRun), "\(sent)")
    }
}
