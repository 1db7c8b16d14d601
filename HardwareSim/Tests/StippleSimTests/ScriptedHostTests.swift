import StippleSim
import StippleWire
import Testing

/// The scripted host follows PROTOCOL.md section 5: it is what the pen is tested against.
@Suite struct ScriptedHostTests {
    @Test func anUnansweredCommandIsRetransmittedThenGivenUp() {
        var host = ScriptedHost()
        host.heartbeatsEnabled = false
        host.send(.getStatus(.init()))
        let first = Array(host.poll(at: .zero).dropFirst())  // after the flush byte that opens the line
        var resent = 0
        for ms in stride(from: 50, through: 400, by: 50) {
            let bytes = host.poll(at: .zero + .milliseconds(ms))
            if bytes == first { resent += 1 }
        }
        #expect(resent == ProtocolTiming.commandRetries, "the same bytes, five times")
        #expect(host.gaveUp == [.getStatus] && host.isIdle)
    }

    @Test func stopsPreemptAndAreNeverGivenUp() {
        var host = ScriptedHost()
        host.heartbeatsEnabled = false
        host.send(.getStatus(.init()))
        _ = host.poll(at: .zero)
        host.send(.estop(.init()))
        let estop = host.poll(at: .zero + .milliseconds(1))
        #expect(swiftFrames(estop).map(\.message.id) == [.estop], "sent at once, ahead of the unanswered command")
        for ms in stride(from: 51, through: 2000, by: 50) { _ = host.poll(at: .zero + .milliseconds(ms)) }
        #expect(host.gaveUp.isEmpty && !host.isIdle, "still retrying the e-stop")
        #expect(host.retransmissions > 30)
    }

    @Test func anAckForAnotherCommandIsIgnored() {
        var host = ScriptedHost()
        host.heartbeatsEnabled = false
        host.send(.getStatus(.init()))
        let sent = swiftFrames(host.poll(at: .zero))[0]
        host.receive(FrameEncoder.encode(Frame(seq: 0, message: .ack(.init(ackedSeq: sent.seq, ackedID: MessageID.heartbeat.rawValue, status: .ok, detail: 0)))), at: .zero + .milliseconds(1))
        #expect(!host.isIdle, "same seq, other id: stale")
        host.receive(FrameEncoder.encode(Frame(seq: 1, message: .ack(.init(ackedSeq: sent.seq, ackedID: sent.message.id.rawValue, status: .ok, detail: 0)))), at: .zero + .milliseconds(2))
        #expect(host.isIdle)
    }

    @Test("H5: heartbeats follow the deadman: every 50 ms with a 150 ms deadman, every 100 ms with the default")
    func h5HeartbeatPeriodFollowsThePushedDeadman() {
        /// The times (ms) at which the host sends HEARTBEAT in its first 400 ms.
        func heartbeatTimes(deadmanMs: UInt16?) -> [Int] {
            var host = ScriptedHost()
            if let deadmanMs {
                var limits = ScriptedHost.defaultLimits
                limits.deadmanMs = deadmanMs
                host.send(.setLimits(limits))
            }
            var times: [Int] = []
            for ms in 0...400 {
                let now = MonotonicInstant.zero + .milliseconds(ms)
                for frame in swiftFrames(host.poll(at: now)) {
                    if case .heartbeat = frame.message { times.append(ms) }
                    // The pen answers at once.
                    host.receive(FrameEncoder.encode(Frame(seq: 0, message: .ack(.init(ackedSeq: frame.seq, ackedID: frame.message.id.rawValue, status: .ok, detail: 0)))), at: now)
                }
            }
            return times
        }
        #expect(heartbeatTimes(deadmanMs: 150) == [50, 100, 150, 200, 250, 300, 350, 400])
        #expect(heartbeatTimes(deadmanMs: 240) == [80, 160, 240, 320, 400])
        #expect(heartbeatTimes(deadmanMs: nil) == [100, 200, 300, 400])
    }

    func swiftFrames(_ bytes: [UInt8]) -> [Frame] {
        var decoder = FrameDecoder()
        return decoder.push(contentsOf: bytes).compactMap { if case .frame(let frame) = $0 { frame } else { nil } }
    }
}
