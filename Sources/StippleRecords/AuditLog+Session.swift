import GRDB

extension RecordStore {
    /// One session's audit entries, oldest first (its report's timeline: state changes with
    /// session time, arming, stops, e-stops, faults, warnings).
    public func auditEntries(sessionID: String, limit: Int = 100_000) throws -> [AuditEntry] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE session_id = ? ORDER BY seq LIMIT ?", arguments: [sessionID, max(1, limit)])
                .map(Self.auditEntry)
        }
    }
}
