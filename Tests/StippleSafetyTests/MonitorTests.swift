import StippleSafety
import StippleWire
import Testing

/// The runtime monitors, one named test per hazard the core owns.
@Suite struct MonitorTests {
    @Test("H1: the first over-limit telemetry frame stops the needle in the same step and latches")
    func h1OverDepthStopsInTheSameStep() {
        var rig = Rig()
        rig.runPastSpinUp()
        let limit = rig.core.depthTripUm
        #expect(limit == 1050, "the upper-dermis band's 1000 µm plus the 50 µm tolerance, under the crown's 1200")
        #expect(rig.send(.telemetry(rig.stroke(depth: limit))).actions.isEmpty, "at the limit is allowed")
        let decision = rig.send(.telemetry(rig.stroke(depth: limit + 1)))
        #expect(decision.firstActionIsStop)
        #expect(decision.actions.first == .stopNeedle(.overDepth))
        #expect(decision.actions.contains(.disarmPen))
        #expect(decision.faultsLatched == [.overDepth])
        #expect(rig.core.phase == .faulted && !rig.core.mayMove)
    }

    @Test("H1: an over-limit frame is answered with a stop in every state")
    func h1OverDepthInEveryState() {
        for phase in SessionPhase.allCases {
            var rig = Rig()
            rig.bring(to: phase)
            let decision = rig.send(.telemetry(rig.stroke(depth: 5000, motorOn: false, pedal: false)))
            #expect(decision.firstActionIsStop, "\(phase)")
        }
    }

    @Test("H1: the pen's own over-depth fault latches in the daemon too")
    func h1PenOverDepthLatches() {
        var rig = Rig()
        rig.runPastSpinUp()
        let decision = rig.send(.penFault(.overDepth))
        #expect(decision.firstActionIsStop && decision.faultsLatched == [.overDepth])
    }

    @Test("H3: a runaway stroke rate stops at once")
    func h3Runaway() {
        var rig = Rig()
        rig.runPastSpinUp()
        let decision = rig.send(.telemetry(rig.stroke(rate: 161)))
        #expect(decision.firstActionIsStop && decision.faultsLatched == [.rateRunaway])
    }

    @Test("H3: a stall while running stops at once, but not during spin-up")
    func h3Stall() {
        var rig = Rig()
        rig.run()
        rig.advance(.milliseconds(100))
        #expect(rig.send(.telemetry(rig.stroke(rate: 12))).actions.isEmpty, "spin-up grace")
        rig.advance(.milliseconds(200))
        let decision = rig.send(.telemetry(rig.stroke(rate: 12)))
        #expect(decision.firstActionIsStop && decision.faultsLatched == [.stall])
    }

    @Test("H3: outside the window beyond the tolerance for N strokes stops; fewer do not")
    func h3RateWindow() {
        var rig = Rig()
        rig.runPastSpinUp()
        let strokes = SafetyLimits.defaults.rateViolationStrokes
        for _ in 0..<(strokes - 1) {
            #expect(rig.send(.telemetry(rig.stroke(rate: 44))).actions.isEmpty)
        }
        #expect(rig.send(.telemetry(rig.stroke(rate: 120))).actions.isEmpty, "a good stroke resets the count")
        for _ in 0..<(strokes - 1) { rig.send(.telemetry(rig.stroke(rate: 44))) }
        let decision = rig.send(.telemetry(rig.stroke(rate: 44)))
        #expect(decision.faultsLatched == [.rateOutOfWindow])
        var tolerant = Rig()
        tolerant.runPastSpinUp()
        for _ in 0..<(strokes * 3) {
            #expect(tolerant.send(.telemetry(tolerant.stroke(rate: 46))).actions.isEmpty, "within 10 % of 50 Hz")
        }
    }

    @Test("H6: silence while running stops and latches")
    func h6TelemetrySilence() {
        var rig = Rig()
        rig.runPastSpinUp()
        rig.advance(.milliseconds(240))
        #expect(rig.send(.tick(wall: rig.wall)).actions.isEmpty)
        rig.advance(.milliseconds(20))
        let decision = rig.send(.tick(wall: rig.wall))
        #expect(decision.firstActionIsStop && decision.faultsLatched == [.telemetrySilence])
    }

    @Test("H6: silence while armed or paused stops too: the pen's own pedal could start the needle unseen")
    func h6SilenceWhileArmedOrPaused() {
        for phase in [SessionPhase.armed, .paused] {
            var rig = Rig()
            rig.bring(to: phase)
            rig.advance(.milliseconds(200))
            #expect(rig.send(.tick(wall: rig.wall)).faultsLatched.isEmpty, "\(phase)")
            rig.advance(.milliseconds(100))
            #expect(rig.send(.tick(wall: rig.wall)).faultsLatched == [.telemetrySilence], "\(phase)")
        }
        var open = Rig()
        open.bring(to: .open)
        open.advance(.seconds(5))
        #expect(open.send(.tick(wall: open.wall)).faultsLatched.isEmpty, "a disarmed pen's silence stops nothing")
    }

