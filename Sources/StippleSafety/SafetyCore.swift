import StippleWire

/// The session states (docs/safety.md has the diagram and every transition).
public enum SessionPhase: String, Hashable, Sendable, Codable, CaseIterable {
    case noSession = "no_session"
    case open
    case armed
    case running
    case paused
    case closed
    case faulted
}

/// The session as the core holds it.
public struct ActiveSession: Hashable, Sendable, Codable {
    public var request: SessionRequest
    public var clock: SessionClock
    public var setpoint: Setpoint?
    public var cartridgeID: String
}

/// Everything the daemon persists so a restart continues the same session and the same
/// four hours (`SafetyCore.restoring`).
public struct SessionSnapshot: Hashable, Sendable, Codable {
    public var session: ActiveSession
    public var phase: SessionPhase
    public var faults: [FaultReason]
    public var closeReason: CloseReason?
    public var warningsGiven: Int
}

/// The pure safety core: events and time in, decisions out. It decides everything about
/// whether the needle may move and never performs I/O; the daemon (or a test) carries the
/// actions out. Every event carries the monotonic time it happened.
public struct SafetyCore: Sendable {
    public let limits: SafetyLimits
    public private(set) var phase: SessionPhase = .noSession
    public private(set) var session: ActiveSession?
    /// Latched faults, oldest first; empty unless `phase == .faulted`.
    public private(set) var faults: [FaultReason] = []
    public private(set) var closeReason: CloseReason?
    public private(set) var ledger: CartridgeLedger

    private var phaseBeforeFault: SessionPhase = .noSession
    private var armedConnection: ConnectionID?
    private var lastTelemetry: MonotonicInstant?
    private var runningSince: MonotonicInstant?
    /// When the daemon last took motion away (pedal release, disarm, close): frames already
    /// in flight may still report the motor on for a moment.
    private var motionStoppedAt: MonotonicInstant?
    private var pedalPressed = false
    private var rateViolationRun = 0
    private var warningsGiven = 0
    private var lastPersist: MonotonicInstant?
    private var lastWall = WallTime(secondsSince1970: 0)
    /// The configured warning times in order, sorted once: checked on every event.
    private let warningTimes: [Duration]

    /// How often the session clock is handed out for persisting while a session is open.
    public static let persistInterval = Duration.seconds(10)
    /// A motor still reported on this soon after the pedal is released is the last stroke
    /// finishing, not unexpected motion.
    public static let stopGrace = Duration.milliseconds(100)

    /// A core with no session. Refuses a limit set that fails `SafetyLimits.validate()`.
    public init(limits: SafetyLimits = .defaults, ledger: CartridgeLedger = CartridgeLedger()) throws(SafetyRefusal) {
        let problems = limits.validate()
        guard problems.isEmpty else {
            throw SafetyRefusal(.badRequest, "the limit set is invalid", violations: problems)
        }
        self.limits = limits
        self.ledger = ledger
        warningTimes = limits.sessionWarnings.sorted()
    }

    /// A core continuing a persisted session after a daemon restart. A session that was armed
    /// comes back faulted (`daemonRestarted`): a restart never leaves the pen armed (H11).
    public static func restoring(
        _ snapshot: SessionSnapshot, limits: SafetyLimits, ledger: CartridgeLedger,
        at now: MonotonicInstant, wall: WallTime, bootID: String
    ) throws(SafetyRefusal) -> (SafetyCore, Decision) {
        var core = try SafetyCore(limits: limits, ledger: ledger)
        var session = snapshot.session
        session.clock = session.clock.restored(at: now, wall: wall, bootID: bootID)
        core.session = session
        core.warningsGiven = snapshot.warningsGiven
        core.closeReason = snapshot.closeReason
        core.lastWall = wall
        var actions: [SafetyAction] = []
        switch snapshot.phase {
        case .closed:
            core.phase = .closed
        case .noSession:
            core.phase = .noSession
            core.session = nil
        case .open:
            core.phase = .open
        case .armed, .running, .paused:
            core.phase = .open
            core.latch(.daemonRestarted, detail: "stippled restarted while the session was \(snapshot.phase.rawValue)", at: now, into: &actions)
        case .faulted:
            core.phase = .faulted
            core.faults = snapshot.faults
            core.phaseBeforeFault = .open
        }
        core.checkSessionTime(at: now, into: &actions)
        if let snapshot = core.snapshot { actions.append(.persist(snapshot)) }
        return (core, Decision(actions: actions))
    }

