import CoreMetrics
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import StippleDaemon
import StippleRecords
import StippleSafety
import Synchronization

/// Ships the workstation's audit chain to the clinic's PostgreSQL: the chain is the outbox
/// (docs/fleet.md). At least once and idempotent — the database keys entries by workstation and
/// sequence, skips one it already holds unchanged and refuses one that differs — so the cursor
/// is simply the head the database confirms (`stipple.hello`). The backlog is the local chain
/// itself: it survives restarts and SIGKILL with nothing to keep in step, and nothing local is
/// ever deleted.
///
/// Claims the workstation could not make when they were due travel with their entries: a session
/// opened offline (`clinic_offline_reason`) is claimed late, and every cartridge use is claimed
/// again (idempotent); a conflict then becomes a review item in the database, never resolved here.
public struct AuditShipper: Service {
    let client: PostgresClient
    let store: RecordStore
    let clinic: PostgresClinic
    let interval: Duration
    /// Wall time now (the simulator's accelerated clock on a test rig): the lag's "now".
    let wallNow: @Sendable () -> Int64
    let gapSeconds: @Sendable () async -> (gap: Int64, maxSession: Int64)
    let logger: Logger
    static let batch = 500

    public init(client: PostgresClient, store: RecordStore, clinic: PostgresClinic, interval: Duration,
                wallNow: @escaping @Sendable () -> Int64, gapSeconds: @escaping @Sendable () async -> (gap: Int64, maxSession: Int64),
                logger: Logger) {
        self.client = client
        self.store = store
        self.clinic = clinic
        self.interval = interval
        self.wallNow = wallNow
        self.gapSeconds = gapSeconds
        self.logger = logger
    }

    let backlogGauge = Gauge(label: "stipple_clinic_backlog_entries")
    let lagGauge = Gauge(label: "stipple_clinic_lag_seconds")
    let shippedCounter = Counter(label: "stipple_clinic_shipped_entries_total")
    let failureCounter = Counter(label: "stipple_clinic_ship_failures_total")
    let refusedGauge = Gauge(label: "stipple_clinic_chain_refused")
    let contactGauge = Gauge(label: "stipple_clinic_last_contact_seconds")

    public func run() async throws {
        // A round in flight is abandoned at shutdown (its transaction rolls back; shipping is at
        // least once), and no backoff delays the daemon's stop.
        try? await cancelWhenGracefulShutdown { try await shipLoop() }
    }

    func shipLoop() async throws {
        var delay = interval
        var lastRound = ContinuousClock.now - .seconds(3600)
        var lastFailure: String?
        while !Task.isCancelled {
            do {
                let head = try store.auditHead()?.seq ?? 0
                // Contact at least every 15 s, so the clinic sees the workstation alive.
                if head > confirmed.value || ContinuousClock.now - lastRound > .seconds(15) {
                    try await round(localHead: head)
                    lastRound = .now
                }
                if lastFailure != nil {
                    logger.notice("shipping to the clinic's database works again")
                    lastFailure = nil
                }
                refusedGauge.record(0)
                delay = interval
            } catch {
                failureCounter.increment()
                let why = PostgresClinic.describe(error)
                let refusedChain = Self.refusesChain(error)
                refusedGauge.record(refusedChain ? 1 : 0)
                if why != lastFailure {
                    // A broken chain is an alarm for a person; a database away is the normal offline case.
                    if refusedChain {
                        logger.critical("the clinic's database refuses this workstation's audit chain: shipping stops here until someone looks",
                                        metadata: ["reason": "\(why)"])
                    } else {
                        logger.warning("cannot ship the audit log to the clinic's database; retrying", metadata: ["reason": "\(why)"])
                    }
                    lastFailure = why
                }
                delay = min(delay * 2, .seconds(30))
            }
            try? await Task.sleep(for: delay)
        }
    }

    /// The head the database confirmed at the last contact.
    let confirmed = ConfirmedHead()

    /// The database's chain check said no (SQLSTATE SC001…SC004: forked, missing, broken link,
    /// altered), or it holds more of this chain than the workstation does.
    static func refusesChain(_ error: any Error) -> Bool {
        var error = error
        if let transaction = error as? PostgresTransactionError, let inner = transaction.closureError ?? transaction.commitError {
            error = inner
        }
        if let ship = error as? ShipError { return ship.chain }
        return (error as? PSQLError)?.serverInfo?[.sqlState]?.hasPrefix("SC") == true
    }

