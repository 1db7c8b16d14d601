import Foundation
import GRDB

/// One entry of the append-only audit log. Each entry carries the SHA-256 of the entry before
/// it and of its own canonical form, so that removing, reordering or editing any entry breaks
/// the chain at that entry (`RecordStore.verifyAudit`).
public struct AuditEntry: Codable, Hashable, Sendable {
    public var seq: Int64
    /// Wall time, seconds since 1970 (UTC).
    public var at: Int64
    /// Who did it: "uid:1000(ana)", "stippled", "pen".
    public var actor: String
    public var kind: String
    public var sessionID: String?
    /// The details as canonical JSON (sorted keys).
    public var payload: String
    public var prevHash: String
    public var hash: String

    /// The hash before the first entry.
    public static let genesis = String(repeating: "0", count: 64)

    /// The text the hash covers: every field but the hash, one per line, the previous hash first.
    public var canonicalForm: String {
        [prevHash, String(seq), String(at), actor, kind, sessionID ?? "", payload].joined(separator: "\n")
    }

    public var computedHash: String { AuditDigest.hex(canonicalForm) }

    enum CodingKeys: String, CodingKey {
        case seq, at, actor, kind, sessionID = "session_id", payload, prevHash = "prev_hash", hash
    }
}

/// The result of walking the chain.
public struct AuditVerification: Hashable, Sendable, Codable {
    public var entries: Int
    /// The first entry whose link does not hold, and why; nil when the chain is whole.
    public var firstBroken: String?
    public var brokenSeq: Int64?

    public var ok: Bool { firstBroken == nil }

    enum CodingKeys: String, CodingKey { case entries, ok, firstBroken = "first_broken", brokenSeq = "broken_seq" }

    public init(entries: Int, firstBroken: String?, brokenSeq: Int64?) {
        self.entries = entries
        self.firstBroken = firstBroken
        self.brokenSeq = brokenSeq
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        entries = try container.decode(Int.self, forKey: .entries)
        firstBroken = try container.decodeIfPresent(String.self, forKey: .firstBroken)
        brokenSeq = try container.decodeIfPresent(Int64.self, forKey: .brokenSeq)
    }

    /// `first_broken` and `broken_seq` are always present (null when the chain is whole).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(entries, forKey: .entries)
        try container.encode(ok, forKey: .ok)
        try container.encode(firstBroken, forKey: .firstBroken)
        try container.encode(brokenSeq, forKey: .brokenSeq)
    }
}

extension RecordStore {
    /// Canonical JSON for a payload: sorted keys, no escaped slashes, so that anyone can
    /// recompute a hash from the stored text.
    static func canonicalJSON(_ payload: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(payload)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Appends an entry inside the caller's transaction.
    @discardableResult
    static func appendAudit(
        _ db: Database, at: Int64, actor: String, kind: String, sessionID: String?, payload: [String: String]
    ) throws -> AuditEntry {
        let last = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        let seq: Int64 = (last?["seq"] as Int64? ?? 0) + 1
        var entry = AuditEntry(
            seq: seq, at: at, actor: actor, kind: kind, sessionID: sessionID,
            payload: canonicalJSON(payload), prevHash: last?["hash"] ?? AuditEntry.genesis, hash: "")
        entry.hash = entry.computedHash
        try db.execute(
            sql: "INSERT INTO audit (seq, at, actor, kind, session_id, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            arguments: [entry.seq, entry.at, entry.actor, entry.kind, entry.sessionID, entry.payload, entry.prevHash, entry.hash])
        return entry
    }

    /// Appends one audit entry in a transaction of its own; durable when it returns.
    @discardableResult
    public func audit(kind: String, actor: String, sessionID: String? = nil, payload: [String: String] = [:], at: Int64) throws -> AuditEntry {
        try pool.write { db in try Self.appendAudit(db, at: at, actor: actor, kind: kind, sessionID: sessionID, payload: payload) }
    }

    /// Entries after `seq`, oldest first.
    public func auditEntries(after seq: Int64 = 0, limit: Int = 100) throws -> [AuditEntry] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, max(1, min(limit, 10_000))])
                .map(Self.auditEntry)
        }
    }

    static func auditEntry(_ row: Row) -> AuditEntry {
        AuditEntry(seq: row["seq"], at: row["at"], actor: row["actor"], kind: row["kind"], sessionID: row["session_id"],
                   payload: row["payload"], prevHash: row["prev_hash"], hash: row["hash"])
    }

    /// Walks the whole chain and reports the first broken link, if any.
    /// Walks the chain; also fails when it no longer contains the head a witness saw (a
    /// truncated tail leaves a chain whose every remaining link holds).
    public func verifyAudit() throws -> AuditVerification {
        var result = try Self.verifyAudit(pool)
        if result.ok, let head = witnessed.withLock({ $0 }), let problem = try missing(head) {
            result.firstBroken = problem
            result.brokenSeq = head.seq
        }
        return result
    }

    static func verifyAudit(_ pool: DatabasePool) throws -> AuditVerification {
        try pool.read { db in
            var previous = AuditEntry.genesis
            var expectedSeq: Int64 = 1
            var count = 0
            let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM audit ORDER BY seq")
            while let row = try cursor.next() {
                let entry = Self.auditEntry(row)
                count += 1
                if entry.seq != expectedSeq {
                    return AuditVerification(entries: count, firstBroken: "entry \(expectedSeq) is missing (the next entry is \(entry.seq))", brokenSeq: expectedSeq)
                }
                if entry.prevHash != previous {
                    return AuditVerification(entries: count, firstBroken: "entry \(entry.seq) does not follow entry \(entry.seq - 1) (previous hash differs)", brokenSeq: entry.seq)
                }
                if entry.computedHash != entry.hash {
                    return AuditVerification(entries: count, firstBroken: "entry \(entry.seq) was altered (its hash does not match its content)", brokenSeq: entry.seq)
                }
                previous = entry.hash
                expectedSeq += 1
            }
            return AuditVerification(entries: count, firstBroken: nil, brokenSeq: nil)
        }
    }
}