    @Test("H10: removing the cartridge mid-run stops")
    func h10CartridgeRemoved() {
        var rig = Rig()
        rig.runPastSpinUp()
        var sample = rig.stroke()
        sample.cartridgePresent = false
        let decision = rig.send(.telemetry(sample))
        #expect(decision.firstActionIsStop && decision.faultsLatched == [.cartridgeRemoved])
        var event = Rig()
        event.runPastSpinUp()
        #expect(event.send(.cartridgeRemoved).faultsLatched == [.cartridgeRemoved])
    }

    @Test("H11: motion the daemon did not arm is stopped and latched")
    func h11UnexpectedMotion() {
        for phase in [SessionPhase.noSession, .open, .closed] {
            var rig = Rig()
            rig.bring(to: phase)
            let decision = rig.send(.telemetry(rig.stroke()))
            #expect(decision.actions.first == .emergencyStopPen, "\(phase)")
            #expect(decision.faultsLatched == [.unexpectedMotion], "\(phase)")
        }
        var armed = Rig()
        armed.arm()
        let decision = armed.send(.telemetry(armed.stroke(pedal: false)))
        #expect(decision.faultsLatched == [.unexpectedMotion], "motor on without the pedal")
    }

    @Test("after a stop the last stroke is no fault; strokes beyond one period + 50 ms get ESTOP and pen_unresponsive")
    func theLastStrokeAfterAStopIsNotUnexpected() {
        var rig = Rig()
        rig.runPastSpinUp()
        rig.send(.disarm)
        rig.advance(.milliseconds(7))
        #expect(rig.send(.telemetry(rig.stroke(pedal: true))).faultsLatched.isEmpty)
        rig.advance(.milliseconds(200))
        let decision = rig.send(.telemetry(rig.stroke(pedal: true)))
        #expect(decision.actions.first == .emergencyStopPen)
        #expect(decision.faultsLatched == [.penUnresponsive])
    }

    @Test("issue 15 item 9: a pen that acknowledges stops but keeps stroking gets ESTOP within one stroke period + 50 ms, then pen_unresponsive")
    func penThatDoesNotObey() {
        for rate in [50.0, 120.0, 150.0] {
            for cause in ["over_depth", "disarm", "estop-api"] {
                var rig = Rig()
                rig.runPastSpinUp()
                let stoppedAt = rig.now
                switch cause {
                case "over_depth": #expect(rig.send(.telemetry(rig.stroke(depth: 1400))).faultsLatched == [.overDepth])
                case "disarm": rig.send(.disarm)
                default: rig.send(.emergencyStop(.api))
                }
                // The lying pen: every stroke keeps coming, motor on, as if nothing was said.
                var estopAt: MonotonicInstant?
                var stopsBefore = 0
                for _ in 0..<200 where estopAt == nil {
                    rig.advance(.microseconds(Int64(1_000_000 / rate)))
                    let decision = rig.send(.telemetry(rig.stroke(rate: rate, pedal: true)))
                    if decision.actions.contains(.emergencyStopPen) && !(cause == "estop-api" && rig.now - stoppedAt <= .milliseconds(50)) {
                        estopAt = rig.now
                        #expect(decision.actions.first == .emergencyStopPen, "the ESTOP leads the decision")
                    } else if !decision.actions.isEmpty {
                        stopsBefore += 1
                    }
                }
                let bound = Duration.milliseconds(50) + .microseconds(Int64(1_000_000 / rate)) * 2
                #expect(estopAt.map { $0 - stoppedAt <= bound } ?? false, "\(cause) at \(rate) Hz: ESTOP after \(estopAt.map { ($0 - stoppedAt).milliseconds } ?? -1) ms")
                #expect(rig.core.faults.contains(.penUnresponsive), "\(cause) at \(rate) Hz: \(rig.core.faults)")
                #expect(rig.core.phase == .faulted)
            }
        }
    }

    @Test("issue 15 item 9: a pen that clears its motor flag after a stop but keeps reporting strokes is escalated too")
    func penThatLiesAboutItsMotor() {
        var rig = Rig()
        rig.runPastSpinUp()
        let stoppedAt = rig.now
        rig.send(.disarm)
        var escalated: MonotonicInstant?
        for _ in 0..<50 where escalated == nil {
            rig.advance(.microseconds(8333))
            var sample = rig.stroke(rate: 120, motorOn: false, pedal: true)
            sample.peakProtrusionUm = 800
            if rig.send(.telemetry(sample)).actions.first == .emergencyStopPen { escalated = rig.now }
        }
        #expect(escalated.map { $0 - stoppedAt <= .milliseconds(50) + .microseconds(2 * 8333) } ?? false)
        #expect(rig.core.faults.contains(.penUnresponsive))
        // A pen that has really stopped (no strokes, or a rate below the stall limit) is no fault.
        var quiet = Rig()
        quiet.runPastSpinUp()
        quiet.send(.disarm)
        for _ in 0..<50 {
            quiet.advance(.milliseconds(10))
            #expect(quiet.send(.telemetry(quiet.stroke(depth: nil, rate: 0, motorOn: false, pedal: true))).faultsLatched.isEmpty)
        }
    }

