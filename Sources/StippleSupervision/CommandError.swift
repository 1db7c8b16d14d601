import StippleAPI
import StippleSafety
import StippleWire

/// What the daemon knows of the pen on the current link.
public struct PenView: Sendable {
    public var identity: PenIdentity?
    public var firmware: String?
    public var capabilities: Capabilities?
    /// Set when the pen speaks another protocol major: the link goes no further (H17).
    public var versionRefusal: String?
    /// The limits checksum the pen read back (LIMITS after SET_LIMITS).
    public var readBackLimitsCRC: UInt32?
    /// The cartridge the pen's reader reports, or the one the technician typed (GPIO pens,
    /// pens without a reader).
    public var cartridge: CartridgeInfo?
    public var status: Message.Status?
    public var telemetry: Message.Telemetry?
    public var telemetryAt: MonotonicInstant?
}

/// A refusal for the API: what kind, a stable code, a sentence, and the details that name the
/// fields and checks. Never a 5xx for bad input.
public struct CommandError: Error, Sendable {
    public enum Kind: Sendable { case badRequest, forbidden, notFound, conflict, unavailable, unprocessable }
    public var kind: Kind
    /// One of docs/openapi.yaml's `ProblemCode`s (generated): a code the spec does not list
    /// does not compile.
    public var code: ProblemCode
    public var message: String
    public var state: String?
    public var violations: [LimitViolation] = []
    public var armingFailures: [ArmingFailure] = []

    public init(_ kind: Kind, _ code: ProblemCode, _ message: String, state: String? = nil,
                violations: [LimitViolation] = [], armingFailures: [ArmingFailure] = []) {
        self.kind = kind
        self.code = code
        self.message = message
        self.state = state
        self.violations = violations
        self.armingFailures = armingFailures
    }
}

/// The three stops, by the route that asks for them.
public enum StopKind: String, Sendable {
    case estop, stop, disarm
}

/// A stop whose record could not be written: it stopped all the same, and says so
/// (`stopped_unrecorded`, issue 12).
public struct StopUnrecorded: Encodable, Sendable, Equatable {
    public var code: String
    public var detail: String

    public init(code: String, detail: String) {
        self.code = code
        self.detail = detail
    }
}
