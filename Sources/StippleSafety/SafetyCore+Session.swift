import StippleWire

/// Sessions: opening (gap rule, single-use cartridges, unique ids), the setpoint and the
/// cartridge, a new link to the pen, closing, and session time.
extension SafetyCore {
    mutating func open(
        _ request: SessionRequest, wall: WallTime, bootID: String, at now: MonotonicInstant,
        into actions: inout [SafetyAction]
    ) -> SafetyRefusal? {
        guard phase == .noSession || phase == .closed else {
            if phase == .faulted {
                return SafetyRefusal(.faultLatched, "a fault is latched (\(faultNames)); clear it before opening a session")
            }
            return SafetyRefusal(.sessionAlreadyOpen, "session \(session?.request.sessionID ?? "?") is still open; close it first")
        }
        var problems: [LimitViolation] = []
        let identifiers = [("session_id", request.sessionID), ("client_id", request.clientID),
                           ("cartridge_id", request.cartridgeID), ("pen_serial", request.penSerial)]
        for (field, value) in identifiers where Identifier.canonical(value) == nil {
            problems.append(LimitViolation(field: field, value: "\"\(value)\"", allowed: "1...\(Identifier.maxLength) printable ASCII characters"))
        }
        if request.technician.trimmingSpaces.isEmpty {
            problems.append(LimitViolation(field: "technician", value: "\"\(request.technician)\"", allowed: "a name (records need it)"))
        }
        if request.pigmentLots.isEmpty || request.pigmentLots.contains(where: { $0.trimmingSpaces.isEmpty }) {
            problems.append(LimitViolation(field: "pigment_lots", value: "\(request.pigmentLots)", allowed: "one or more non-empty lot numbers (records need them)"))
        }
        guard problems.isEmpty, let cartridgeID = Identifier.canonical(request.cartridgeID) else {
            return SafetyRefusal(.badRequest, "the session request is incomplete or malformed", violations: problems)
        }
        if history.knowsSession(request.sessionID) {
            return SafetyRefusal(.sessionIDReused, "session id \(request.sessionID) was already used; every session needs a new id")
        }
        if let record = history.client(request.clientID) {
            if let other = record.openSessionID {
                return SafetyRefusal(.sessionAlreadyOpen, "client \(request.clientID) already has an open session (\(other))")
            }
            let gap = wall - record.lastActivity
            if gap < limits.minimumSessionGap, (request.gapOverrideReason ?? "").trimmingSpaces.isEmpty {
                let minimum = limits.minimumSessionGap.wholeSeconds / 86_400
                let ago = gap < .zero
                    ? "in the future (the wall clock moved back)"
                    : "\(String(Double(gap.wholeSeconds) / 86_400, decimals: 1)) days ago"
                return SafetyRefusal(.sessionGap, "client \(request.clientID)'s last session was \(ago); sessions must be at least \(minimum) days apart unless an override reason is given")
            }
        }
        if let other = history.earlierUse(of: cartridgeID, otherThan: request.sessionID) {
            return SafetyRefusal(.cartridgeReused, "cartridge \(request.cartridgeID) was used in session \(other); cartridges are single-use")
        }
        session = ActiveSession(
            request: request, clock: SessionClock(startedAt: now, wall: wall, bootID: bootID),
            setpoint: nil, cartridgeID: cartridgeID)
        history.recordSession(id: request.sessionID, client: request.clientID, lastActivity: wall, isOpen: true)
        phase = .open
        faults = []
        closeReason = nil
        warningsGiven = 0
        lastPersist = nil
        return nil
    }

    /// A new link: whatever the pen held before counts for nothing until it is pushed again.
    mutating func penConnected(_ pen: PenIdentity, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        pushedLimits = nil
        if isArmedPhase {
            latch(.linkLost, detail: "pen \(pen.serial) opened a new link while the session was armed (its HELLO disarmed it)", at: now, into: &actions)
        }
        pushLimitsAndSetpoint(into: &actions)
    }

    /// Pushes the limits for the current setpoint (and the setpoint) when the pen may not hold
    /// them; never while armed (the pen refuses limits then, and the layer cannot change).
    mutating func pushLimitsAndSetpoint(into actions: inout [SafetyAction]) {
        guard !isArmedPhase, closeReason == nil, let expected = expectedPenLimits, let setpoint = session?.setpoint else { return }
        if pushedLimits != expected {
            actions.append(.pushLimits(expected))
            pushedLimits = expected
        }
        actions.append(.applySetpoint(setpoint))
    }