    /// The state to persist; nil when there is no session.
    public var snapshot: SessionSnapshot? {
        guard let session else { return nil }
        return SessionSnapshot(session: session, phase: phase, faults: faults, closeReason: closeReason, warningsGiven: warningsGiven)
    }

    /// Session time at `now`; zero without a session.
    public func sessionElapsed(at now: MonotonicInstant) -> Duration { session?.clock.elapsed(at: now) ?? .zero }

    /// Session time left at `now`.
    public func sessionRemaining(at now: MonotonicInstant) -> Duration {
        max(.zero, limits.sessionLength - sessionElapsed(at: now))
    }

    /// Whether the needle may be moving according to the core.
    public var mayMove: Bool { phase == .running }

    // MARK: - The step function

    /// Handles one event at monotonic time `now`.
    public mutating func handle(_ event: SafetyEvent, at now: MonotonicInstant) -> Decision {
        var actions: [SafetyAction] = []
        // Time first: no event is ever handled as if the four hours had not run out.
        checkSessionTime(at: now, into: &actions)
        let refusal: SafetyRefusal?
        switch event {
        case .openSession(let request, let wall, let bootID):
            lastWall = wall
            refusal = open(request, wall: wall, bootID: bootID, at: now, into: &actions)
        case .setSetpoint(let setpoint):
            refusal = setSetpoint(setpoint, into: &actions)
        case .changeCartridge(let id):
            refusal = changeCartridge(id, into: &actions)
        case .arm(let facts):
            refusal = arm(facts, at: now, into: &actions)
        case .pedal(let pressed):
            pedal(pressed, at: now, into: &actions)
            refusal = nil
        case .telemetry(let sample):
            telemetry(sample, at: now, into: &actions)
            refusal = nil
        case .tick(let wall):
            lastWall = wall
            tick(at: now, into: &actions)
            refusal = nil
        case .disarm:
            disarm(at: now, into: &actions)
            refusal = nil
        case .closeSession:
            refusal = close(at: now, into: &actions)
        case .emergencyStop(let source):
            actions.append(.emergencyStopPen)
            latch(.emergencyStop, detail: "emergency stop from \(source.rawValue)", at: now, into: &actions)
            refusal = nil
        case .penFault(let code):
            penFault(code, at: now, into: &actions)
            refusal = nil
        case .penReset:
            if isArmedPhase { latch(.penReset, detail: "the pen rebooted", at: now, into: &actions) }
            refusal = nil
        case .linkLost:
            if isArmedPhase { latch(.linkLost, detail: "the serial link to the pen was lost", at: now, into: &actions) }
            refusal = nil
        case .cartridgeRemoved:
            if isArmedPhase { latch(.cartridgeRemoved, detail: "the cartridge was removed while armed", at: now, into: &actions) }
            refusal = nil
        case .clientDisconnected(let connection):
            if isArmedPhase, connection == armedConnection {
                latch(.clientLost, detail: "\(connection), which armed the pen, disconnected", at: now, into: &actions)
            }
            refusal = nil
        case .clearFault(let estopPressed):
            refusal = clearFault(estopPressed: estopPressed, at: now, into: &actions)
        }
        persistIfDue(at: now, into: &actions)
        return Decision(actions: Self.stopsFirst(actions), refusal: refusal)
    }

    // MARK: - Transitions

    private var isArmedPhase: Bool { phase == .armed || phase == .running || phase == .paused }

    private func illegal(_ what: String) -> SafetyRefusal {
        SafetyRefusal(.illegalTransition, "cannot \(what) while the session is \(phase.rawValue)")
    }

