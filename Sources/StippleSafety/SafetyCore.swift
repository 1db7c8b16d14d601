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
    /// The cartridge recorded for this session, in canonical form (`Identifier`).
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
///
/// The step function is here; each concern has a file of its own: sessions and session time
/// (`SafetyCore+Session`), arming (`+Arming`), the runtime monitors (`+Monitors`), faults and
/// latches (`+Faults`), and restoring a persisted session (`+Restore`).
public struct SafetyCore: Sendable {
    public private(set) var limits: SafetyLimits
    public internal(set) var phase: SessionPhase = .noSession
    public internal(set) var session: ActiveSession?
    /// Latched faults, oldest first; empty unless `phase == .faulted`.
    public internal(set) var faults: [FaultReason] = []
    public internal(set) var closeReason: CloseReason?
    /// Earlier sessions, cartridges and clients: from the records, kept current by the core.
    public internal(set) var history: SafetyHistory

    var phaseBeforeFault: SessionPhase = .noSession
    var faultLatchedAt: MonotonicInstant?
    var armedConnection: ConnectionID?
    /// The cartridge the arming checks passed for: any other reported while armed stops (H10).
    var armedCartridge: CartridgeInfo?
    var armedAt: MonotonicInstant?
    /// Whether the pen armed for this session reports a depth for every stroke.
    var penHasDepthSensor = true
    /// The limits the core decided to push on the current link; nil until it has pushed them
    /// (a new link or a restart forgets them). Arming compares the pen's read-back with these.
    var pushedLimits: PenLimits?
    var lastTelemetry: MonotonicInstant?
    var lastSample: TelemetrySample?
    var runningSince: MonotonicInstant?
    /// When the daemon last took motion away (pedal release, disarm, close): frames already
    /// in flight may still report the motor on for a moment.
    var motionStoppedAt: MonotonicInstant?
    var pedalPressed = false
    var rateViolationRun = 0
    var depthMissingRun = 0
    var depthSameRun = 0
    var lastDepthUm: Int?
    var warningsGiven = 0
    var lastPersist: MonotonicInstant?
    var lastWall = WallTime(secondsSince1970: 0)
    /// The warning times in order, computed once: checked on every event.
    private(set) var warningTimes: [Duration]

    /// How often the session clock is handed out for persisting while a session is open.
    public static let persistInterval = Duration.seconds(10)
    /// A motor still reported on this long (plus one stroke period) after the daemon took motion
    /// away is the last stroke finishing, or a frame already on its way; beyond it, a pen that
    /// was stopped and keeps stroking gets ESTOP and `pen_unresponsive` (issue 15 item 9).
    public static let stopGrace = Duration.milliseconds(50)

    /// One stroke at `rateHz`, at most one stroke at the stall limit (an implausible rate adds nothing).
    static func strokePeriod(_ rateHz: Double) -> Duration {
        guard rateHz.isFinite, rateHz >= AbsoluteLimits.stallHz else { return .milliseconds(Int64(1000 / AbsoluteLimits.stallHz)) }
        return .microseconds(Int64(1_000_000 / rateHz))
    }
    /// A pen still reporting itself armed this soon after the core disarmed it is a DISARM on
    /// its way (retransmitted, if need be), not a pen that ignores it.
    public static let disarmGrace = Duration.milliseconds(500)
    /// While running, this many consecutive strokes without a depth reading (from a pen that
    /// has a sensor) stop the needle: the sensor is lost.
    public static let depthMissingStrokes = 3
    /// While running, this many consecutive strokes with the very same reading stop the
    /// needle: the sensor is stuck (real strokes scatter by several µm). The pen's own check
    /// waits for 50.
    public static let depthStuckStrokes = 40

    /// A core with no session. `history` is what the records know (`SafetyHistory()` for a
    /// new installation): it is required, so the gap and single-use rules cannot be skipped
    /// by leaving it out. Refuses a limit set that fails `SafetyLimits.validate()`.
    public init(limits: SafetyLimits = .defaults, history: SafetyHistory) throws(SafetyRefusal) {
        let problems = limits.validate()
        guard problems.isEmpty else {
            throw SafetyRefusal(.badRequest, "the limit set is invalid", violations: problems)
        }
        self.limits = limits
        self.history = history
        warningTimes = limits.warningTimes
    }

    /// This core under other limits: an engineer's change, once it is recorded. Everything else
    /// is kept — above all a fault that latched while the change was being recorded, which a
    /// fresh core would silently drop. The caller allows it only with no session in progress.
    public func replacingLimits(_ limits: SafetyLimits) throws(SafetyRefusal) -> SafetyCore {
        let problems = limits.validate()
        guard problems.isEmpty else {
            throw SafetyRefusal(.badRequest, "the limit set is invalid", violations: problems)
        }
        var core = self
        core.limits = limits
        core.warningTimes = limits.warningTimes
        return core
    }

    /// The state to persist; nil when there is no session.
    public var snapshot: SessionSnapshot? {
        guard let session else { return nil }
        return SessionSnapshot(session: session, phase: phase, faults: faults, closeReason: closeReason, warningsGiven: warningsGiven)
    }

