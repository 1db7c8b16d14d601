import StippleWire
import StippleWireC
import Testing

/// Corrections of the 1.0 text made before its first release (PROTOCOL.md section 9): the
/// deadman range and the heartbeat period tied to it, and the non-empty HELLO_REPLY serial.
@Suite struct ProtocolCorrectionTests {
    static func helloReply(serial: FixedText<16>) -> Message {
        .helloReply(.init(protoMajor: 1, protoMinor: 0, fwMajor: 1, fwMinor: 0, fwPatch: 0, capabilities: [.depthSensor],
                          serial: serial, limitsCRC: 0, depthCeilingUm: 2000))
    }

    @Test("H8: an empty HELLO_REPLY serial is rejected as bad_field (serial), by Swift and C alike")
    func h8EmptySerialIsRejected() throws {
        let wire = FrameEncoder.encode(Frame(seq: 3, message: Self.helloReply(serial: "")))
        let outputs = swiftDecode(wire)
        let rejection = try #require(outputs.first?.rejection, "\(outputs)")
        #expect(rejection.reason == .badField && rejection.field == "serial" && rejection.messageID == .helloReply && rejection.seq == 3)
        #expect(cDecode(wire).map(\.result) == ["bad_field"])
        var decoder = stw_decoder()
        stw_decoder_init(&decoder)
        var frame = stw_frame()
        var last = STW_NONE
        for byte in wire { last = stw_decoder_push(&decoder, byte, &frame) }
        #expect(last == STW_REJECT_BAD_FIELD && frame.detail == 6, "serial is field 6 of hello_reply")
        // One printable character is enough.
        let one = FrameEncoder.encode(Frame(seq: 4, message: Self.helloReply(serial: "X")))
        #expect(swiftDecode(one).first?.frame?.message == Self.helloReply(serial: "X"))
        #expect(cDecode(one).map(\.result) == ["frame"])
    }

    @Test("H5: deadman_ms below 150 is outside the protocol range; 150 is its floor")
    func h5DeadmanRangeStartsAt150() throws {
        var limits = Message.SetLimits(depthMinUm: 400, depthMaxUm: 1000, depthTripUm: 1100, rateMinDhz: 500, rateMaxDhz: 1500,
                                       rateStallDhz: 400, rateRunawayDhz: 1600, deadmanMs: 149)
        let low = FrameEncoder.encode(Frame(seq: 1, message: .setLimits(limits)))
        #expect(swiftDecode(low).first?.rejection?.field == "deadman_ms")
        #expect(cDecode(low).map(\.result) == ["bad_field"])
        limits.deadmanMs = 150
        let floor = FrameEncoder.encode(Frame(seq: 1, message: .setLimits(limits)))
        #expect(swiftDecode(floor).first?.frame != nil)
        #expect(cDecode(floor).map(\.result) == ["frame"])
        #expect(ProtocolTiming.deadmanRangeMs == 150...1000)
        #expect(MessageSchema.messages.first { $0.id == .limits }?.fields.first { $0.name == "deadman_ms" }?.range == 150...1000)
        #expect(throws: FieldValueError.self) {
            _ = try Message.make(name: "set_limits", fields: [
                "depth_min_um": "400", "depth_max_um": "1000", "depth_trip_um": "1100", "rate_min_dhz": "500", "rate_max_dhz": "1500",
                "rate_stall_dhz": "400", "rate_runaway_dhz": "1600", "deadman_ms": "50",
            ])
        }
    }

    @Test("H5: the heartbeat period is min(100, deadman_ms / 3), in Swift and C")
    func h5HeartbeatFollowsTheDeadman() {
        #expect(ProtocolTiming.hostHeartbeatDeadmanDivisor == 3)
        for deadman in ProtocolTiming.deadmanRangeMs {
            let period = ProtocolTiming.hostHeartbeatPeriodMs(deadmanMs: deadman)
            #expect(period == min(ProtocolTiming.hostIdleHeartbeatMs, deadman / 3))
            // Two consecutive lost frames leave a gap of three periods, never more than the deadman.
            #expect(3 * period <= deadman)
        }
        #expect(ProtocolTiming.hostHeartbeatPeriodMs(deadmanMs: 150) == 50)
        #expect(ProtocolTiming.hostHeartbeatPeriodMs(deadmanMs: 300) == 100)
    }
}