    private mutating func open(
        _ request: SessionRequest, wall: WallTime, bootID: String, at now: MonotonicInstant,
        into actions: inout [SafetyAction]
    ) -> SafetyRefusal? {
        guard phase == .noSession || phase == .closed else {
            return phase == .faulted ? illegal("open a session") : SafetyRefusal(.sessionAlreadyOpen, "session \(session?.request.sessionID ?? "?") is still open; close it first")
        }
        var missing: [String] = []
        for (field, value) in [("session_id", request.sessionID), ("client_id", request.clientID), ("technician", request.technician),
                               ("cartridge_id", request.cartridgeID), ("pen_serial", request.penSerial)]
        where value.trimmingSpaces.isEmpty {
            missing.append(field)
        }
        if request.pigmentLots.isEmpty || request.pigmentLots.contains(where: { $0.trimmingSpaces.isEmpty }) { missing.append("pigment_lots") }
        guard missing.isEmpty else {
            return SafetyRefusal(.badRequest, "missing or empty: \(missing.joined(separator: ", ")) (records need them)")
        }
        if request.history.hasOpenSession {
            return SafetyRefusal(.sessionAlreadyOpen, "client \(request.clientID) already has an open session")
        }
        if let last = request.history.lastSessionActivity {
            let gap = Duration.seconds(wall.secondsSince1970 - last.secondsSince1970)
            if gap < limits.minimumSessionGap, (request.gapOverrideReason ?? "").trimmingSpaces.isEmpty {
                let days = Double(gap.components.seconds) / 86_400
                let minimum = limits.minimumSessionGap.components.seconds / 86_400
                let ago = gap < .zero ? "in the future (the wall clock moved back)" : "\(String(days, decimals: 1)) days ago"
                return SafetyRefusal(.sessionGap, "client \(request.clientID)'s last session was \(ago); sessions must be at least \(minimum) days apart unless an override reason is given")
            }
        }
        if let other = ledger.earlierUse(of: request.cartridgeID, otherThan: request.sessionID) {
            return SafetyRefusal(.cartridgeReused, "cartridge \(request.cartridgeID) was used in session \(other); cartridges are single-use")
        }
        session = ActiveSession(
            request: request, clock: SessionClock(startedAt: now, wall: wall, bootID: bootID),
            setpoint: nil, cartridgeID: request.cartridgeID)
        phase = .open
        faults = []
        closeReason = nil
        warningsGiven = 0
        lastPersist = nil
        return nil
    }

    private mutating func setSetpoint(_ setpoint: Setpoint, into actions: inout [SafetyAction]) -> SafetyRefusal? {
        guard var session, phase == .open || isArmedPhase else { return illegal("change the setpoint") }
        let violations = limits.validateSetpoint(setpoint, in: session.request.zone)
        guard violations.isEmpty else {
            return SafetyRefusal(.setpointOutOfLimits, "setpoint refused", violations: violations)
        }
        let layerChanges = session.setpoint?.layer != setpoint.layer
        if layerChanges && phase != .open {
            return SafetyRefusal(.illegalTransition, "changing the layer changes the pen's limits: disarm first")
        }
        if layerChanges {
            actions.append(.pushLimits(limits.penLimits(layer: setpoint.layer, zone: session.request.zone)))
        }
        actions.append(.applySetpoint(setpoint))
        session.setpoint = setpoint
        self.session = session
        return nil
    }

    private mutating func changeCartridge(_ id: String, into actions: inout [SafetyAction]) -> SafetyRefusal? {
        guard var session, phase == .open else { return illegal("change the cartridge") }
        guard !id.trimmingSpaces.isEmpty else { return SafetyRefusal(.badRequest, "cartridge_id is empty") }
        if let other = ledger.earlierUse(of: id, otherThan: session.request.sessionID) {
            return SafetyRefusal(.cartridgeReused, "cartridge \(id) was used in session \(other); cartridges are single-use")
        }
        session.cartridgeID = id
        self.session = session
        return nil
    }

