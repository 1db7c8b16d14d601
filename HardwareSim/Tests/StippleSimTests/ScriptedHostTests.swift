import StippleSim
import StippleWire
import Testing

/// The scripted host follows PROTOCOL.md section 5: it is what the pen is tested against.
@Suite struct ScriptedHostTests {
    @Test func anUnansweredCommandIsRetransmittedThenGivenUp() {
        var host = ScriptedHost()
        host.heartbeatsEnabled = false
        host.send(.getStatus(.init()))
        let first = host.poll(at: 0)
        var resent = 0
        for ms in stride(from: 50, through: 400, by: 50) {
            let bytes = host.poll(at: SimTime(ms) * 1000)
            if bytes == first { resent += 1 }
        }
        #expect(resent == ProtocolTiming.commandRetries, "the same bytes, five times")
        #expect(host.gaveUp == [.getStatus] && host.isIdle)
    }

    @Test func stopsPreemptAndAreNeverGivenUp() {
        var host = ScriptedHost()
        host.heartbeatsEnabled = false
        host.send(.getStatus(.init()))
        _ = host.poll(at: 0)
        host.send(.estop(.init()))
        let estop = host.poll(at: 1000)
        #expect(swiftFrames(estop).map(\.message.id) == [.estop], "sent at once, ahead of the unanswered command")
        for ms in stride(from: 51, through: 2000, by: 50) { _ = host.poll(at: SimTime(ms) * 1000) }
        #expect(host.gaveUp.isEmpty && !host.isIdle, "still retrying the e-stop")
        #expect(host.retransmissions > 30)
    }

    @Test func anAckForAnotherCommandIsIgnored() {
        var host = ScriptedHost()
        host.heartbeatsEnabled = false
        host.send(.getStatus(.init()))
        let sent = swiftFrames(host.poll(at: 0))[0]
        host.receive(FrameEncoder.encode(Frame(seq: 0, message: .ack(.init(ackedSeq: sent.seq, ackedID: MessageID.heartbeat.rawValue, status: .ok, detail: 0)))), at: 1000)
        #expect(!host.isIdle, "same seq, other id: stale")
        host.receive(FrameEncoder.encode(Frame(seq: 1, message: .ack(.init(ackedSeq: sent.seq, ackedID: sent.message.id.rawValue, status: .ok, detail: 0)))), at: 2000)
        #expect(host.isIdle)
    }

    func swiftFrames(_ bytes: [UInt8]) -> [Frame] {
        var decoder = FrameDecoder()
        return decoder.push(contentsOf: bytes).compactMap { if case .frame(let frame) = $0 { frame } else { nil } }
    }
}
