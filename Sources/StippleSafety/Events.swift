import StippleWire

/// Why the needle was stopped and a fault latched. Only an explicit technician action
/// (`clearFault`) releases a latch, and the session is then disarmed.
public enum FaultReason: String, Hashable, Sendable, Codable, CaseIterable {
    /// A stroke protruded beyond the active band (plus tolerance) or the zone's limit (H1).
    case overDepth = "over_depth"
    /// While the needle ran, depth readings went missing, negative or stuck (H1).
    case depthSensor = "depth_sensor"
    /// A telemetry number that cannot be true: a NaN, infinite or negative stroke rate.
    case implausibleTelemetry = "implausible_telemetry"
    /// Stroke rate outside the window beyond the tolerance for N strokes (H3).
    case rateOutOfWindow = "rate_out_of_window"
    /// Stroke rate above the absolute runaway limit (H3).
    case rateRunaway = "rate_runaway"
    /// Stroke rate below the absolute stall limit while running (H3).
    case stall
    /// No telemetry while running (H6).
    case telemetrySilence = "telemetry_silence"
    /// The serial link was lost or stopped acknowledging (H5, H7).
    case linkLost = "link_lost"
    /// The pen reported a fault of its own (its code is in the record).
    case penFault = "pen_fault"
    /// The pen rebooted (brown-out, watchdog) during the session (H11).
    case penReset = "pen_reset"
    /// The cartridge left the pen while armed (H10).
    case cartridgeRemoved = "cartridge_removed"
    /// The pen reported another cartridge (another id, lot, expiry or needles) while armed, with
    /// or without a removal first (H10): the new one must pass every H9 check before any arm.
    case cartridgeChanged = "cartridge_changed"
    /// The pen acknowledged a stop but kept reporting strokes: the daemon sent ESTOP (H1, H12).
    case penUnresponsive = "pen_unresponsive"
    /// The records cannot be written (a full disk at start): nothing may be armed that could not
    /// be recorded (H15). Cleared once writes land again.
    case recordsUnavailable = "records_unavailable"
    /// Emergency stop, from any source (H12).
    case emergencyStop = "emergency_stop"
    /// The operator's client (the GUI) that armed went away: its event stream closed and no
    /// presence ping came within the lease (a crashed GUI stops the needle).
    case clientLost = "operator_lost"
    /// The pen moved, or reported itself armed, when the daemon had not armed it (H11).
    case unexpectedMotion = "unexpected_motion"
    /// The daemon restarted while the session was armed.
    case daemonRestarted = "daemon_restarted"
    /// A persisted record contradicted itself or held impossible values (the fault list of a
    /// faulted record lost, for one): fail safe until a technician clears it.
    case recordCorrupted = "record_corrupted"
}

/// Where an emergency stop came from; every source has the same effect.
public enum EmergencyStopSource: String, Hashable, Sendable, Codable {
    case api, penButton = "pen_button", gpio, daemon
}

/// Why a session closed.
public enum CloseReason: String, Hashable, Sendable, Codable {
    case technician
    /// Four hours of session time (H4).
    case timeLimit = "time_limit"
    /// After a restart no trustworthy bound on the session time was left (the wall clock set
    /// back across a reboot, a monotonic reading behind its own checkpoint): locked (H4).
    case clockUntrusted = "clock_untrusted"
    /// The persisted session could not be trusted (impossible values): locked.
    case recordCorrupted = "record_corrupted"
}

/// Warnings for the technician, each given once per session.
public enum SessionWarning: Hashable, Sendable {
    case sessionTime(elapsed: Duration, remaining: Duration)
    /// The setpoint of a restored session no longer passes the limits in force: dropped, so
    /// a new one must be set (and pushed) before arming.
    case restoredSetpointRefused([LimitViolation])
    /// A restored session was locked because its session time could not be trusted.
    case sessionLocked(reason: String)
}

/// One telemetry frame as the core sees it (protocol units converted at the edge).
public struct TelemetrySample: Hashable, Sendable {
    /// Peak protrusion of the last stroke; nil when not measured (no sensor, no stroke).
    public var peakProtrusionUm: Int?
    /// Measured stroke rate; 0 when stopped.
    public var strokeRateHz: Double
    public var motorOn: Bool
    public var pedalPressed: Bool
    public var estopPressed: Bool
    public var cartridgePresent: Bool
    /// The pen says it is armed (its own state, whatever the daemon believes).
    public var penArmed: Bool
    /// The pen says it holds a latched fault of its own.
    public var penFaultLatched: Bool

    public init(
        peakProtrusionUm: Int?, strokeRateHz: Double, motorOn: Bool, pedalPressed: Bool,
        estopPressed: Bool = false, cartridgePresent: Bool = true, penArmed: Bool = false, penFaultLatched: Bool = false
    ) {
        self.peakProtrusionUm = peakProtrusionUm
        self.strokeRateHz = strokeRateHz
        self.motorOn = motorOn
        self.pedalPressed = pedalPressed
        self.estopPressed = estopPressed
        self.cartridgePresent = cartridgePresent
        self.penArmed = penArmed
        self.penFaultLatched = penFaultLatched
    }
}