    @Test("H10 (issue 15 item 10): another cartridge reported while armed or running stops and latches; the same one does not")
    func h10CartridgeChanged() {
        var rig = Rig()
        rig.runPastSpinUp()
        let same = rig.goodFacts.cartridge!
        #expect(rig.send(.cartridgeReported(same)).faultsLatched.isEmpty)
        var swapped = same
        swapped.id = "CART-USED-ELSEWHERE"
        let decision = rig.send(.cartridgeReported(swapped))
        #expect(decision.firstActionIsStop && decision.faultsLatched == [.cartridgeChanged])
        // Only the lot changed (a relabelled cartridge): also another cartridge.
        var armed = Rig()
        armed.arm()
        var relabelled = same
        relabelled.lot = "OTHER-LOT"
        #expect(armed.send(.cartridgeReported(relabelled)).faultsLatched == [.cartridgeChanged])
        // Not armed: nothing to stop; arming checks the new one (H9).
        var open = Rig()
        open.openWithSetpoint()
        #expect(open.send(.cartridgeReported(swapped)).faultsLatched.isEmpty)
    }

    @Test("H11: a pen reset while armed needs a fresh arm, and a daemon restart never leaves it armed")
    func h11ResetAndRestart() throws {
        var rig = Rig()
        rig.runPastSpinUp()
        #expect(rig.send(.penFault(.reset)).faultsLatched == [.penReset])
        var restart = Rig()
        restart.runPastSpinUp()
        let snapshot = try #require(restart.core.snapshot)
        let (core, decision) = try SafetyCore.restoring(
            snapshot, limits: .defaults, history: restart.core.history, at: .zero, wall: restart.wall, bootID: "boot-A")
        #expect(core.phase == .faulted && core.faults == [.daemonRestarted])
        #expect(decision.firstActionIsStop)
    }

    @Test("H12: e-stop works in every state, from every source, is idempotent and latches")
    func h12EmergencyStop() {
        for phase in SessionPhase.allCases {
            for source in [EmergencyStopSource.api, .penButton, .gpio, .daemon] {
                var rig = Rig()
                rig.bring(to: phase)
                let first = rig.send(.emergencyStop(source))
                #expect(first.actions.first == .emergencyStopPen)
                #expect(rig.core.phase == .faulted && rig.core.faults.contains(.emergencyStop))
                let again = rig.send(.emergencyStop(source))
                #expect(again.actions.first == .emergencyStopPen, "repeating it still reaches the pen")
                #expect(again.faultsLatched.isEmpty, "and latches nothing new")
                var held = rig.stroke(depth: nil, rate: 0, motorOn: false, pedal: false)
                held.estopPressed = true
                rig.advance(.milliseconds(1))
                rig.send(.telemetry(held))
                #expect(rig.send(.clearFault).refusal?.code == .faultPersists, "the button is still pressed")
                #expect(rig.core.phase == .faulted)
                held.estopPressed = false
                rig.advance(.milliseconds(1))
                rig.send(.telemetry(held))
                #expect(rig.send(.clearFault).refusal == nil, "released: cleared")
            }
        }
    }

    @Test("H12: the pen's e-stop button seen in telemetry latches")
    func h12EstopFromTelemetry() {
        var rig = Rig()
        rig.runPastSpinUp()
        var sample = rig.stroke()
        sample.estopPressed = true
        let decision = rig.send(.telemetry(sample))
        #expect(decision.actions.first == .emergencyStopPen && decision.faultsLatched == [.emergencyStop])
    }

    @Test("H5/H7: losing the link while armed stops and latches")
    func h7LinkLost() {
        var rig = Rig()
        rig.runPastSpinUp()
        let decision = rig.send(.linkLost)
        #expect(decision.firstActionIsStop && decision.faultsLatched == [.linkLost])
    }

    @Test("H16: pen over-current and over-temperature are recorded as pen faults")
    func h16PenFaults() {
        for code in [FaultCode.overCurrent, .overTemperature] {
            var rig = Rig()
            rig.runPastSpinUp()
            let decision = rig.send(.penFault(code))
            #expect(decision.firstActionIsStop && decision.faultsLatched == [.penFault])
            #expect(decision.actions.contains { if case .faultLatched(_, let detail) = $0 { detail.contains(code.description) } else { false } })
        }
    }

    @Test func pausingAndResumingFollowsThePedal() {
        var rig = Rig()
        rig.runPastSpinUp()
        rig.send(.telemetry(rig.stroke(depth: nil, rate: 0, motorOn: false, pedal: false)))
        #expect(rig.core.phase == .paused)
        rig.advance(.milliseconds(300))
        rig.send(.telemetry(rig.stroke(depth: nil, rate: 0, motorOn: false, pedal: true)))
        #expect(rig.core.phase == .running)
        rig.advance(.milliseconds(50))
        #expect(rig.send(.telemetry(rig.stroke(rate: 20))).faultsLatched.isEmpty, "spin-up grace again after a pause")
    }
}