    /// Every arming check, all evaluated; empty means the pen may be armed.
    public func armingFailures(_ facts: ArmingFacts, at now: MonotonicInstant) -> [ArmingFailure] {
        var failures: [ArmingFailure] = []
        func fail(_ code: ArmingFailure.Code, _ message: String) { failures.append(ArmingFailure(code, message)) }
        if phase != .open && phase != .faulted {
            fail(.notOpen, "the session is \(phase.rawValue); arming needs an open, disarmed session")
        }
        if let pen = facts.pen {
            if pen.protocolMajor != facts.hostProtocolMajor {
                fail(.protocolIncompatible, "the pen speaks protocol \(pen.protocolMajor).\(pen.protocolMinor), stippled speaks \(facts.hostProtocolMajor).\(facts.hostProtocolMinor)")
            }
            if let bound = session?.request.penSerial, pen.serial != bound {
                fail(.wrongPen, "this session is bound to pen \(bound); the connected pen is \(pen.serial)")
            }
        } else {
            fail(.penNotIdentified, "no pen has completed the handshake")
        }
        if facts.pushedLimitsCRC == nil || facts.readBackLimitsCRC == nil || facts.pushedLimitsCRC != facts.readBackLimitsCRC {
            fail(.limitsUnverified, "the pen's limits were not read back with a matching checksum")
        }
        if session?.setpoint == nil { fail(.setpointMissing, "no depth and rate setpoint has been set") }
        if let cartridge = facts.cartridge {
            if cartridge.needleCount != AbsoluteLimits.needleCount {
                fail(.needleCount, "the cartridge has \(cartridge.needleCount) needles; SMP needs \(AbsoluteLimits.needleCount)")
            }
            if !AbsoluteLimits.needleDiameterUm.contains(cartridge.needleDiameterUm) {
                fail(.needleDiameter, "needle diameter \(cartridge.needleDiameterUm) µm is outside \(AbsoluteLimits.needleDiameterUm.lowerBound)...\(AbsoluteLimits.needleDiameterUm.upperBound) µm")
            }
            if let expiry = cartridge.expiryDay {
                if expiry < facts.today { fail(.cartridgeExpired, "cartridge \(cartridge.id) expired \(facts.today - expiry) days ago") }
            } else {
                fail(.cartridgeExpiryUnknown, "cartridge \(cartridge.id) has no known expiry date")
            }
            if let session {
                if let other = ledger.earlierUse(of: cartridge.id, otherThan: session.request.sessionID) {
                    fail(.cartridgeReused, "cartridge \(cartridge.id) was already used in session \(other)")
                }
                if cartridge.id != session.cartridgeID {
                    fail(.cartridgeMismatch, "the pen holds cartridge \(cartridge.id) but the session records \(session.cartridgeID)")
                }
            }
        } else {
            fail(.noCartridge, "no cartridge is in the pen")
        }
        if facts.pedalPressed { fail(.pedalPressed, "release the pedal before arming") }
        if facts.estopPressed { fail(.estopPressed, "the emergency stop is pressed") }
        if !faults.isEmpty || facts.penFaultLatched {
            let names = faults.map(\.rawValue) + (facts.penFaultLatched ? ["pen"] : [])
            fail(.faultLatched, "a fault is latched (\(names.joined(separator: ", "))); clear it first")
        }
        if session != nil && sessionRemaining(at: now) <= .zero {
            fail(.sessionTimeExhausted, "the session has used its \(limits.sessionLength.clockText)")
        }
        if facts.connection == nil || !facts.connectionAlive {
            fail(.clientNotConnected, "the client asking to arm has no live connection")
        }
        return failures
    }

    private mutating func arm(_ facts: ArmingFacts, at now: MonotonicInstant, into actions: inout [SafetyAction]) -> SafetyRefusal? {
        guard phase == .open || phase == .faulted else { return illegal("arm") }
        let failures = armingFailures(facts, at: now)
        guard failures.isEmpty, let session, let connection = facts.connection else {
            return SafetyRefusal(.armingChecksFailed, "\(failures.count) arming check(s) failed", armingFailures: failures)
        }
        ledger.record(session.cartridgeID, in: session.request.sessionID)
        actions.append(.recordCartridgeUse(cartridgeID: session.cartridgeID, sessionID: session.request.sessionID))
        actions.append(.armPen)
        phase = .armed
        armedConnection = connection
        pedalPressed = false
        return nil
    }

    private mutating func pedal(_ pressed: Bool, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        guard pressed != pedalPressed else { return }
        pedalPressed = pressed
        switch (phase, pressed) {
        case (.armed, true), (.paused, true):
            phase = .running
            runningSince = now
            motionStoppedAt = nil
            lastTelemetry = now
            rateViolationRun = 0
        case (.running, false):
            phase = .paused
            motionStoppedAt = now
            runningSince = nil
        default:
            break  // the pedal moves nothing unless armed
        }
    }

