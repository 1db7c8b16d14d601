import Foundation
import StippleDaemon
import StippleGPIO
import StippleRecords
import StippleSafety
import StippleSim
import StippleSupervision
import StippleWire
import Testing

/// A GPIO pen end to end in one process: the real supervisor, safety core and records, the
/// GPIO backend (`GPIOPen`: debouncers, the firmware core, the `GPIOPenLink`) and HardwareSim's
/// GPIO pen model behind the line seam, on a virtual clock. Each GPIO hazard is injected on the
/// model and the safe outcome checked on the model's motor.
@Suite(.serialized) struct GPIOPenHazardTests {
    @Test("a GPIO session: typed cartridge, arm, the pedal runs the motor at the dialled rate, release stops it; depth recorded as mechanical")
    func gpioSession() async throws {
        let rig = try await GPIORig()
        let identified = await rig.supervisor.status().pen
        #expect(identified.serial == GPIORig.serial && identified.depthSensor == false && identified.cartridgeReader == false)
        try await rig.openAndArm()
        #expect(await rig.phase == "armed")
        #expect(!rig.motorLine, "armed: nothing moves without the pedal")
        rig.press(.pedal, true)
        await rig.run(for: .seconds(1))
        #expect(await rig.phase == "running")
        #expect(rig.motorPowered && rig.strokes > 100)
        let rate = rig.pen.firmware.tachometer.rateHz(at: rig.clock.now())
        #expect(abs(rate - 120) < 3, "the rate from the tachometer's edge times: \(rate) Hz")
        rig.press(.pedal, false)
        await rig.run(for: .milliseconds(50))
        #expect(!rig.motorLine)
        #expect(await rig.phase == "paused")
        _ = try await rig.supervisor.disarm(actor: "test")
        await rig.supervisor.flushRecords()
        let armed = try #require(try rig.store.auditEntries(limit: 100).first { $0.kind == "armed" })
        #expect(armed.payload.contains("\"depth\":\"mechanical\""), "\(armed.payload)")
        let typed = try #require(try rig.store.auditEntries(limit: 100).first { $0.kind == "cartridge_set" })
        #expect(typed.payload.contains("\"typed\":\"true\"") && typed.payload.contains("\"lot\":\"LOT-7\""), "\(typed.payload)")
    }

    @Test("H1 via the over-depth switch: the motor stops within the stroke, and the core latches over_depth")
    func h1OverDepthSwitchStops() async throws {
        let rig = try await GPIORig()
        try await rig.startRunning()
        #expect(rig.motorPowered)
        rig.lines.withModel { $0.inject(.overDepth(extraUm: 700, strokes: 1)) }
        let stopped = await rig.run(until: .milliseconds(50)) { !rig.motorLine }
        #expect(stopped)
        let strokesAtStop = rig.strokes
        await rig.run(for: .milliseconds(100))
        #expect(rig.strokes - strokesAtStop <= 1, "at most the stroke under way completes")
        #expect(await rig.faults.contains("over_depth"))
        #expect(await rig.phase == "faulted")
        // The model's switch stays closed after the last stroke: the pen's rules keep their
        // latch (the cause is not gone), so clearing is refused and nothing can be armed.
        #expect(rig.pen.firmware.overDepth && rig.pen.firmware.fault == .overDepth)
        do {
            try await rig.clearFault()
            Issue.record("cleared with the over-depth switch closed")
        } catch let error as CommandError {
            #expect(error.code.rawValue == "fault_persists", "\(error)")
        }
        #expect(await rig.phase == "faulted" && !rig.motorLine)
    }

    @Test("H3: a runaway latches at once, a stall and a silent tachometer once the spin-up grace is over; the motor stops each time")
    func h3RunawayStallSilentTachometer() async throws {
        let cases: [(String, @Sendable (GPIORig) -> Void, String)] = [
            ("runaway", { $0.lines.withModel { $0.inject(.rateRunaway(hz: 175)) } }, "rate_runaway"),
            ("stall", { $0.lines.withModel { $0.inject(.stall) } }, "stall"),
            ("silent tachometer", { $0.lines.tachometerCut = true }, "stall"),
        ]
        for (name, inject, fault) in cases {
            let rig = try await GPIORig()
            try await rig.startRunning()
            #expect(rig.motorPowered, "\(name)")
            inject(rig)
            let latched = await rig.run(until: .milliseconds(300)) { await rig.faults.contains(fault) }
            let faults = await rig.faults
            #expect(latched, "\(name): \(faults)")
            #expect(!rig.motorLine, "\(name)")
        }
    }

    @Test("the safety core's own stop drives the motor line inactive inside the call (API e-stop, no line event)")
    func theCoresStopDrivesTheLine() async throws {
        let rig = try await GPIORig()
        try await rig.startRunning()
        #expect(rig.motorLine)
        _ = try await rig.supervisor.emergencyStop(actor: "test")
        #expect(!rig.motorLine, "inactive before the call returned, without the rig running a step")
        #expect(await rig.faults == ["emergency_stop"])
    }

