import StippleWire

/// Continuing a persisted session after a daemon restart. The record is read like hostile
/// input: anything impossible or self-contradictory fails safe (a latched `record_corrupted`
/// fault and a locked session), never traps, and never gives session time back.
extension SafetyCore {
    /// A core continuing a persisted session after a daemon restart.
    ///
    /// - A session that was armed comes back faulted (`daemon_restarted`): a restart never
    ///   leaves the pen armed (H11).
    /// - The session clock is restored by `SessionClock.restored`; when no trustworthy bound on
    ///   the time that passed remains, the session is locked (`clock_untrusted`).
    /// - The setpoint is checked against the limits in force now; one that fails is dropped
    ///   (and said so): arming then needs a new one. The limits are never taken from the record:
    ///   they are pushed and verified again on the next link (`penConnected`).
    /// - A record that contradicts itself (faulted with no faults, faults without the faulted
    ///   state, closed with no reason, identifiers with nothing printable, a warning counter out
    ///   of range) latches `record_corrupted` and locks the session.
    public static func restoring(
        _ snapshot: SessionSnapshot, limits: SafetyLimits, history: SafetyHistory,
        at now: MonotonicInstant, wall: WallTime, bootID: String
    ) throws(SafetyRefusal) -> (SafetyCore, Decision) {
        var core = try SafetyCore(limits: limits, history: history)
        core.lastWall = wall
        var actions: [SafetyAction] = []
        var problems: [String] = []
        var session = snapshot.session
        let restored = session.clock.restored(at: now, wall: wall, bootID: bootID)
        session.clock = restored.clock

        for (field, value) in [("session_id", session.request.sessionID), ("client_id", session.request.clientID),
                               ("pen_serial", session.request.penSerial), ("cartridge_id", session.cartridgeID)]
        where Identifier.canonical(value) == nil {
            problems.append("\(field) \"\(value)\" has nothing printable")
        }
        session.cartridgeID = Identifier.canonical(session.cartridgeID) ?? session.cartridgeID
        if let setpoint = session.setpoint {
            let violations = limits.validateSetpoint(setpoint, in: session.request.zone)
            if !violations.isEmpty {
                session.setpoint = nil
                actions.append(.warn(.restoredSetpointRefused(violations)))
            }
        }
        if !(0...core.warningTimes.count).contains(snapshot.warningsGiven) {
            problems.append("warnings_given \(snapshot.warningsGiven) is outside 0...\(core.warningTimes.count)")
        } else {
            core.warningsGiven = snapshot.warningsGiven
        }
        switch (snapshot.phase, snapshot.faults.isEmpty) {
        case (.faulted, true): problems.append("the record is faulted but its fault list is empty")
        case (.faulted, false): break
        case (_, false): problems.append("the record lists faults (\(snapshot.faults.map(\.rawValue).joined(separator: ", "))) but is \(snapshot.phase.rawValue)")
        case (_, true): break
        }
        switch (snapshot.phase, snapshot.closeReason) {
        case (.closed, nil): problems.append("the record is closed but has no close reason")
        case (.noSession, _): problems.append("the record holds a session but says no_session")
        case (.open, .some), (.armed, .some), (.running, .some), (.paused, .some):
            problems.append("the record is \(snapshot.phase.rawValue) but has a close reason")
        default: break
        }

        core.session = session
        core.closeReason = snapshot.closeReason
        core.history.recordSession(
            id: session.request.sessionID, client: session.request.clientID,
            lastActivity: session.clock.checkpointWall, isOpen: snapshot.closeReason == nil)
        switch snapshot.phase {
        case .closed:
            core.phase = .closed
        case .noSession, .open:
            core.phase = .open
        case .armed, .running, .paused:
            core.phase = .open
            core.latch(.daemonRestarted, detail: "stippled restarted while the session was \(snapshot.phase.rawValue)", at: now, into: &actions)
        case .faulted:
            core.phase = .faulted
            core.faultLatchedAt = now
            core.faults = snapshot.faults
            core.phaseBeforeFault = snapshot.closeReason == nil ? .open : .closed
        }
        if !problems.isEmpty {
            core.latch(.recordCorrupted, detail: problems.joined(separator: "; "), at: now, into: &actions)
        }
        if core.closeReason == nil {
            if case .untrusted(let reason) = restored.trust {
                actions.append(.warn(.sessionLocked(reason: reason)))
                core.closeSession(.clockUntrusted, at: now, into: &actions)
            } else if !problems.isEmpty {
                core.closeSession(.recordCorrupted, at: now, into: &actions)
            }
        }
        core.checkSessionTime(at: now, into: &actions)
        if let snapshot = core.snapshot { actions.append(.persist(snapshot)) }
        return (core, Decision(actions: stopsFirst(actions)))
    }
}
