import StippleWire

/// Faults: latching, the pen's own faults, clearing, and the order stops go out in.
extension SafetyCore {
    var faultNames: String { faults.map(\.rawValue).joined(separator: ", ") }

    mutating func penFault(_ code: FaultCode, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        let reason: FaultReason
        switch code {
        case .none: return
        case .overDepth: reason = .overDepth
        case .rateRunaway: reason = .rateRunaway
        case .stall: reason = .stall
        case .hostHeartbeatLost: reason = .linkLost
        case .cartridgeRemoved: reason = .cartridgeRemoved
        case .estop: reason = .emergencyStop
        case .reset: reason = .penReset
        case .depthSensor: reason = .depthSensor
        default: reason = .penFault
        }
        // A reboot forgets the limits; one while the session was merely open lost nothing else.
        if reason == .penReset {
            pushedLimits = nil
            if !isArmedPhase { return }
        }
        latch(reason, detail: "the pen reported \(code)", at: now, into: &actions)
    }

    /// Clears the latch only when the core's own observations say the cause is gone; the
    /// caller's word counts for nothing. Never re-arms.
    mutating func clearFault(at now: MonotonicInstant, into actions: inout [SafetyAction]) -> SafetyRefusal? {
        guard phase == .faulted else { return SafetyRefusal(.illegalTransition, "no fault is latched") }
        if let cause = persistingCause() { return SafetyRefusal(.faultPersists, cause) }
        faults = []
        faultLatchedAt = nil
        switch phaseBeforeFault {
        case .noSession: phase = .noSession
        case .closed: phase = .closed
        default: phase = session == nil ? .noSession : .open
        }
        actions.append(.clearPenFault)
        checkSessionTime(at: now, into: &actions)
        return nil
    }

    /// Why the latch must stay, from the most recent telemetry; nil when the cause is gone.
    /// Only a frame newer than the latch counts as evidence: a frame from before it cannot show
    /// that the e-stop was released or the motor stopped, so without one the latch stays.
    func persistingCause() -> String? {
        let heardSinceFault = lastTelemetry.map { heard in faultLatchedAt.map { heard > $0 } ?? true } ?? false
        guard heardSinceFault, let sample = lastSample else {
            return "no telemetry from the pen since the fault (\(faultNames)): the cause cannot be seen to be gone; connect the pen and try again"
        }
        if sample.estopPressed {
            return "the emergency stop is still pressed (in the most recent telemetry): release it first"
        }
        if sample.motorOn {
            return "the pen still reports its motor on"
        }
        if sample.penFaultLatched {
            return "the pen still reports a latched fault of its own: its cause is not gone"
        }
        return nil
    }

    /// The shell carries actions out in order: whatever stops the needle goes first (e-stop,
    /// then motor stop, then disarm), everything else keeps its order.
    static func stopsFirst(_ actions: [SafetyAction]) -> [SafetyAction] {
        guard actions.count > 1 else { return actions }
        // One pass: each stop kind once (two faults in one step stop once), the rest in order.
        var emergency = false
        var stop: SafetyAction?
        var disarm = false
        var rest: [SafetyAction] = []
        for action in actions {
            switch action {
            case .emergencyStopPen: emergency = true
            case .stopNeedle: if stop == nil { stop = action }
            case .disarmPen: disarm = true
            default: rest.append(action)
            }
        }
        var ordered: [SafetyAction] = emergency ? [.emergencyStopPen] : []
        if let stop { ordered.append(stop) }
        if disarm { ordered.append(.disarmPen) }
        return ordered + rest
    }

    /// Stop, disarm and latch. A second fault while faulted is recorded but changes nothing.
    mutating func latch(_ reason: FaultReason, detail: String, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        actions.append(.stopNeedle(reason))
        actions.append(.disarmPen)
        if faults.contains(reason) { return }
        if phase != .faulted {
            phaseBeforeFault = phase
            faultLatchedAt = now
        }
        if isArmedPhase { motionStoppedAt = now }
        faults.append(reason)
        phase = .faulted
        armedConnection = nil
        runningSince = nil
        actions.append(.faultLatched(reason, detail: detail))
        if var session {
            session.clock.checkpoint(at: now, wall: lastWall)
            self.session = session
        }
        if let snapshot { actions.append(.persist(snapshot)) }
        lastPersist = now
    }
}
