import StippleSim
import StippleWire
import Testing

/// One test per pen-side hazard: the model with the fault injected, and the firmware-side outcome.
@Suite struct PenHazardTests {
    /// Connected, armed, run enabled and the pedal held: the needle runs at 120 Hz.
    static func running(seed: UInt64 = 1, config: PenConfig = PenConfig()) -> SimulationRig {
        var rig = SimulationRig(config: config, seed: seed)
        rig.host.connect()
        rig.run(for: .milliseconds(100))
        rig.host.arm()
        rig.run(for: .milliseconds(100))
        rig.setPedal(true)
        rig.run(for: .milliseconds(1000))
        return rig
    }

    @Test func aNormalRunHasNoFault() {
        let rig = Self.running()
        #expect(rig.pen.penState == .running && rig.pen.motorDriven)
        #expect((110...125).contains(rig.pen.strokeCount), "about 120 strokes in the first second")
        #expect(rig.host.penFaults.map(\.fault.code) == [.reset], "only the power-up notice")
        #expect(rig.host.lastAck(for: .arm)?.status == .ok)
    }

    @Test("H1: the over-limit stroke is the last stroke")
    func h1OverLimitStrokeIsTheLast() {
        var rig = Self.running()
        let before = rig.pen.strokeCount
        rig.inject(.overDepth(extraUm: 700, strokes: 5))
        rig.run(for: .milliseconds(500))
        let fault = rig.pen.faultHistory.first { $0.code == .overDepth }
        #expect(fault?.strokes == before + 1, "the first over-limit stroke trips")
        #expect(rig.pen.strokeCount == before + 1, "and no stroke follows it")
        #expect(!rig.pen.motorDriven && rig.pen.penState == .faulted)
        #expect(rig.host.penFaults.last?.fault.value ?? 0 > 1300, "the FAULT carries the offending protrusion")
        #expect(rig.pen.lastTrueProtrusionUm ?? 0 > 1300)
    }

    @Test("H2: the pen refuses setpoints outside its limits and inconsistent limit sets")
    func h2PenRefusesOutOfLimits() {
        var rig = SimulationRig()
        rig.host.connect()
        rig.run(for: .milliseconds(100))
        rig.host.send(.setSetpoints(.init(depthUm: 1200, rateDhz: 1200)))
        var inconsistent = ScriptedHost.defaultLimits
        inconsistent.rateRunawayDhz = 1400
        rig.host.send(.setLimits(inconsistent))
        rig.run(for: .milliseconds(100))
        #expect(rig.host.lastAck(for: .setSetpoints)?.status == .outOfLimits)
        // rate_max_dhz (4) < rate_runaway_dhz (6) fails: the lower index of the relation.
        #expect(rig.host.lastAck(for: .setLimits)?.status == .badField && rig.host.lastAck(for: .setLimits)?.detail == 4)
        #expect(rig.pen.depthSetpointUm == 800)
    }

    @Test("H3: runaway and stall both stop the motor and latch")
    func h3RunawayAndStall() {
        var runaway = Self.running()
        runaway.inject(.rateRunaway(hz: 200))
        runaway.run(for: .milliseconds(300))
        #expect(runaway.pen.latchedFault == .rateRunaway && !runaway.pen.motorDriven)
        var stall = Self.running()
        stall.inject(.stall)
        stall.run(for: .milliseconds(20))
        #expect(stall.pen.latchedFault == .stall && !stall.pen.motorDriven)
    }

    @Test("H5: with host heartbeats stopped, the motor is off within the deadman timeout")
    func h5Deadman() {
        var rig = Self.running()
        rig.host.heartbeatsEnabled = false
        let lastFrame = rig.now
        var stoppedAt: MonotonicInstant?
        rig.run(for: .milliseconds(600)) { rig in
            if stoppedAt == nil, !rig.pen.motorDriven { stoppedAt = rig.now }
        }
        let stopped = try! #require(stoppedAt)
        // The last host frame went out at most one heartbeat period before heartbeats stopped.
        #expect(stopped - lastFrame <= ProtocolTiming.deadmanDefault + .milliseconds(1))
        #expect(stopped - lastFrame >= ProtocolTiming.deadmanDefault - ProtocolTiming.hostIdleHeartbeat)
        #expect(rig.pen.latchedFault == .hostHeartbeatLost)
    }

