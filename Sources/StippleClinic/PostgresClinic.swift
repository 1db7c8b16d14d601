import Logging
import PostgresNIO
import StippleDaemon
import Synchronization

/// The clinic's claims on PostgreSQL (docs/fleet.md). Every decision is the database's own
/// (`stipple.claim_session`, `stipple.claim_cartridge`): this type only calls them, bounded in
/// time, and applies the site's offline policy when no answer comes.
///
/// A claim is given back only for a session this workstation's own records do not hold: what
/// the records say decides, never what this side remembers of a call. A claim that timed out and
/// committed all the same is found by the shipper (`stipple.unopened_claims`) and given back the
/// same way; a restart loses nothing of that.
public final class PostgresClinic: ClinicClaims {
    let client: PostgresClient
    let policy: ClinicSettings.OfflinePolicy
    let timeout: Duration
    let logger: Logger
    /// Whether the local records hold a session with this id (it opened here).
    let sessionRecorded: @Sendable (String) -> Bool
    /// Whether the local records hold a use of this cartridge (it was armed with here).
    let cartridgeRecorded: @Sendable (String) -> Bool

    public init(client: PostgresClient, policy: ClinicSettings.OfflinePolicy, timeout: Duration, logger: Logger,
                sessionRecorded: @escaping @Sendable (String) -> Bool, cartridgeRecorded: @escaping @Sendable (String) -> Bool) {
        self.client = client
        self.policy = policy
        self.timeout = timeout
        self.logger = logger
        self.sessionRecorded = sessionRecorded
        self.cartridgeRecorded = cartridgeRecorded
    }

    /// The database's refusal, thrown inside a transaction so that nothing of it stays.
    struct Refusal: Error { var reason: String }

    public func claimSession(_ claim: SessionClaim) async -> ClaimOutcome {
        do {
            // Given back at once if it commits after the technician was told "unreachable": it
            // opened nothing here (unless the records hold the session).
            try await claiming(late: { [self] in await releaseSession(claim.sessionID) }, [
                """
                SELECT ok, reason FROM stipple.claim_session(\(claim.sessionID), \(claim.clientID), \(claim.gapSeconds), \
                \(claim.maxSessionSeconds), \(claim.gapOverrideReason), \(claim.simulatedTime))
                """,
                "SELECT ok, reason FROM stipple.claim_cartridge(\(claim.cartridgeID), \(claim.sessionID))",
            ])
            return .granted
        } catch {
            if let refusal = Self.refusal(error) {
                logger.notice("the clinic refused a session", metadata: ["session": "\(claim.sessionID)", "reason": "\(refusal)"])
                return .refused(refusal)
            }
            // No answer, or no certain one: a claim that commits all the same is given back when
            // its answer arrives (`late`), or by the shipper's sweep, unless the session opened here.
            return offline(error, reason: claim.offlineReason, what: "open a new session")
        }
    }

    public func claimCartridge(_ cartridgeID: String, sessionID: String) async -> ClaimOutcome {
        do {
            try await claiming(late: { [self] in await releaseCartridge(cartridgeID, sessionID: sessionID) }, [
                "SELECT ok, reason FROM stipple.claim_cartridge(\(cartridgeID), \(sessionID))",
            ])
            return .granted
        } catch {
            if let refusal = Self.refusal(error) { return .refused(refusal) }
            // A cartridge in a session already running: where the policy allows going on without
            // the database, the shipper claims it with the entry that records its use.
            return offline(error, reason: policy == .allowWithOverride ? "the session goes on under the offline policy" : nil,
                           what: "use a cartridge it has not claimed")
        }
    }

