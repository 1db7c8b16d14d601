import StippleGPIO
import StippleLink
import StippleWire
import Testing

/// The pen firmware core as a GPIO pen runs it in the daemon (PROTOCOL.md section 7), on its own —
/// without lines, without the supervisor. The same rules against HardwareSim's GPIO pen model,
/// through the supervisor and the safety core, are in StippleDaemonTests (GPIOPenHazardTests).
@Suite struct GPIOPenFirmwareTests {
    static func t(_ ms: Double) -> MonotonicInstant { MonotonicInstant(nanoseconds: Int64(ms * 1_000_000)) }
    static let limits = Message.SetLimits(depthMinUm: 400, depthMaxUm: 1000, depthTripUm: 1100, rateMinDhz: 500, rateMaxDhz: 1500,
                                          rateStallDhz: 400, rateRunawayDhz: 1600, deadmanMs: 300)

    static func boot(pedal: Bool = false, estop: Bool = false) -> GPIOPenFirmware {
        GPIOPenFirmware(serial: "GP-0001", hasStatusLED: true, tachometerSpacing: .zero, pedal: pedal, estop: estop, overDepth: false, at: t(0))
    }

    static func acks(_ events: [HostLink.Event]) -> [String] {
        events.compactMap { event in
            if case .acknowledged(let message, let status, _) = event { "\(message.id) \(status)" } else { nil }
        }
    }

    static func faults(_ events: [HostLink.Event]) -> [FaultCode] {
        events.compactMap { event in if case .fault(let fault) = event { fault.code } else { nil } }
    }