    mutating func setSetpoint(_ setpoint: Setpoint, into actions: inout [SafetyAction]) -> SafetyRefusal? {
        guard var session, closeReason == nil, phase == .open || isArmedPhase else { return illegal("change the setpoint") }
        let violations = limits.validateSetpoint(setpoint, in: session.request.zone)
        guard violations.isEmpty else {
            return SafetyRefusal(.setpointOutOfLimits, "setpoint refused", violations: violations)
        }
        if session.setpoint?.layer != setpoint.layer && phase != .open {
            return SafetyRefusal(.illegalTransition, "changing the layer changes the pen's limits: disarm first")
        }
        session.setpoint = setpoint
        self.session = session
        if isArmedPhase {
            actions.append(.applySetpoint(setpoint))
        } else {
            pushLimitsAndSetpoint(into: &actions)
        }
        return nil
    }

    mutating func changeCartridge(_ id: String) -> SafetyRefusal? {
        guard var session, phase == .open else { return illegal("change the cartridge") }
        guard let cartridgeID = Identifier.canonical(id) else {
            return SafetyRefusal(.badRequest, "cartridge id refused", violations: [
                LimitViolation(field: "cartridge_id", value: "\"\(id)\"", allowed: "1...\(Identifier.maxLength) printable ASCII characters")])
        }
        if let other = history.earlierUse(of: cartridgeID, otherThan: session.request.sessionID) {
            return SafetyRefusal(.cartridgeReused, "cartridge \(id) was used in session \(other); cartridges are single-use")
        }
        session.cartridgeID = cartridgeID
        self.session = session
        return nil
    }

    mutating func disarm(at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        // Never refused: a stop request is always honoured.
        actions.append(.stopNeedle(nil))
        actions.append(.disarmPen)
        if isArmedPhase {
            phase = .open
            armedConnection = nil
            runningSince = nil
            motionStoppedAt = now
        }
    }

    mutating func close(at now: MonotonicInstant, into actions: inout [SafetyAction]) -> SafetyRefusal? {
        guard session != nil, closeReason == nil, phase != .closed, phase != .noSession else { return illegal("close the session") }
        closeSession(.technician, at: now, into: &actions)
        return nil
    }

    /// Closes the session. A latched fault stays latched: closing records the session, it does
    /// not clear anything, and the next session cannot arm until a technician clears it.
    mutating func closeSession(_ reason: CloseReason, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        if phase != .open && phase != .noSession && phase != .closed {
            actions.append(.stopNeedle(nil))
            actions.append(.disarmPen)
        }
        if isArmedPhase { motionStoppedAt = now }
        closeReason = reason
        if phase == .faulted {
            phaseBeforeFault = .closed
        } else {
            phase = .closed
        }
        armedConnection = nil
        runningSince = nil
        if var session {
            session.clock.checkpoint(at: now, wall: lastWall)
            // Closed by the time limit: it used exactly the limit, even when the close came late.
            if reason == .timeLimit { session.clock.cap(at: limits.sessionLength) }
            self.session = session
            // The session was active at least until its start plus its session time.
            let end = max(lastWall, session.clock.startedWall + session.clock.elapsed(at: now))
            history.recordSession(id: session.request.sessionID, client: session.request.clientID, lastActivity: end, isOpen: false)
        }
        actions.append(.sessionClosed(reason))
        if let snapshot { actions.append(.persist(snapshot)) }
        lastPersist = now
    }

    /// Warnings at the configured times; at the session length, stop and close (H4).
    mutating func checkSessionTime(at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        guard let session, closeReason == nil, phase != .closed, phase != .noSession else { return }
        let elapsed = session.clock.elapsed(at: now)
        while warningsGiven < warningTimes.count, elapsed >= warningTimes[warningsGiven] {
            actions.append(.warn(.sessionTime(elapsed: elapsed, remaining: max(.zero, limits.sessionLength - elapsed))))
            warningsGiven += 1
        }
        if elapsed >= limits.sessionLength {
            closeSession(.timeLimit, at: now, into: &actions)
            warningsGiven = warningTimes.count
        }
    }

    mutating func persistIfDue(at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        guard var session, closeReason == nil, phase != .closed, phase != .noSession else { return }
        if let last = lastPersist, now - last < Self.persistInterval { return }
        session.clock.checkpoint(at: now, wall: lastWall)
        self.session = session
        history.recordSession(id: session.request.sessionID, client: session.request.clientID, lastActivity: lastWall, isOpen: true)
        if let snapshot { actions.append(.persist(snapshot)) }
        lastPersist = now
    }
}

extension String {
    var trimmingSpaces: Substring {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map { index(after: $0) } ?? start
        return self[start..<max(start, end)]
    }

    init(_ value: Double, decimals: Int) {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        self = "\(rounded)"
    }
}