    /// Runs claim functions (each answering `ok, reason`) in one transaction, within the claim
    /// timeout: the first "no" rolls everything back. The server is told to give up a little
    /// before this side stops waiting, so a claim this side abandons does not commit behind its
    /// back; one that does all the same goes to `late`.
    func claiming(late: @escaping @Sendable () async -> Void, _ queries: [PostgresQuery]) async throws {
        let logger = logger
        let client = client
        let serverLimit = Self.serverLimit(timeout)
        try await withClinicTimeout(timeout, late: late) {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query(
                    "SELECT set_config('lock_timeout', \(serverLimit), true), set_config('statement_timeout', \(serverLimit), true)", logger: logger)
                for query in queries {
                    for try await (ok, reason) in try await connection.query(query, logger: logger).decode((Bool, String?).self) where !ok {
                        throw Refusal(reason: reason ?? "refused")
                    }
                }
            }
        }
    }

    public func releaseSession(_ sessionID: String) async {
        guard !sessionRecorded(sessionID) else {
            logger.notice("a session's claim is kept: the session is in this workstation's records", metadata: ["session": "\(sessionID)"])
            return
        }
        let logger = logger
        let client = client
        do {
            try await withClinicTimeout(timeout) { _ = try await client.query("SELECT stipple.release_session(\(sessionID))", logger: logger) }
        } catch {
            // The shipper's sweep gives it back later (stipple.unopened_claims).
            logger.info("a claim release waits for the database", metadata: ["session": "\(sessionID)", "error": "\(Self.describe(error))"])
        }
    }

    public func releaseCartridge(_ cartridgeID: String, sessionID: String) async {
        guard !cartridgeRecorded(cartridgeID) else { return }
        let logger = logger
        let client = client
        do {
            try await withClinicTimeout(timeout) {
                _ = try await client.query("SELECT stipple.release_cartridge(\(cartridgeID), \(sessionID))", logger: logger)
            }
        } catch {
            logger.warning("a cartridge claimed for a refused change stays claimed (the database did not answer)",
                           metadata: ["cartridge": "\(cartridgeID)", "session": "\(sessionID)", "error": "\(Self.describe(error))"])
        }
    }

    /// The server's limits for a claim's statements and lock waits: a little under this side's
    /// own timeout (in ms, as `set_config` takes it).
    static func serverLimit(_ timeout: Duration) -> String {
        let ms = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        return String(max(50, ms * 9 / 10))
    }

    /// The shipper's sweep: this workstation's claims older than a few minutes whose session never
    /// reached the chain, given back when the local records do not hold the session either.
    func releaseUnopened() async throws {
        let logger = logger
        let client = client
        let sessions: [String] = try await withClinicTimeout(.seconds(10)) {
            var found: [String] = []
            for try await session in try await client.query("SELECT session_id FROM stipple.unopened_claims()", logger: logger).decode(String.self) {
                found.append(session)
            }
            return found
        }
        // Cartridges of closed sessions the needle never ran with (a claim whose answer was lost
        // included): free again, as in the workstation's own ledger.
        try await withClinicTimeout(.seconds(10)) { _ = try await client.query("SELECT stipple.release_unused_cartridges()", logger: logger) }
        for session in sessions where !sessionRecorded(session) {
            logger.notice("giving back the claim of a session that did not open here", metadata: ["session": "\(session)"])
            // Checked again in the same statement: a claim re-granted meanwhile (its session
            // opening now) is younger than the grace and stays.
            try await withClinicTimeout(.seconds(10)) { _ = try await client.query("SELECT stipple.release_unopened(\(session))", logger: logger) }
        }
    }

    func offline(_ error: any Error, reason: String?, what: String) -> ClaimOutcome {
        let why = Self.describe(error)
        logger.warning("the clinic's database did not answer a claim", metadata: ["error": "\(why)", "policy": "\(policy.rawValue)"])
        if policy == .allowWithOverride, let reason, !reason.isEmpty { return .deferred(why) }
        let rule = policy == .allowWithOverride
            ? "this site does not \(what) without it unless an engineer gives clinic_offline_reason (recorded)"
            : "this site does not \(what) without it"
        return .unreachable("the clinic's database cannot be reached (\(why)), and \(rule)")
    }

    /// The database's own "no": a claim function's exception, a privilege it does not grant (a role
    /// that is no workstation, a simulated time from a real clock), a value or constraint it refuses.
    /// Anything else — no connection, a schema missing, the server starting or shutting down — is
    /// an absence, and the offline policy applies.
    static let refusalStates: Set<String> = ["P0001", "42501", "22023", "23P01", "23505", "23514"]

    static func refusal(_ error: any Error) -> String? {
        var error = error
        if let transaction = error as? PostgresTransactionError, let inner = transaction.closureError ?? transaction.beginError {
            error = inner
        }
        if let refusal = error as? Refusal { return refusal.reason }
        guard let psql = error as? PSQLError, let state = psql.serverInfo?[.sqlState], refusalStates.contains(state) else { return nil }
        return psql.serverInfo?[.message] ?? state
    }

    /// A sentence for the technician: the server's own message where there is one.
    static func describe(_ error: any Error) -> String {
        if let timeout = error as? ClinicTimeout { return "no answer within \(timeout.timeout)" }
        if let transaction = error as? PostgresTransactionError {
            if let inner = transaction.closureError ?? transaction.beginError ?? transaction.commitError { return describe(inner) }
        }
        if let psql = error as? PSQLError {
            if let message = psql.serverInfo?[.message] { return "the database said: \(message)" }
            return "cannot reach the database (\(psql.code)\(psql.underlying.map { ": \($0)" } ?? ""))"
        }
        return "\(error)"
    }
}