    /// One contact: say hello (the database answers what it holds), ship what it lacks in
    /// batches of one transaction each, give back claims of sessions that did not open here.
    func round(localHead: Int64) async throws {
        let logger = logger
        let oldest = try store.auditEntries(after: confirmed.value, limit: 1).first?.at
        let client = client
        let seq: Int64 = try await withClinicTimeout(.seconds(10)) {
            let rows = try await client.query("SELECT confirmed_seq FROM stipple.hello(\(localHead), \(oldest))", logger: logger)
            var seq: Int64 = -1
            for try await value in rows.decode(Int64.self) { seq = value }
            return seq
        }
        guard seq >= 0 else { throw ShipError(reason: "stipple.hello answered nothing", chain: false) }
        contactGauge.record(Double(wallNow()))
        if seq > localHead {
            throw ShipError(reason: "audit chain of this workstation: the clinic holds \(seq) entries, this workstation only \(localHead) (were the local records replaced by an older copy?)",
                            chain: true)
        }
        confirmed.value = seq
        // Claims that committed after the workstation stopped waiting for them, for sessions that
        // never opened here: given back first, whatever becomes of the shipping below (a refused
        // chain must not keep clients blocked). A failure here is no shipping failure.
        do { try await clinic.releaseUnopened() } catch {
            logger.info("the sweep of unopened claims waits for the next round", metadata: ["error": "\(PostgresClinic.describe(error))"])
        }
        while confirmed.value < localHead {
            let entries = try store.auditEntries(after: confirmed.value, limit: Self.batch)
            guard let last = entries.last else { break }
            let limits = await gapSeconds()
            try await withClinicTimeout(.seconds(30)) {
                try await client.withTransaction(logger: logger) { connection in
                    for entry in entries {
                        try await Self.claimLate(entry, limits: limits, connection, logger)
                        try await connection.query("""
                            INSERT INTO stipple.audit_entries (seq, at, actor, kind, session_id, payload, prev_hash, hash)
                            VALUES (\(entry.seq), \(entry.at), \(entry.actor), \(entry.kind), \(entry.sessionID), \(entry.payload), \
                            \(entry.prevHash), \(entry.hash))
                            """, logger: logger)
                    }
                }
            }
            confirmed.value = last.seq
            shippedCounter.increment(by: entries.count)
        }
        let backlog = localHead - confirmed.value
        backlogGauge.record(Double(max(0, backlog)))
        let next = try store.auditEntries(after: confirmed.value, limit: 1).first
        lagGauge.record(Double(next.map { max(0, wallNow() - $0.at) } ?? 0))
    }

    /// The claims an entry stands for that may not have been made when it was written.
    static func claimLate(_ entry: AuditEntry, limits: (gap: Int64, maxSession: Int64), _ connection: PostgresConnection,
                          _ logger: Logger) async throws {
        guard let session = entry.sessionID else { return }
        let payload = (try? JSONSerialization.jsonObject(with: Data(entry.payload.utf8))) as? [String: String] ?? [:]
        switch entry.kind {
        case "session_opened":
            // The ids as every claim holds them: canonical (the payload keeps what was typed).
            guard let reason = payload["clinic_offline_reason"], let typed = payload["client_id"] else { return }
            let client = Identifier.canonical(typed) ?? typed
            let cartridge = payload["cartridge_id"].map { Identifier.canonical($0) ?? $0 }
            let rows = try await connection.query("""
                SELECT ok, reason FROM stipple.claim_late(\(session), \(client), \(cartridge), \(entry.at), \(limits.gap), \
                \(limits.maxSession), \(reason))
                """, logger: logger)
            for try await (ok, why) in rows.decode((Bool, String?).self) where !ok {
                logger.error("a session opened offline conflicts with the clinic's records: flagged for review",
                             metadata: ["session": "\(session)", "conflict": "\(why ?? "")"])
            }
        case "cartridge_used":
            guard let typed = payload["cartridge_id"], !typed.isEmpty else { return }
            let cartridge = Identifier.canonical(typed) ?? typed
            let rows = try await connection.query("SELECT ok, reason FROM stipple.claim_cartridge_late(\(cartridge), \(session))", logger: logger)
            for try await (ok, why) in rows.decode((Bool, String?).self) where !ok {
                logger.error("a cartridge used here was used elsewhere in the clinic: flagged for review",
                             metadata: ["session": "\(session)", "conflict": "\(why ?? "")"])
            }
        default:
            return
        }
    }

}

struct ShipError: Error, CustomStringConvertible {
    var reason: String
    /// The chain itself is in question (a person must look), not the database's availability.
    var chain: Bool
    var description: String { reason }
}

/// The confirmed head, shared between rounds of the one shipping task.
final class ConfirmedHead: Sendable {
    private let stored = Mutex<Int64>(0)
    var value: Int64 {
        get { stored.withLock { $0 } }
        set { stored.withLock { $0 = newValue } }
    }
}