    private mutating func telemetry(_ sample: TelemetrySample, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        lastTelemetry = now
        // H1: the over-limit stroke is answered in this very step, in every state.
        let depthLimit = session.map { limits.depthLimitUm($0.request.zone) } ?? min(limits.siteCeilingUm, AbsoluteLimits.depthCeilingUm)
        if let peak = sample.peakProtrusionUm, peak > depthLimit {
            latch(.overDepth, detail: "stroke protruded \(peak) µm; the limit is \(depthLimit) µm", at: now, into: &actions)
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
        if sample.motorOn {
            switch phase {
            case .running:
                break
            case _ where motionStoppedAt.map { now - $0 <= Self.stopGrace } ?? false:
                break
            case .faulted:
                actions.append(.stopNeedle(nil))  // already latched: keep insisting
                return
            default:
                actions.append(.emergencyStopPen)
                latch(.unexpectedMotion, detail: "the pen reports its motor on while the session is \(phase.rawValue)", at: now, into: &actions)
                return
            }
        }
        guard phase == .running, let since = runningSince, now - since >= limits.spinUpGrace else { return }
        let rate = sample.strokeRateHz
        if rate > AbsoluteLimits.runawayHz {
            latch(.rateRunaway, detail: "stroke rate \(rate) Hz is above \(AbsoluteLimits.runawayHz) Hz", at: now, into: &actions)
        } else if rate < AbsoluteLimits.stallHz {
            latch(.stall, detail: "stroke rate \(rate) Hz is below \(AbsoluteLimits.stallHz) Hz", at: now, into: &actions)
        } else if rate < limits.rateMinHz * (1 - limits.rateTolerance) || rate > limits.rateMaxHz * (1 + limits.rateTolerance) {
            rateViolationRun += 1
            if rateViolationRun >= limits.rateViolationStrokes {
                latch(.rateOutOfWindow, detail: "stroke rate \(rate) Hz outside \(limits.rateMinHz)...\(limits.rateMaxHz) Hz for \(rateViolationRun) strokes", at: now, into: &actions)
            }
        } else {
            rateViolationRun = 0
        }
    }

    private mutating func tick(at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        if phase == .running, let last = lastTelemetry, now - last > limits.telemetrySilence {
            latch(.telemetrySilence, detail: "no telemetry for \((now - last).milliseconds) ms while running", at: now, into: &actions)
        }
    }

    private mutating func disarm(at now: MonotonicInstant, into actions: inout [SafetyAction]) {
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

    private mutating func close(at now: MonotonicInstant, into actions: inout [SafetyAction]) -> SafetyRefusal? {
        guard session != nil, closeReason == nil, phase != .closed else { return illegal("close the session") }
        closeSession(.technician, at: now, into: &actions)
        return nil
    }

    private mutating func closeSession(_ reason: CloseReason, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        if phase != .open && phase != .noSession {
            actions.append(.stopNeedle(nil))
            actions.append(.disarmPen)
        }
        if isArmedPhase { motionStoppedAt = now }
        // Closing ends the session's faults with it; they are already in the record.
        faults = []
        phase = .closed
        closeReason = reason
        armedConnection = nil
        runningSince = nil
        actions.append(.sessionClosed(reason))
        session?.clock.checkpoint(at: now, wall: lastWall)
        if let snapshot { actions.append(.persist(snapshot)) }
        lastPersist = now
    }

    private mutating func penFault(_ code: FaultCode, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
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
        default: reason = .penFault
        }
        // A pen that rebooted while the session was merely open lost nothing that mattered.
        if reason == .penReset && !isArmedPhase { return }
        latch(reason, detail: "the pen reported \(code)", at: now, into: &actions)
    }

    private mutating func clearFault(estopPressed: Bool, at now: MonotonicInstant, into actions: inout [SafetyAction]) -> SafetyRefusal? {
        guard phase == .faulted else { return SafetyRefusal(.illegalTransition, "no fault is latched") }
        if estopPressed {
            return SafetyRefusal(.faultPersists, "release the emergency stop before clearing the fault")
        }
        faults = []
        switch phaseBeforeFault {
        case .noSession: phase = .noSession
        case .closed: phase = .closed
        default: phase = session == nil ? .noSession : .open
        }
        actions.append(.clearPenFault)
        checkSessionTime(at: now, into: &actions)
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
    private mutating func latch(_ reason: FaultReason, detail: String, at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        actions.append(.stopNeedle(reason))
        actions.append(.disarmPen)
        if faults.contains(reason) { return }
        if phase != .faulted { phaseBeforeFault = phase }
        faults.append(reason)
        phase = .faulted
        armedConnection = nil
        runningSince = nil
        actions.append(.faultLatched(reason, detail: detail))
        session?.clock.checkpoint(at: now, wall: lastWall)
        if let snapshot { actions.append(.persist(snapshot)) }
        lastPersist = now
    }

    /// Warnings at the configured times; at the session length, stop and close (H4).
    private mutating func checkSessionTime(at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        guard let session, closeReason == nil, phase != .closed, phase != .noSession else { return }
        let elapsed = session.clock.elapsed(at: now)
        let warnings = warningTimes
        while warningsGiven < warnings.count, elapsed >= warnings[warningsGiven] {
            actions.append(.warn(.sessionTime(elapsed: elapsed, remaining: max(.zero, limits.sessionLength - elapsed))))
            warningsGiven += 1
        }
        if elapsed >= limits.sessionLength {
            closeSession(.timeLimit, at: now, into: &actions)
            warningsGiven = warnings.count
        }
    }

    private mutating func persistIfDue(at now: MonotonicInstant, into actions: inout [SafetyAction]) {
        guard session != nil, closeReason == nil, phase != .closed, phase != .noSession else { return }
        if let last = lastPersist, now - last < Self.persistInterval { return }
        session?.clock.checkpoint(at: now, wall: lastWall)
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

extension Duration {
    var milliseconds: Int64 { totalNanoseconds / 1_000_000 }
}