    @Test("H12: the e-stop line latches from every state, once; clearing waits for its release and never re-arms")
    func h12EstopLineInEveryState() async throws {
        // No session, then open, armed, running.
        for stage in ["no_session", "open", "armed", "running"] {
            let rig = try await GPIORig()
            switch stage {
            case "open":
                _ = try await rig.supervisor.openSession(
                    SessionRequest(sessionID: "", clientID: "C-GPIO", technician: "ana", zone: .crown, cartridgeID: GPIORig.cartridge,
                                       pigmentLots: ["P-1"], penSerial: "", gapOverrideReason: nil), actor: "test")
            case "armed": try await rig.openAndArm()
            case "running": try await rig.startRunning()
            default: break
            }
            rig.press(.estop, true)
            await rig.run(for: .milliseconds(20))
            #expect(await rig.faults == ["emergency_stop"], "\(stage)")
            #expect(!rig.motorLine && !rig.motorPowered, "\(stage)")
            // Pressed again (bounce, a second press): nothing new is latched or recorded.
            rig.press(.estop, false)
            await rig.run(for: .milliseconds(5))
            rig.press(.estop, true)
            await rig.run(for: .milliseconds(50))
            await rig.supervisor.flushRecords()
            #expect(await rig.faults == ["emergency_stop"], "\(stage)")
            await #expect(throws: CommandError.self, "\(stage): clearing while pressed") { try await rig.clearFault() }
            rig.press(.estop, false)
            await rig.run(for: .milliseconds(150))
            try await rig.clearFault()
            let strokes = rig.strokes
            rig.press(.pedal, true)
            await rig.run(for: .milliseconds(200))
            #expect(!rig.motorLine && rig.strokes == strokes, "\(stage): clearing never re-arms")
            #expect(await rig.phase != "running", "\(stage)")
        }
    }

    @Test("H5 via the e-stop: the daemon dies with the motor running, the released line stays driven, the e-stop cuts the motor in hardware; the restarted daemon holds the line inactive and never re-arms (H11)")
    func h5CrashThenEstopAndRestart() async throws {
        let directory = DaemonRig.temporaryDirectory()
        let clock = ManualClock()
        let rig = try await GPIORig(directory: directory, clock: clock)
        try await rig.startRunning()
        #expect(rig.motorPowered)
        // SIGKILL: nothing of the daemon runs any more; the kernel releases the lines and this
        // model keeps the motor line's last value (the worst the kernel allows).
        rig.lines.crash()
        _ = rig.lines.edges(upTo: clock.now() + .milliseconds(200))
        clock.advance(.milliseconds(200))
        #expect(rig.motorLine && rig.motorPowered, "no software can stop it now")
        rig.press(.estop, true)
        let before = rig.strokes
        _ = rig.lines.edges(upTo: clock.now() + .milliseconds(100))
        clock.advance(.milliseconds(100))
        #expect(!rig.motorPowered && rig.strokes - before <= 1, "the e-stop cuts motor power in hardware")
        // systemd restarts stippled: the line is requested inactive first, the held e-stop
        // latches at boot, and the restored session comes back faulted.
        let restarted = try await GPIORig(lines: rig.lines, directory: directory, clock: clock)
        #expect(!restarted.motorLine)
        #expect(restarted.pen.firmware.estopLatched)
        #expect(await restarted.phase == "faulted")
        restarted.press(.estop, false)
        restarted.press(.pedal, true)
        await restarted.run(for: .milliseconds(300))
        #expect(!restarted.motorLine, "pedal down after a restart: nothing moves")
    }

    @Test("H5: the supervisor hangs while the needle runs; the GPIO rules' deadman stops the motor on the reader's thread")
    func h5HungSupervisorDeadman() async throws {
        let rig = try await GPIORig()
        try await rig.startRunning()
        #expect(rig.motorLine)
        let start = rig.clock.now()
        var stoppedAfter: Duration?
        for _ in 0..<600 {
            rig.clock.advance(GPIORig.step)
            try rig.pump()
            if !rig.motorLine {
                stoppedAfter = rig.clock.now() - start
                break
            }
        }
        let after = try #require(stoppedAfter)
        #expect(after <= .milliseconds(ProtocolTiming.deadmanRangeMs.upperBound), "stopped after \(after)")
        #expect(rig.pen.firmware.fault == .hostHeartbeatLost)
        await rig.run(for: .milliseconds(20))
        #expect(await rig.faults.contains("link_lost"), "the core latches it when the supervisor runs again")
    }

    @Test("H11: the motor line is inactive from the first instant, a pedal held at start moves nothing, arming is refused until it is released")
    func h11NothingMovesWithoutArmAndPedal() async throws {
        var model = GPIOPenSimulator()
        model.setOutput(.motorEnable, true)  // a previous process left the line driven
        model.setInput(.pedal, true)
        let rig = try await GPIORig(model: model)
        #expect(!rig.motorLine, "requested inactive before anything else")
        await rig.run(for: .milliseconds(200))
        #expect(rig.strokes == 0)
        await #expect(throws: CommandError.self) { try await rig.openAndArm() }
        #expect(await rig.phase == "open")
        rig.press(.pedal, false)
        await rig.run(for: .milliseconds(50))
        try await rig.arm()
        #expect(!rig.motorLine)
        #expect(await rig.phase == "armed")
        rig.press(.pedal, true)
        await rig.run(for: .milliseconds(100))
        #expect(rig.motorLine)
    }
}