    @Test("H5: a shorter deadman pushed with the limits is honoured")
    func h5ConfiguredDeadman() {
        var rig = SimulationRig()
        var limits = ScriptedHost.defaultLimits
        limits.deadmanMs = 150
        rig.host.connect(limits: limits)
        rig.run(for: .milliseconds(100))
        rig.host.arm()
        rig.run(for: .milliseconds(100))
        rig.setPedal(true)
        rig.run(for: .milliseconds(300))
        rig.inject(.disconnect(duration: .seconds(1)))
        let cut = rig.now
        var stoppedAt: MonotonicInstant?
        rig.run(for: .milliseconds(300)) { rig in
            if stoppedAt == nil, !rig.pen.motorDriven { stoppedAt = rig.now }
        }
        let stopped = try! #require(stoppedAt)
        #expect(stopped - cut <= .milliseconds(151))
    }

    @Test("H6: a hung firmware goes silent; its watchdog resets it disarmed")
    func h6HangAndWatchdog() {
        var rig = Self.running()
        let frames = rig.host.telemetryFrames
        rig.inject(.firmwareHang)
        rig.run(for: .milliseconds(400))
        #expect(rig.host.telemetryFrames == frames, "silent while hung")
        #expect(rig.pen.isHung)
        rig.run(for: .milliseconds(200))
        #expect(!rig.pen.isHung && !rig.pen.motorDriven && rig.pen.penState == .boot)
        #expect(rig.host.penFaults.last?.fault.code == .reset && rig.host.penFaults.last?.fault.detail == UInt16(ResetCause.watchdog.rawValue))
    }

    @Test("H7: a retransmitted command is never applied twice; damaged frames are never applied")
    func h7Duplicates() {
        var rig = SimulationRig()
        rig.host.heartbeatsEnabled = false
        rig.host.connect()
        rig.run(for: .milliseconds(100))
        let applied = rig.pen.commandsApplied
        rig.host.send(.setSetpoints(.init(depthUm: 650, rateDhz: 1000)))
        rig.run(for: .milliseconds(20))
        for _ in 0..<4 { rig.host.repeatLastCommand() }
        rig.run(for: .milliseconds(20))
        #expect(rig.pen.commandsApplied == applied + 1)
        #expect(rig.host.acks.filter { $0.command == .setSetpoints && $0.status == .ok }.count == 5 + 1, "every copy is answered (plus connect's)")
        // A damaged SET_SETPOINTS is never applied, even with garbage around it.
        var wire = FrameEncoder.encode(Frame(seq: 99, message: .setSetpoints(.init(depthUm: 950, rateDhz: 1000))))
        wire[5] ^= 0x01
        rig.host.sendRaw([0x42, 0x17] + wire)
        rig.run(for: .milliseconds(20))
        #expect(rig.pen.depthSetpointUm == 650)
    }

    @Test("H9: a wrong-size cartridge refuses to arm")
    func h9WrongSizeCartridge() {
        var rig = SimulationRig()
        rig.insertCartridge(SimCartridge(id: "BIG", needleCount: 5, needleDiameterUm: 350))
        rig.host.connect()
        rig.run(for: .milliseconds(100))
        rig.host.arm()
        rig.run(for: .milliseconds(100))
        #expect(rig.host.lastAck(for: .arm)?.status == .cartridgeRejected && rig.host.lastAck(for: .arm)?.detail == 1)
        #expect(!rig.pen.armed)
    }

    @Test("H10: pulling the cartridge mid-run stops the motor at once")
    func h10CartridgeRemoved() {
        var rig = Self.running()
        rig.removeCartridge()
        #expect(!rig.pen.motorDriven && rig.pen.latchedFault == .cartridgeRemoved)
        rig.run(for: .milliseconds(10))
        #expect(rig.host.cartridges.last?.event == .removed)
    }

    @Test("H11: boot disarmed; never move without arm plus pedal; a reset comes back disarmed")
    func h11NoMotionWithoutArmAndPedal() {
        var rig = SimulationRig()
        rig.setPedal(true)
        rig.run(for: .milliseconds(300))
        #expect(rig.pen.penState == .boot && rig.pen.strokeCount == 0)
        rig.host.connect()
        rig.host.send(.motorRun(.init()))
        rig.run(for: .milliseconds(200))
        #expect(rig.host.lastAck(for: .motorRun)?.status == .notArmed && rig.pen.strokeCount == 0)
        rig.host.arm()
        rig.run(for: .milliseconds(200))
        #expect(rig.host.lastAck(for: .arm)?.status == .pedalPressed && rig.pen.strokeCount == 0)
        rig.setPedal(false)
        rig.host.arm()
        rig.run(for: .milliseconds(200))
        #expect(rig.pen.armed && rig.pen.strokeCount == 0, "armed, pedal up: still nothing")
        rig.setPedal(true)
        rig.run(for: .milliseconds(200))
        #expect(rig.pen.strokeCount > 0)
        rig.inject(.firmwareReset(.brownout))
        #expect(!rig.pen.motorDriven && rig.pen.penState == .boot && !rig.pen.armed)
        let strokes = rig.pen.strokeCount
        rig.run(for: .milliseconds(500))
        #expect(rig.pen.strokeCount == strokes, "the held pedal moves nothing after the reset")
    }

