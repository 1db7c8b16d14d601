import Logging
import PostgresNIO
import StippleDaemon
import Synchronization

/// The clinic's claims on PostgreSQL (docs/fleet.md). Every decision is the database's own
/// (`stipple.claim_session`, `stipple.claim_cartridge`): this type only calls them, bounded in
/// time, and applies the site's offline policy when no answer comes.
///
/// A claim that timed out may still have been committed: the session is then remembered for a
/// release (`pendingReleases`), which the shipper retries once the database answers. The
/// database releases only a session that never reached its audit chain, so a session that did
/// open keeps its claim whatever this side believed.
public final class PostgresClinic: ClinicClaims {
    let client: PostgresClient
    let policy: ClinicSettings.OfflinePolicy
    let timeout: Duration
    let logger: Logger
    let releases = Mutex<Set<String>>([])

    public init(client: PostgresClient, policy: ClinicSettings.OfflinePolicy, timeout: Duration, logger: Logger) {
        self.client = client
        self.policy = policy
        self.timeout = timeout
        self.logger = logger
    }

    /// The database's refusal, thrown inside a transaction so that nothing of it stays.
    struct Refusal: Error { var reason: String }

    public func claimSession(_ claim: SessionClaim) async -> ClaimOutcome {
        let logger = logger
        do {
            try await bounded {
                try await self.client.withTransaction(logger: logger) { connection in
                    let session = try await connection.query("""
                        SELECT ok, reason FROM stipple.claim_session(\(claim.sessionID), \(claim.clientID), \(claim.gapSeconds), \
                        \(claim.maxSessionSeconds), \(claim.gapOverrideReason), \(claim.simulatedTime))
                        """, logger: logger)
                    for try await (ok, reason) in session.decode((Bool, String?).self) where !ok {
                        throw Refusal(reason: reason ?? "refused")
                    }
                    let cartridge = try await connection.query(
                        "SELECT ok, reason FROM stipple.claim_cartridge(\(claim.cartridgeID), \(claim.sessionID))", logger: logger)
                    for try await (ok, reason) in cartridge.decode((Bool, String?).self) where !ok {
                        throw Refusal(reason: reason ?? "refused")
                    }
                }
            }
            return .granted
        } catch let error as PostgresTransactionError where error.closureError is Refusal {
            // The transaction rolled back: nothing of this claim stays in the database.
            let reason = (error.closureError as? Refusal)?.reason ?? "refused"
            logger.notice("the clinic refused a session", metadata: ["session": "\(claim.sessionID)", "reason": "\(reason)"])
            return .refused(reason)
        } catch {
            if let refusal = Self.refusal(error) {
                logger.warning("the clinic refused a session", metadata: ["session": "\(claim.sessionID)", "reason": "\(refusal)"])
                return .refused(refusal)
            }
            // No answer, or no certain one: whatever the database did is given back later.
            releases.withLock { _ = $0.insert(claim.sessionID) }
            return offline(error, reason: claim.offlineReason)
        }
    }

    /// The database answered with an error of its own rules (a claim function's exception, a
    /// privilege it does not grant, a value it refuses): that is its answer, not an absence.
    /// Errors of availability (too many connections, starting up, shutting down) are not.
    static func refusal(_ error: any Error) -> String? {
        var error = error
        if let transaction = error as? PostgresTransactionError, let inner = transaction.closureError ?? transaction.beginError {
            error = inner
        }
        guard let psql = error as? PSQLError, let state = psql.serverInfo?[.sqlState],
              ["22", "23", "42", "P0"].contains(String(state.prefix(2))) else { return nil }
        return psql.serverInfo?[.message] ?? state
    }

    public func claimCartridge(_ cartridgeID: String, sessionID: String) async -> ClaimOutcome {
        let logger = logger
        do {
            try await bounded {
                let rows = try await self.client.query(
                    "SELECT ok, reason FROM stipple.claim_cartridge(\(cartridgeID), \(sessionID))", logger: logger)
                for try await (ok, reason) in rows.decode((Bool, String?).self) where !ok {
                    throw Refusal(reason: reason ?? "refused")
                }
            }
            return .granted
        } catch let refusal as Refusal {
            return .refused(refusal.reason)
        } catch {
            if let refusal = Self.refusal(error) { return .refused(refusal) }
            // A cartridge in a session already running: the shipper claims it with the entry
            // that records its use, where the policy allows going on without the database.
            return offline(error, reason: policy == .allowWithOverride ? "the session was opened under the offline policy" : nil)
        }
    }

    public func releaseSession(_ sessionID: String) async {
        releases.withLock { _ = $0.insert(sessionID) }
        await releasePending()
    }

    /// Gives back the claims of sessions that did not open; what fails stays for the next try.
    func releasePending() async {
        let pending = releases.withLock { $0 }
        let logger = logger
        for session in pending {
            do {
                try await bounded { _ = try await self.client.query("SELECT stipple.release_session(\(session))", logger: logger) }
                releases.withLock { _ = $0.remove(session) }
            } catch {
                logger.debug("a claim release waits for the database", metadata: ["session": "\(session)", "error": "\(String(reflecting: error))"])
                return
            }
        }
    }

    func offline(_ error: any Error, reason: String?) -> ClaimOutcome {
        let why = Self.describe(error)
        logger.warning("the clinic's database did not answer a claim", metadata: ["error": "\(why)", "policy": "\(policy.rawValue)"])
        if policy == .allowWithOverride, let reason, !reason.isEmpty { return .deferred(why) }
        return .unreachable(why)
    }

    func bounded(_ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withClinicTimeout(timeout, body)
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

/// Runs `body`, giving up after `timeout`: no call to the clinic's database ever waits longer
/// (a database away must not hold a technician's open, nor the shipper's loop).
func withClinicTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask { try await Task.sleep(for: timeout); return nil }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw ClinicTimeout(timeout: timeout) }
        return value
    }
}
