import Foundation
import GRDB
import StippleSafety
import Synchronization

/// The audit chain is the authority (issue 15 items 12–14). The tables are what the daemon reads
/// quickly; the hash-chained log is what cannot be edited without breaking a link. At start the
/// tables are checked against the chain: a session row, a cartridge-ledger row or session time
/// that the chain shows and the tables lost is an inconsistency, and the chain's history wins —
/// never a fresh start for that client or cartridge. A chain whose tail was truncated is caught
/// by a witness of its head kept outside the database (`AuditHead`).
public struct AuditHead: Hashable, Sendable, Codable, CustomStringConvertible {
    public var seq: Int64
    public var hash: String

    public init(seq: Int64, hash: String) {
        self.seq = seq
        self.hash = hash
    }

    public var description: String { "entry \(seq) (\(hash.prefix(12))…)" }
}

/// What the chain says happened, whatever the tables say now.
public struct ChainFacts: Sendable {
    public struct Session: Sendable, Equatable {
        public var client: String?
        /// The latest wall time of any of its entries.
        public var lastActivity: Int64
        /// The most session time any of its entries recorded.
        public var maxSessionTimeMs: Int64
        public var closed: Bool
    }

    public var sessions: [String: Session] = [:]
    /// Cartridge id → the session the chain bound it to.
    public var cartridges: [String: String] = [:]
    public var head: AuditHead?
}

extension RecordStore {
    /// The newest entry of the chain.
    public func auditHead() throws -> AuditHead? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").map { AuditHead(seq: $0["seq"], hash: $0["hash"]) }
        }
    }

    /// Why the chain does not contain `witnessed`, or nil when it does: a chain that ends before
    /// an entry someone saw was truncated (or is an old copy, or lost its WAL).
    public func missing(_ witnessed: AuditHead) throws -> String? {
        try pool.read { db in
            let hash = try String.fetchOne(db, sql: "SELECT hash FROM audit WHERE seq = ?", arguments: [witnessed.seq])
            let last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM audit") ?? 0
            guard let hash else {
                return "the audit log ends at entry \(last), but \(witnessed) was witnessed: its tail was truncated, or this is an older copy of the records (a lost -wal?)"
            }
            return hash == witnessed.hash ? nil : "audit entry \(witnessed.seq) differs from the one witnessed (\(witnessed)): the log was rewritten"
        }
    }

    /// Walks the chain once and gathers what it says about sessions, cartridges and session time.
    public func chainFacts() throws -> ChainFacts {
        try pool.read { db in
            var facts = ChainFacts()
            let cursor = try Row.fetchCursor(db, sql: "SELECT seq, at, kind, session_id, payload, hash FROM audit ORDER BY seq")
            while let row = try cursor.next() {
                facts.head = AuditHead(seq: row["seq"], hash: row["hash"])
                let kind: String = row["kind"]
                let at: Int64 = row["at"]
                guard let session: String = row["session_id"] else { continue }
                let text: String = row["payload"]
                let payload = ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]) ?? [:]
                var entry = facts.sessions[session] ?? ChainFacts.Session(client: nil, lastActivity: at, maxSessionTimeMs: 0, closed: false)
                entry.lastActivity = max(entry.lastActivity, at)
                if let ms = (payload["session_time_ms"] as? String).flatMap(Int64.init) { entry.maxSessionTimeMs = max(entry.maxSessionTimeMs, ms) }
                switch kind {
                case "session_opened": entry.client = payload["client_id"] as? String
                case "session_closed": entry.closed = true
                case "cartridge_used":
                    if let cartridge = payload["cartridge_id"] as? String, facts.cartridges[cartridge] == nil { facts.cartridges[cartridge] = session }
                default: break
                }
                facts.sessions[session] = entry
            }
            return facts
        }
    }

    /// What the tables lost that the chain shows, in words; empty when they agree.
    public func inconsistencies(with facts: ChainFacts) throws -> [String] {
        try pool.read { db in
            var problems: [String] = []
            for (id, session) in facts.sessions.sorted(by: { $0.key < $1.key }) {
                guard let row = try Row.fetchOne(db, sql: "SELECT snapshot, closed_at FROM sessions WHERE id = ?", arguments: [id]) else {
                    problems.append("session \(id) (client \(session.client ?? "?")) is in the audit log but its row is gone")
                    continue
                }
                // A session closed by its time limit used exactly the limit, whatever a late
                // observation (a restart after 4:00) put in the log before the close capped it.
                if let text: String = row["snapshot"],
                   let snapshot = try? JSONDecoder().decode(SessionSnapshot.self, from: Data(text.utf8)),
                   snapshot.closeReason != .timeLimit {
                    let recorded = snapshot.session.clock.elapsedAtCheckpoint.totalNanoseconds / 1_000_000
                    if Int64(clamping: recorded) < session.maxSessionTimeMs {
                        problems.append("session \(id) records \(recorded / 1000) s of session time, but the audit log shows \(session.maxSessionTimeMs / 1000) s")
                    }
                }
                if session.closed && (row["closed_at"] as Int64?) == nil {
                    problems.append("session \(id) is closed in the audit log but open in its row")
                }
            }
            for (cartridge, session) in facts.cartridges.sorted(by: { $0.key < $1.key }) {
                let bound = try String.fetchOne(db, sql: "SELECT session_id FROM cartridge_uses WHERE cartridge_id = ?", arguments: [cartridge])
                if bound == nil { problems.append("cartridge \(cartridge) was used in session \(session) by the audit log, but its ledger row is gone") }
            }
            return problems
        }
    }

    /// The history the core gets: the tables', with everything the chain shows added (the chain
    /// wins): a lost session still counts for the gap rule, a lost ledger row still makes its
    /// cartridge used.
    public func history(merging facts: ChainFacts) throws -> SafetyHistory {
        var history = try loadHistory()
        let openRows = try pool.read { db in Set(try String.fetchAll(db, sql: "SELECT id FROM sessions WHERE closed_at IS NULL")) }
        let rows = try pool.read { db in Set(try String.fetchAll(db, sql: "SELECT id FROM sessions")) }
        for (id, session) in facts.sessions {
            guard let client = session.client else { continue }
            let isOpen = rows.contains(id) ? openRows.contains(id) && !session.closed : !session.closed
            history.recordSession(id: id, client: client, lastActivity: WallTime(secondsSince1970: session.lastActivity), isOpen: isOpen)
        }
        for (cartridge, session) in facts.cartridges { history.recordCartridgeUse(cartridge, session: session) }
        return history
    }

    /// Folds the WAL into the database file (a clean shutdown): a copy of stipple.db alone is then
    /// whole, and nothing waits in a -wal that could be lost.
    public func checkpoint() throws {
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }
}

extension RecordStore {
    /// A consistent copy of the records while the daemon runs (SQLite's online backup): the copy
    /// is one database file with nothing in a WAL, and passes every check at start.
    public func backup(to path: String) throws {
        let destination = try DatabaseQueue(path: path)
        try pool.backup(to: destination)
        try destination.close()
    }
}

extension RecordStore {
    /// A real write (a WAL frame) that records nothing: whether the disk takes writes now.
    public func probeWrite(at: Int64) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO write_probe (id, at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET at = excluded.at", arguments: [at])
        }
    }
}
