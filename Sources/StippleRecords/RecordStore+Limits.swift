import Foundation
import GRDB
import StippleSafety

/// Limits an engineer tightened at run time, kept in the records (issue 15 items 5 and 6).
///
/// The row is written in the same transaction as its audit entry, and the audit entry carries
/// the same limits: at start the row must agree with the newest limits entry of the chain. A
/// row that cannot be decoded, fails validation, or disagrees with the chain — or a chain that
/// records a tightening whose row is gone — is an error the daemon refuses to start with: it
/// never falls back to looser limits.
extension RecordStore {
    /// What stored limits can be wrong with; the daemon exits 78 naming the file and this.
    public struct LimitsError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var problem: String
        public var description: String { "\(path): the stored run-time limits \(problem)" }
    }

    /// The audit kinds that set the run-time limits; `limits_reset` removes them.
    static let limitsKinds = ["limits_changed", "limits_migrated", "limits_reset"]

    static func encodeLimits(_ limits: SafetyLimits) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(limits), as: UTF8.self)
    }

    /// Records a tightening (`kind` limits_changed, or limits_migrated for an old side file) and
    /// its audit entry in one transaction: durable when it returns.
    public func saveRuntimeLimits(_ limits: SafetyLimits, kind: String = "limits_changed", actor: String,
                                  extra: [String: String] = [:], at: Int64) throws {
        let text = try Self.encodeLimits(limits)
        try pool.write { db in
            let entry = try Self.appendAudit(db, at: at, actor: actor, kind: kind, sessionID: nil, payload: extra.merging(["limits": text]) { a, _ in a })
            try db.execute(sql: """
                INSERT INTO runtime_limits (id, limits, audit_seq, changed_at) VALUES (1, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET limits = excluded.limits, audit_seq = excluded.audit_seq, changed_at = excluded.changed_at
                """, arguments: [text, entry.seq, at])
        }
    }

    /// An engineer's explicit reset: the run-time tightening is dropped (the configuration's limits
    /// apply again), with the reason, in one transaction.
    public func resetRuntimeLimits(actor: String, reason: String, at: Int64) throws {
        try pool.write { db in
            _ = try Self.appendAudit(db, at: at, actor: actor, kind: "limits_reset", sessionID: nil, payload: ["reason": reason])
            try db.execute(sql: "DELETE FROM runtime_limits")
        }
    }

    /// The run-time limits in force, nil when none were ever set (or after a reset), checked
    /// against the audit chain. Throws when they cannot be read or verified.
    public func runtimeLimits() throws(LimitsError) -> SafetyLimits? {
        let path = self.path
        let fail = { (problem: String) in LimitsError(path: path, problem: problem) }
        let row: Row?
        let newest: Row?
        do {
            (row, newest) = try pool.read { db in
                let marks = Self.limitsKinds.map { _ in "?" }.joined(separator: ", ")
                return (try Row.fetchOne(db, sql: "SELECT limits, audit_seq FROM runtime_limits WHERE id = 1"),
                        try Row.fetchOne(db, sql: "SELECT seq, kind, payload FROM audit WHERE kind IN (\(marks)) ORDER BY seq DESC LIMIT 1",
                                         arguments: StatementArguments(Self.limitsKinds)))
            }
        } catch {
            throw fail("cannot be read: \(error)")
        }
        let newestKind: String? = newest?["kind"]
        guard let row else {
            if let newestKind, newestKind != "limits_reset" {
                throw fail("are missing, though audit entry \(newest?["seq"] as Int64? ?? 0) (\(newestKind)) set them: refusing to fall back to looser limits")
            }
            return nil
        }
        let text: String = row["limits"]
        let seq: Int64 = row["audit_seq"]
        let limits: SafetyLimits
        do {
            limits = try JSONDecoder().decode(SafetyLimits.self, from: Data(text.utf8))
        } catch {
            throw fail("cannot be decoded: \(error)")
        }
        let problems = limits.validate()
        guard problems.isEmpty else {
            throw fail("are invalid: \(problems.map(\.description).joined(separator: "; "))")
        }
        guard let newest, newestKind != "limits_reset", (newest["seq"] as Int64) == seq else {
            throw fail("do not match the audit log (row written by entry \(seq), newest limits entry \(newest?["seq"] as Int64? ?? 0) \(newestKind ?? "none"))")
        }
        let payload: String = newest["payload"]
        let recorded = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any]
        guard let recordedText = recorded?["limits"] as? String,
              let recordedLimits = try? JSONDecoder().decode(SafetyLimits.self, from: Data(recordedText.utf8)),
              recordedLimits == limits else {
            throw fail("differ from the limits audit entry \(seq) recorded")
        }
        return limits
    }
}