    @Test("H12: e-stop works in every state, is idempotent and latches")
    func h12Estop() {
        for reach in 0..<4 {
            var rig = SimulationRig()
            if reach >= 1 { rig.host.connect() }
            rig.run(for: .milliseconds(100))
            if reach >= 2 { rig.host.arm() }
            rig.run(for: .milliseconds(100))
            if reach >= 3 { rig.setPedal(true) }
            rig.run(for: .milliseconds(300))
            rig.host.send(.estop(.init()))
            rig.host.send(.estop(.init()))
            rig.run(for: .milliseconds(50))
            #expect(rig.pen.penState == .faulted && rig.pen.latchedFault == .estop && !rig.pen.motorDriven, "reach \(reach)")
            #expect(rig.host.acks.filter { $0.command == .estop }.allSatisfy { $0.status == .ok })
            rig.host.arm()
            rig.run(for: .milliseconds(100))
            #expect(!rig.pen.armed, "stays latched")
        }
        var button = Self.running()
        button.setEstopButton(true)
        #expect(!button.pen.motorDriven && button.pen.latchedFault == .estop)
        button.host.send(.clearFault(.init()))
        button.run(for: .milliseconds(50))
        #expect(button.host.lastAck(for: .clearFault)?.status == .conditionPersists)
    }

    @Test("H13: ARM with another checksum is refused; the read-back checksum is CRC-32C of the limits")
    func h13LimitsChecksum() {
        var rig = SimulationRig()
        rig.host.connect()
        rig.run(for: .milliseconds(100))
        #expect(rig.host.limits?.limitsCRC == ScriptedHost.defaultLimits.checksum)
        #expect(rig.host.limits?.limitsCRC == rig.pen.limitsCRC)
        rig.host.arm(limitsCRC: 1)
        rig.run(for: .milliseconds(100))
        #expect(rig.host.lastAck(for: .arm)?.status == .limitsMismatch && !rig.pen.armed)
    }

    @Test("H16: over-current and over-temperature stop and latch")
    func h16CurrentAndTemperature() {
        var current = Self.running()
        current.inject(.overCurrent(ma: 2000))
        current.run(for: .milliseconds(20))
        #expect(current.pen.latchedFault == .overCurrent && !current.pen.motorDriven)
        var heat = Self.running()
        heat.inject(.overTemperature(dc: 600))
        heat.run(for: .milliseconds(20))
        #expect(heat.pen.latchedFault == .overTemperature && !heat.pen.motorDriven)
    }

    @Test("H17: a pen of another major refuses the handshake and names its version")
    func h17VersionMismatch() {
        var config = PenConfig()
        config.protocolMajor = 2
        var rig = SimulationRig(config: config)
        rig.host.connect()
        rig.run(for: .milliseconds(200))
        #expect(rig.host.lastAck(for: .hello)?.status == .versionMismatch && rig.host.lastAck(for: .hello)?.detail == 2)
        #expect(rig.host.helloReply?.protoMajor == 2)
        #expect(rig.host.lastAck(for: .setLimits)?.status == .notReady)
    }

    @Test func theSameSeedAndScriptGiveByteIdenticalOutput() {
        func run(_ seed: UInt64) -> (UInt64, Int) {
            var rig = Self.running(seed: seed)
            rig.inject(.bitFlips(probability: 0.001, direction: .both, duration: .milliseconds(500)))
            rig.inject(.depthDrift(umPerSecond: 30))
            rig.run(for: .milliseconds(2000))
            return (rig.penOutputHash, rig.penBytes)
        }
        #expect(run(7) == run(7))
        #expect(run(7).0 != run(8).0)
    }

    @Test func telemetryFollowsThePhysics() {
        var rig = Self.running()
        rig.run(for: .milliseconds(1000))
        let telemetry = try! #require(rig.host.lastTelemetry)
        #expect(abs(Int(telemetry.strokeRateDhz) - 1200) <= 5, "ramped to the setpoint")
        #expect(abs(Int(telemetry.peakProtrusionUm) - 800) <= 60, "noise and drift around the setpoint")
        #expect(telemetry.motorCurrentMa > 300 && telemetry.motorCurrentMa < 600)
        #expect(telemetry.flags.contains([.armed, .motorOn, .pedalPressed, .cartridgePresent]))
    }
}
