import StippleSafety

/// The rules that span a clinic's workstations — a client's sessions the gap apart and never at
/// once, a cartridge used once — as claims in the clinic's database, made before a session opens
/// (docs/fleet.md). The supervisor sees only this protocol: the daemon's libraries never talk to
/// PostgreSQL, and a daemon without a clinic database runs exactly as before.
///
/// A claim is never on the stop path and never holds the supervisor: it is awaited before the
/// open command reaches the safety core, which still applies every rule of its own.
public protocol ClinicClaims: Sendable {
    /// Claims the client and the session's cartridge, both or neither.
    func claimSession(_ claim: SessionClaim) async -> ClaimOutcome
    /// Claims another cartridge for the open session.
    func claimCartridge(_ cartridgeID: String, sessionID: String) async -> ClaimOutcome
    /// Gives back the claims of a session this workstation did not open after all (its own rules
    /// refused it) — never one its records hold. Best effort: a claim that stays only blocks the
    /// client for longer, and the shipper gives it back later.
    func releaseSession(_ sessionID: String) async
    /// Gives back a cartridge claimed for a change the safety core then refused — never one the
    /// records show used.
    func releaseCartridge(_ cartridgeID: String, sessionID: String) async
}

/// What a session asks of the clinic.
public struct SessionClaim: Sendable, Hashable {
    public var sessionID: String
    public var clientID: String
    public var cartridgeID: String
    /// The site's gap and the longest a session can run: the claim covers start … end + gap.
    public var gapSeconds: Int64
    public var maxSessionSeconds: Int64
    public var gapOverrideReason: String?
    /// The simulator's accelerated clock only: the workstation's simulated time, sent instead of
    /// the database's own (test rigs). Nil with a real clock — the database decides the time.
    public var simulatedTime: Int64?
    /// An engineer's reason to open while the database cannot be reached (offline policy
    /// allow-with-override); ignored when the database answers.
    public var offlineReason: String?

    public init(sessionID: String, clientID: String, cartridgeID: String, gapSeconds: Int64, maxSessionSeconds: Int64,
                gapOverrideReason: String?, simulatedTime: Int64?, offlineReason: String?) {
        self.sessionID = sessionID
        self.clientID = clientID
        self.cartridgeID = cartridgeID
        self.gapSeconds = gapSeconds
        self.maxSessionSeconds = maxSessionSeconds
        self.gapOverrideReason = gapOverrideReason
        self.simulatedTime = simulatedTime
        self.offlineReason = offlineReason
    }
}

/// The clinic's answer, in words a technician can act on.
public enum ClaimOutcome: Sendable, Hashable {
    case granted
    /// The database refused: the reason names the other workstation, session and times.
    case refused(String)
    /// The database could not be reached and the site's offline policy refuses new sessions: the
    /// sentence says so, and what the policy allows.
    case unreachable(String)
    /// The database could not be reached; an engineer's reason lets the session open, and the
    /// claim is made when the link returns (a conflict then becomes a review item).
    case deferred(String)
}