    /// HELLO, SET_LIMITS, SET_SETPOINTS, ARM, MOTOR_RUN, as the supervisor sends them.
    static func armed(at ms: Double = 1) -> GPIOPenFirmware {
        var pen = boot()
        pen.command(.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor)), at: t(ms))
        pen.command(.setLimits(limits), at: t(ms))
        pen.command(.setSetpoints(.init(depthUm: 800, rateDhz: 1200)), at: t(ms))
        pen.command(.arm(.init(limitsCRC: limits.checksum)), at: t(ms))
        pen.command(.motorRun(.init()), at: t(ms))
        return pen
    }

    @Test("the handshake names the pen, reads back the limits' checksum, and says it has no depth sensor or cartridge reader")
    func handshake() throws {
        var pen = Self.boot()
        #expect(pen.state == .boot && !pen.motorEnable)
        pen.command(.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor)), at: Self.t(1))
        pen.command(.setLimits(Self.limits), at: Self.t(1))
        let events = pen.takeEvents()
        let reply = try #require(events.compactMap { if case .helloReply(let r) = $0 { r } else { nil } }.first)
        #expect(reply.serial.string == "GP-0001" && reply.protoMajor == ProtocolVersion.major)
        #expect(!reply.capabilities.contains(.depthSensor) && !reply.capabilities.contains(.cartridgeReader))
        #expect(reply.capabilities.contains(.estopInput) && reply.capabilities.contains(.identifyLed))
        let readBack = try #require(events.compactMap { if case .limits(let l) = $0 { l } else { nil } }.first)
        #expect(readBack.limitsCRC == Self.limits.checksum && readBack.deadmanMs == 300)
        #expect(Self.acks(events) == ["hello ok", "set_limits ok"])
    }

    @Test("H11: the motor line is active only while armed, run-enabled and the pedal pressed; ARM is refused with the pedal down")
    func neverWithoutArmAndPedal() {
        var pen = Self.boot()
        pen.input(GPIOEdge(line: .pedal, active: true, time: Self.t(1)))
        #expect(!pen.motorEnable, "a pedal at boot moves nothing")
        pen.command(.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor)), at: Self.t(2))
        pen.command(.setLimits(Self.limits), at: Self.t(2))
        pen.command(.setSetpoints(.init(depthUm: 800, rateDhz: 1200)), at: Self.t(2))
        _ = pen.takeEvents()
        pen.command(.arm(.init(limitsCRC: Self.limits.checksum)), at: Self.t(3))
        let events17 = pen.takeEvents()
        #expect(Self.acks(events17) == ["arm pedal_pressed"])
        pen.input(GPIOEdge(line: .pedal, active: false, time: Self.t(4)))
        pen.command(.arm(.init(limitsCRC: Self.limits.checksum)), at: Self.t(5))
        #expect(!pen.motorEnable, "armed, not run-enabled")
        pen.input(GPIOEdge(line: .pedal, active: true, time: Self.t(6)))
        #expect(!pen.motorEnable, "no MOTOR_RUN yet")
        pen.command(.motorRun(.init()), at: Self.t(7))
        #expect(pen.motorEnable && pen.statusLED && pen.state == .running)
        pen.input(GPIOEdge(line: .pedal, active: false, time: Self.t(8)))
        #expect(!pen.motorEnable && pen.state == .armed)
        pen.command(.motorStop(.init()), at: Self.t(9))
        pen.input(GPIOEdge(line: .pedal, active: true, time: Self.t(10)))
        #expect(!pen.motorEnable, "MOTOR_STOP ends the run enable")
    }

    @Test("H12: the e-stop line latches in every state, once; clearing waits until it is released")
    func estopLatchesOnce() {
        var pen = Self.armed()
        pen.input(GPIOEdge(line: .pedal, active: true, time: Self.t(10)))
        #expect(pen.motorEnable)
        _ = pen.takeEvents()
        pen.input(GPIOEdge(line: .estop, active: true, time: Self.t(20)))
        #expect(!pen.motorEnable && !pen.armed && pen.estopLatched)
        let events18 = pen.takeEvents()
        #expect(Self.faults(events18) == [.estop])
        pen.input(GPIOEdge(line: .estop, active: false, time: Self.t(30)))
        pen.input(GPIOEdge(line: .estop, active: true, time: Self.t(40)))
        pen.command(.estop(.init()), at: Self.t(41))
        let events19 = pen.takeEvents()
        #expect(Self.faults(events19).isEmpty, "no second FAULT")
        pen.command(.clearFault(.init()), at: Self.t(50))
        let events20 = pen.takeEvents()
        #expect(Self.acks(events20) == ["clear_fault condition_persists"])
        pen.input(GPIOEdge(line: .estop, active: false, time: Self.t(60)))
        pen.command(.clearFault(.init()), at: Self.t(61))
        let events21 = pen.takeEvents()
        #expect(Self.acks(events21) == ["clear_fault ok"])
        #expect(!pen.estopLatched && !pen.armed && !pen.motorEnable, "clearing never re-arms")
        var idle = Self.boot(estop: true)
        let events22 = idle.takeEvents()
        #expect(idle.estopLatched && Self.faults(events22) == [.estop], "pressed at boot: latched at once")
    }

    @Test("H1: the over-depth switch stops the motor within the stroke and latches")
    func overDepthSwitch() {
        var pen = Self.armed()
        pen.input(GPIOEdge(line: .pedal, active: true, time: Self.t(10)))
        _ = pen.takeEvents()
        pen.input(GPIOEdge(line: .overDepth, active: true, time: Self.t(30)))
        #expect(!pen.motorEnable && pen.fault == .overDepth)
        let events = pen.takeEvents()
        #expect(Self.faults(events) == [.overDepth])
        pen.command(.clearFault(.init()), at: Self.t(31))
        let events23 = pen.takeEvents()
        #expect(Self.acks(events23) == ["clear_fault condition_persists"], "the switch is still closed")
    }

    @Test("H3: a stroke interval shorter than the runaway rate latches at once, spin-up or not")
    func runaway() {
        var pen = Self.armed()
        pen.input(GPIOEdge(line: .pedal, active: true, time: Self.t(10)))
        for stroke in 0..<3 { pen.input(GPIOEdge(line: .tachometer, active: true, time: Self.t(11 + Double(stroke) * 6))) }  // 166.7 Hz
        #expect(pen.fault == .rateRunaway && !pen.motorEnable)
        let events24 = pen.takeEvents()
        #expect(Self.faults(events24) == [.rateRunaway])
    }

    @Test("H3: a stall — or a tachometer gone silent — latches once the spin-up grace is over")
    func stallAndSilentTachometer() {
        var pen = Self.armed()
        pen.input(GPIOEdge(line: .pedal, active: true, time: Self.t(10)))
        var time = 10.0
        for _ in 0..<40 {  // past the spin-up grace
            time += 8
            pen.input(GPIOEdge(line: .tachometer, active: true, time: Self.t(time)))
            pen.hostAlive(at: Self.t(time))
            pen.tick(at: Self.t(time))
        }
        #expect(pen.fault == .none && pen.motorEnable, "running at 125 Hz")
        // The tachometer falls silent: the rate read falls below 40 Hz 25 ms after the last stroke.
        let last = time
        while pen.fault == .none && time < last + 100 {
            time += 1
            pen.hostAlive(at: Self.t(time))
            pen.tick(at: Self.t(time))
        }
        #expect(pen.fault == .stall && !pen.motorEnable)
        #expect(time - last <= 26)
        var fresh = Self.armed()
        fresh.input(GPIOEdge(line: .pedal, active: true, time: Self.t(10)))
        fresh.hostAlive(at: Self.t(200))
        fresh.tick(at: Self.t(200))
        #expect(fresh.fault == .none, "no stroke yet, but inside the 250 ms spin-up grace")
        fresh.hostAlive(at: Self.t(261))
        fresh.tick(at: Self.t(261))
        #expect(fresh.fault == .stall)
    }

    @Test("H5: armed and the supervisor silent for the deadman: the rules stop, disarm and latch on their own")
    func deadman() {
        var pen = Self.armed(at: 1)
        pen.input(GPIOEdge(line: .pedal, active: true, time: Self.t(2)))
        pen.tick(at: Self.t(250))
        #expect(pen.motorEnable)
        pen.tick(at: Self.t(302))
        #expect(!pen.motorEnable && !pen.armed && pen.fault == .hostHeartbeatLost)
    }

    @Test("TELEMETRY once per stroke and at least every 100 ms: no depth, the rate, the flags")
    func telemetry() throws {
        var pen = Self.armed()
        pen.input(GPIOEdge(line: .pedal, active: true, time: Self.t(10)))
        _ = pen.takeEvents()
        pen.input(GPIOEdge(line: .tachometer, active: true, time: Self.t(20)))
        pen.input(GPIOEdge(line: .tachometer, active: true, time: Self.t(28)))
        let frames = pen.takeEvents().compactMap { if case .telemetry(let frame) = $0 { frame } else { nil } }
        #expect(frames.count == 2)
        let last = try #require(frames.last)
        #expect(last.peakProtrusionUm == 0xFFFF && last.strokeRateDhz == 1250 && last.strokeCount == 2)
        #expect(last.flags.contains(.motorOn) && last.flags.contains(.pedalPressed) && last.flags.contains(.cartridgePresent))
        pen.hostAlive(at: Self.t(60))
        pen.tick(at: Self.t(60))
        let events25 = pen.takeEvents()
        #expect(events25.allSatisfy { if case .telemetry = $0 { false } else { true } }, "32 ms after a stroke: none due")
        pen.hostAlive(at: Self.t(130))
        pen.tick(at: Self.t(130))
        let events26 = pen.takeEvents()
        #expect(events26.contains { if case .telemetry = $0 { true } else { false } })
    }
}
