import StippleWire

/// The runtime monitors: every telemetry frame, the pedal, and the silence between frames.
extension SafetyCore {
    mutating func pedal(_ pressed: Bool, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        guard pressed != pedalPressed else { return }
        pedalPressed = pressed
        switch (phase, pressed) {
        case (.armed, true), (.paused, true):
            phase = .running
            runningSince = now
            motionStoppedAt = nil
            // The silence timer runs from the last frame, never from a press: a pen that has
            // gone quiet cannot be hidden by tapping the pedal.
            checkSilence(at: now, into: &actions)
        case (.running, false):
            phase = .paused
            motionStoppedAt = now
            runningSince = nil
        default:
            break  // the pedal moves nothing unless armed
        }
    }

    /// One telemetry frame, in the order docs/safety.md gives. Each check that latches ends
    /// the step: the stop is already in the decision.
    mutating func telemetry(_ sample: TelemetrySample, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        lastTelemetry = now
        lastSample = sample
        let rate = sample.strokeRateHz
        // Numbers that cannot be true are doubt, and doubt stops the needle.
        guard rate.isFinite, rate >= 0 else {
            latch(.implausibleTelemetry, detail: "the pen reported a stroke rate of \(rate) Hz", at: now, into: &actions)
            return
        }
        if let peak = sample.peakProtrusionUm, peak < 0 {
            latch(.depthSensor, detail: "the pen reported a protrusion of \(peak) µm", at: now, into: &actions)
            return
        }
        // H1: the over-limit stroke is answered in this very step, in every state.
        let trip = depthTripUm
        if let peak = sample.peakProtrusionUm, peak > trip {
            latch(.overDepth, detail: "stroke protruded \(peak) µm; the limit is \(trip) µm", at: now, into: &actions)
            return
        }
        // H3: a runaway stops at once, in every state, spin-up or not.
        if rate > AbsoluteLimits.runawayHz {
            latch(.rateRunaway, detail: "stroke rate \(rate) Hz is above \(AbsoluteLimits.runawayHz) Hz", at: now, into: &actions)
            return
        }
        if sample.estopPressed && !faults.contains(.emergencyStop) {
            actions.append(.emergencyStopPen)
            latch(.emergencyStop, detail: "emergency stop from pen_button", at: now, into: &actions)
            return
        }
        if !sample.cartridgePresent && isArmedPhase {
            latch(.cartridgeRemoved, detail: "the cartridge was removed while armed", at: now, into: &actions)
            return
        }
        pedal(sample.pedalPressed, at: now, into: &actions)
        // Motion is what the strokes show, not only what the pen says of its motor: a pen that
        // clears its motor flag and keeps reporting strokes is moving.
        let strokesSeen = sample.strokeRateHz >= AbsoluteLimits.stallHz || sample.peakProtrusionUm != nil
        if (sample.motorOn || strokesSeen) && phase != .running {
            // When did the daemon take motion away? A latch is a stop too.
            let stoppedAt = phase == .faulted ? max(motionStoppedAt ?? .zero, faultLatchedAt ?? .zero) : motionStoppedAt
            let grace = Self.stopGrace + Self.strokePeriod(rate)
            if let stoppedAt, now - stoppedAt <= grace {
                if phase == .faulted { actions.append(.stopNeedle(nil)) }  // keep insisting
            } else if let stoppedAt {
                // The pen was told to stop (and acknowledged, or the link would have given up)
                // and still strokes: ESTOP, the one command a pen must obey, and a latch.
                actions.append(.emergencyStopPen)
                latch(.penUnresponsive, detail: "the pen still reports strokes \((now - stoppedAt).milliseconds) ms after it was stopped (\(phase.rawValue))",
                      at: now, into: &actions)
                return
            } else {
                actions.append(.emergencyStopPen)
                latch(.unexpectedMotion, detail: "the pen reports its motor on while the session is \(phase.rawValue)", at: now, into: &actions)
                return
            }
        }
        // H11: a pen that says it is armed while the core has not armed it (a lost race, a pen
        // that ignored a DISARM) is disarmed; beyond the time a DISARM takes, it is a fault.
        if sample.penArmed && !isArmedPhase {
            if phase == .faulted {
                actions.append(.disarmPen)  // already latched: keep insisting
            } else if !(motionStoppedAt.map { now - $0 <= Self.disarmGrace } ?? false) {
                latch(.unexpectedMotion, detail: "the pen reports itself armed while the session is \(phase.rawValue)", at: now, into: &actions)
                return
            }
        }
        guard phase == .running else { return }
        checkDepthSensor(sample, at: now, into: &actions)
        guard phase == .running else { return }
        checkRate(rate, at: now, into: &actions)
    }

    /// A pen with a depth sensor owes a reading for every stroke: strokes are happening when the
    /// motor is on at a measurable rate. Missing readings or the very same reading stroke after
    /// stroke mean the sensor is lost or stuck, and an over-depth stroke could pass unseen.
    mutating func checkDepthSensor(_ sample: TelemetrySample, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        guard penHasDepthSensor, sample.motorOn, sample.strokeRateHz >= AbsoluteLimits.stallHz else { return }
        guard let peak = sample.peakProtrusionUm else {
            depthMissingRun += 1
            if depthMissingRun >= Self.depthMissingStrokes {
                latch(.depthSensor, detail: "no depth reading for \(depthMissingRun) strokes while running", at: now, into: &actions)
            }
            return
        }
        depthMissingRun = 0
        depthSameRun = peak == lastDepthUm ? depthSameRun + 1 : 1
        lastDepthUm = peak
        if depthSameRun >= Self.depthStuckStrokes {
            latch(.depthSensor, detail: "the depth reading stuck at \(peak) µm for \(depthSameRun) strokes", at: now, into: &actions)
        }
    }

    /// Stall and a rate below the window wait out the spin-up grace (the motor starts from
    /// rest); a rate above the window counts at once. Runaway was checked before, with no grace.
    mutating func checkRate(_ rate: Double, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        let spunUp = runningSince.map { now - $0 >= limits.spinUpGrace } ?? false
        if spunUp && rate < AbsoluteLimits.stallHz {
            latch(.stall, detail: "stroke rate \(rate) Hz is below \(AbsoluteLimits.stallHz) Hz", at: now, into: &actions)
            return
        }
        let high = rate > limits.rateMaxHz * (1 + limits.rateTolerance)
        let low = rate < limits.rateMinHz * (1 - limits.rateTolerance)
        if high || (low && spunUp) {
            rateViolationRun += 1
            if rateViolationRun >= limits.rateViolationStrokes {
                latch(.rateOutOfWindow, detail: "stroke rate \(rate) Hz outside \(limits.rateMinHz)...\(limits.rateMaxHz) Hz for \(rateViolationRun) strokes", at: now, into: &actions)
            }
        } else if !low {
            rateViolationRun = 0
        }
    }

    mutating func tick(at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        checkSilence(at: now, into: &actions)
    }

    /// H6: armed (running, paused or waiting for the pedal) and no telemetry for too long.
    /// While armed the pen's own pedal can start the needle, and only telemetry would say so.
    mutating func checkSilence(at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        guard isArmedPhase, let last = lastTelemetry ?? armedAt else { return }
        let silence = now - last
        if silence > limits.telemetrySilence {
            latch(.telemetrySilence, detail: "no telemetry for \(silence.milliseconds) ms while \(phase.rawValue)", at: now, into: &actions)
        }
    }
}