struct ClinicTimeout: Error { var timeout: Duration }

/// Runs `body`, answering after `timeout` at the latest: no call to the clinic's database ever
/// holds a technician's open, the shipper's loop or the daemon's stop longer. A query already on
/// the wire does not stop when its task is cancelled, so the answer does not wait for it: the
/// body runs on in a task of its own until the server's statement timeout, or the connection,
/// ends it (whatever it committed meanwhile is found again: see `PostgresClinic`).
///
/// `late`: called when the body succeeds after the answer was already given (a timeout): what it
/// did is then undone by the caller's own means.
func withClinicTimeout<T: Sendable>(_ timeout: Duration, late: (@Sendable () async -> Void)? = nil,
                                    _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let answer = OneAnswer<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            answer.wait(continuation)
            let work = Task {
                guard !answer.isAnswered else { return }
                do {
                    if !answer.give(.success(try await body())) { await late?() }
                } catch {
                    answer.give(.failure(error))
                }
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if answer.give(.failure(ClinicTimeout(timeout: timeout))) { work.cancel() }
            }
            answer.onAnswer { timer.cancel() }
        }
    } onCancel: {
        answer.give(.failure(CancellationError()))
    }
}

/// The first of several outcomes resumes the continuation; the rest are dropped.
final class OneAnswer<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var answered = false
        var done: (@Sendable () -> Void)?
    }
    private let state = Mutex(State())

    func wait(_ continuation: CheckedContinuation<T, any Error>) {
        let early: Result<T, any Error>? = state.withLock { state in
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func onAnswer(_ done: @escaping @Sendable () -> Void) {
        let already = state.withLock { state in
            if state.answered { return true }
            state.done = done
            return false
        }
        if already { done() }
    }

    var isAnswered: Bool { state.withLock { $0.answered } }

    /// Gives the outcome; true when it was the first.
    @discardableResult
    func give(_ result: Result<T, any Error>) -> Bool {
        let (continuation, done, first): (CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?, Bool) = state.withLock { state in
            guard !state.answered else { return (nil, nil, false) }
            state.answered = true
            if state.continuation == nil { state.early = result }
            defer { state.continuation = nil }
            return (state.continuation, state.done, true)
        }
        continuation?.resume(with: result)
        done?()
        return first
    }
}