    /// Session time at `now`; zero without a session. A closed session's time is the final time
    /// recorded at its close: it no longer counts.
    public func sessionElapsed(at now: MonotonicInstant) -> Duration {
        guard let session else { return .zero }
        if closeReason != nil { return SessionClock.plausible(session.clock.elapsedAtCheckpoint) }
        return session.clock.elapsed(at: now)
    }

    /// Session time left at `now`.
    public func sessionRemaining(at now: MonotonicInstant) -> Duration {
        max(.zero, limits.sessionLength - sessionElapsed(at: now))
    }

    /// The connection that armed the session while it is armed: an arm that waited (for the
    /// records, for the pen) checks it is still its own arm before it goes on.
    public var armedBy: ConnectionID? { isArmedPhase ? armedConnection : nil }

    /// How many times the core has armed: an arm that waited tells its own arm from a later one
    /// on the same connection (disarmed and armed again meanwhile).
    public internal(set) var armCount = 0

    /// Whether the needle may be moving according to the core.
    public var mayMove: Bool { phase == .running }

    /// The deepest a stroke may protrude now before the needle is stopped: the active band
    /// (setpoint layer capped by the zone) plus the tolerance, never past the zone limit.
    public var depthTripUm: Int {
        guard let session else { return min(limits.siteCeilingUm, AbsoluteLimits.zoneCeilingUm) }
        guard let layer = session.setpoint?.layer else { return limits.depthLimitUm(session.request.zone) }
        return limits.depthTripUm(layer, in: session.request.zone)
    }

    /// The limits the pen must hold for the current setpoint; nil without one.
    public var expectedPenLimits: PenLimits? {
        guard let session, let setpoint = session.setpoint else { return nil }
        return limits.penLimits(layer: setpoint.layer, zone: session.request.zone)
    }

    // MARK: - The step function

    /// Handles one event at monotonic time `now`.
    public mutating func handle(_ event: SafetyEvent, at now: MonotonicInstant) -> Decision {
        var actions: [SafetyAction] = []
        // Every reading counts toward session time (forward steps only), whatever the event.
        if closeReason == nil, phase != .closed { session?.clock.observe(now) }
        // Time first: no event is ever handled as if the four hours had not run out.
        checkSessionTime(at: now, into: &actions)
        let refusal: SafetyRefusal?
        switch event {
        case .openSession(let request, let wall, let bootID):
            lastWall = wall
            refusal = open(request, wall: wall, bootID: bootID, at: now, into: &actions)
        case .penConnected(let pen):
            penConnected(pen, at: now, into: &actions)
            refusal = nil
        case .setSetpoint(let setpoint):
            refusal = setSetpoint(setpoint, into: &actions)
        case .changeCartridge(let id):
            refusal = changeCartridge(id)
        case .arm(let facts):
            refusal = arm(facts, at: now, into: &actions)
        case .pedal(let pressed):
            pedal(pressed, at: now, into: &actions)
            refusal = nil
        case .telemetry(let sample):
            telemetry(sample, at: now, into: &actions)
            refusal = nil
        case .tick(let wall):
            lastWall = max(lastWall, wall)
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
            pushedLimits = nil
            if isArmedPhase { latch(.penReset, detail: "the pen rebooted", at: now, into: &actions) }
            refusal = nil
        case .linkLost:
            pushedLimits = nil
            if isArmedPhase { latch(.linkLost, detail: "the serial link to the pen was lost", at: now, into: &actions) }
            refusal = nil
        case .cartridgeRemoved:
            if isArmedPhase { latch(.cartridgeRemoved, detail: "the cartridge was removed while armed", at: now, into: &actions) }
            refusal = nil
        case .recordsUnavailable(let why):
            latch(.recordsUnavailable, detail: "the records cannot be written: \(why)", at: now, into: &actions)
            refusal = nil
        case .cartridgeReported(let cartridge):
            if isArmedPhase, let armed = armedCartridge, armed != cartridge {
                latch(.cartridgeChanged, detail: "the pen now reports cartridge \(cartridge.id) (lot \(cartridge.lot)); it was armed with \(armed.id) (lot \(armed.lot))",
                      at: now, into: &actions)
            }
            refusal = nil
        case .clientDisconnected(let connection):
            if isArmedPhase, connection == armedConnection {
                latch(.clientLost, detail: "\(connection), which armed the pen, disconnected", at: now, into: &actions)
            }
            refusal = nil
        case .clearFault:
            refusal = clearFault(at: now, into: &actions)
        }
        persistIfDue(at: now, into: &actions)
        return Decision(actions: Self.stopsFirst(actions), refusal: refusal)
    }

    /// Armed, running or paused: the phases a presence lease binds in.
    public var isArmedPhase: Bool { phase == .armed || phase == .running || phase == .paused }

    func illegal(_ what: String) -> SafetyRefusal {
        SafetyRefusal(.illegalTransition, "cannot \(what) while the session is \(phase.rawValue)")
    }
}