/// What the technician opens a session with.
public struct SessionRequest: Hashable, Sendable, Codable {
    public var sessionID: String
    public var clientID: String
    public var technician: String
    public var zone: Zone
    /// The cartridge the technician declares for this session.
    public var cartridgeID: String
    public var pigmentLots: [String]
    /// The serial number of the pen this session is bound to (H8).
    public var penSerial: String
    /// A reason to open inside the minimum gap; recorded with the session.
    public var gapOverrideReason: String?
    /// An engineer's reason to open while the clinic's database cannot be reached (offline
    /// policy allow-with-override, docs/fleet.md); recorded with the session, whose clinic claim
    /// is then made when the link returns.
    public var clinicOfflineReason: String?

    public init(
        sessionID: String, clientID: String, technician: String, zone: Zone, cartridgeID: String,
        pigmentLots: [String], penSerial: String, gapOverrideReason: String? = nil, clinicOfflineReason: String? = nil
    ) {
        self.sessionID = sessionID
        self.clientID = clientID
        self.technician = technician
        self.zone = zone
        self.cartridgeID = cartridgeID
        self.pigmentLots = pigmentLots
        self.penSerial = penSerial
        self.gapOverrideReason = gapOverrideReason
        self.clinicOfflineReason = clinicOfflineReason
    }
}

/// An input to the safety core. Every event carries the monotonic time it happened.
public enum SafetyEvent: Hashable, Sendable {
    case openSession(SessionRequest, wall: WallTime, bootID: String)
    /// A pen completed the handshake (HELLO_REPLY) on a new link: limits and setpoint are
    /// pushed again, and nothing of an earlier link counts towards arming.
    case penConnected(PenIdentity)
    case setSetpoint(Setpoint)
    case changeCartridge(String)
    case arm(ArmingFacts)
    case pedal(pressed: Bool)
    case telemetry(TelemetrySample)
    /// Time passes; the daemon sends one at least every 50 ms (and the simulator on its virtual clock).
    case tick(wall: WallTime)
    case disarm
    case closeSession
    case emergencyStop(EmergencyStopSource)
    /// The pen reported a latched fault (FAULT message, or STATUS with a fault).
    case penFault(FaultCode)
    case penReset
    case linkLost
    case cartridgeRemoved
    /// The records cannot be written (the daemon's probe write failed at start).
    case recordsUnavailable(String)
    /// The pen reported the cartridge it holds (CARTRIDGE inserted, or a reader's answer).
    case cartridgeReported(CartridgeInfo)
    case clientDisconnected(ConnectionID)
    /// The technician clears a latched fault. The core judges whether the cause is gone from
    /// the telemetry it has seen itself, never from what the caller says.
    case clearFault
}

/// What the shell must do. Stop actions come first in every decision.
public enum SafetyAction: Hashable, Sendable {
    /// Stop the needle now (MOTOR_STOP, or the GPIO motor line low) and disarm the pen.
    case stopNeedle(FaultReason?)
    /// Send ESTOP to the pen (idempotent; retried until acknowledged).
    case emergencyStopPen
    /// Disarm the pen (DISARM).
    case disarmPen
    /// Push these limits and read them back before arming (SET_LIMITS, GET_LIMITS).
    case pushLimits(PenLimits)
    /// Send the setpoint (SET_SETPOINTS).
    case applySetpoint(Setpoint)
    /// Arm the pen and enable the motor (ARM, MOTOR_RUN): the needle moves only with the pedal.
    case armPen
    /// Tell the technician.
    case warn(SessionWarning)
    /// A fault was latched: record it (durably) and show it.
    case faultLatched(FaultReason, detail: String)
    /// The session closed: record it durably.
    case sessionClosed(CloseReason)
    /// The cartridge is now bound to this session in the ledger: record it durably before arming.
    case recordCartridgeUse(cartridgeID: String, sessionID: String)
    /// Clear the pen's latched fault (CLEAR_FAULT); it stays disarmed.
    case clearPenFault
    /// Persist this session state (the clock above all) durably.
    case persist(SessionSnapshot)
}

/// Why a request was refused; nothing changed.
public struct SafetyRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, CaseIterable {
        case illegalTransition = "illegal_transition"
        case armingChecksFailed = "arming_checks_failed"
        case setpointOutOfLimits = "setpoint_out_of_limits"
        case sessionGap = "session_gap"
        case sessionAlreadyOpen = "session_already_open"
        case sessionIDReused = "session_id_reused"
        case faultLatched = "fault_latched"
        case faultPersists = "fault_persists"
        case cartridgeReused = "cartridge_reused"
        case badRequest = "bad_request"
    }

    public var code: Code
    public var message: String
    /// For arming: every failed check, not just the first.
    public var armingFailures: [ArmingFailure]
    /// For setpoints: every violated limit.
    public var violations: [LimitViolation]

    public init(_ code: Code, _ message: String, armingFailures: [ArmingFailure] = [], violations: [LimitViolation] = []) {
        self.code = code
        self.message = message
        self.armingFailures = armingFailures
        self.violations = violations
    }

    public var description: String {
        var text = "\(code.rawValue): \(message)"
        for failure in armingFailures { text += "\n  - \(failure)" }
        for violation in violations { text += "\n  - \(violation)" }
        return text
    }
}

/// The result of one step: actions to carry out (stops first), or a refusal.
public struct Decision: Hashable, Sendable {
    public var actions: [SafetyAction]
    public var refusal: SafetyRefusal?

    public init(actions: [SafetyAction] = [], refusal: SafetyRefusal? = nil) {
        self.actions = actions
        self.refusal = refusal
    }

    public static let none = Decision()

    public var stopsNeedle: Bool {
        actions.contains { action in
            switch action {
            case .stopNeedle, .emergencyStopPen: true
            default: false
            }
        }
    }
}
