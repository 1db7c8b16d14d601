#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import StippleSafety
import Synchronization

/// The daemon's durable records in SQLite: WAL, `synchronous=FULL` (a commit is on disk before
/// it returns), foreign keys, versioned migrations. Every write is one transaction that also
/// appends to the hash-chained audit log, so a mutation the API acknowledged is on disk with
/// its audit entry. Nothing is ever deleted or updated in place where history matters: the
/// audit log and the cartridge ledger refuse it in the schema itself (triggers).
///
/// An existing file that fails its integrity check is never recreated or truncated: the store
/// opens and reports the problem (`health`), and the daemon refuses to arm.
public final class RecordStore: Sendable {
    let pool: DatabasePool
    public let path: String
    /// What the checks at open found: `.healthy`, or exactly what is wrong.
    public let health: Health
    /// The newest head a witness outside the database saw (`expect(_:)`): `verifyAudit` fails
    /// when the chain no longer contains it.
    let witnessed = Mutex<AuditHead?>(nil)

    /// The chain must contain this head (a witness saw it); a chain that does not is broken.
    public func expect(_ head: AuditHead) { witnessed.withLock { $0 = head } }

    public enum Health: Hashable, Sendable, CustomStringConvertible {
        case healthy
        case damaged([String])

        public var isHealthy: Bool { self == .healthy }
        public var description: String {
            switch self {
            case .healthy: "ok"
            case .damaged(let problems): problems.joined(separator: "; ")
            }
        }
    }

    /// A store that cannot be opened at all, naming the file and the reason.
    public struct OpenError: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var reason: String
        public var description: String { "cannot open the records at \(path): \(reason)" }
    }

    /// Opens the records at `path`, creating them only when no file exists there and
    /// `mayCreate` allows it (the daemon forbids it once it has created records in a state
    /// directory: a database that disappeared is an alarm, not a fresh start). An existing file
    /// that is empty or has no Stipple schema is refused: SQLite would quietly treat it as new.
    /// The page cache of each connection, in KiB.
    static let cacheKiB = 256

    public init(path: String, mayCreate: Bool = true) throws(OpenError) {
        self.path = path
        var info = stat()
        if stat(path, &info) == 0 {
            if info.st_size == 0 {
                throw OpenError(path: path, reason: "the file is empty (truncated?): refusing to start new records over it")
            }
        } else if !mayCreate {
            throw OpenError(path: path, reason: "the records are missing, though this state directory had records (deleted?): refusing to start new ones")
        }
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // SQLite's default page cache is 2 MiB per connection, and it fills as the records
            // grow: the daemon's memory would creep up over a long session. Records are
            // appended and read back in order; a small cache costs nothing measurable there.
            try db.execute(sql: "PRAGMA cache_size = -\(Self.cacheKiB)")
        }
        configuration.maximumReaderCount = 2
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            let tables = try pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
            let isNew = tables.isEmpty
            if isNew && !mayCreate {
                // The state directory had records: a file with no tables lost them (copied
                // without its -wal, or replaced). Never migrated as a fresh one.
                throw OpenError(path: path, reason: "the database has no tables, though this state directory had records (copied without its -wal? replaced?): refusing to start new records over it")
            }
            if !isNew && !tables.contains("grdb_migrations") {
                throw OpenError(path: path, reason: "the file is an SQLite database without Stipple's schema (tables: \(tables.joined(separator: ", ")))")
            }
            try Self.migrator.migrate(pool)
        } catch let error as OpenError {
            throw error
        } catch {
            throw OpenError(path: path, reason: "\(error)")
        }
        var problems: [String] = []
        do {
            try pool.read { db in
                let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                if integrity != ["ok"] { problems += integrity.map { "integrity_check: \($0)" } }
                let keys = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
                if !keys.isEmpty { problems.append("foreign_key_check: \(keys.count) row(s) refer to missing records") }
            }
            let chain = try Self.verifyAudit(pool)
            if let broken = chain.firstBroken { problems.append("audit chain: \(broken)") }
        } catch {
            problems.append("checking the records failed: \(error)")
        }
        health = problems.isEmpty ? .healthy : .damaged(problems)
    }

    // MARK: - Schema

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE clients (
                    id TEXT PRIMARY KEY NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE pens (
                    serial TEXT PRIMARY KEY NOT NULL,
                    first_seen INTEGER NOT NULL,
                    last_seen INTEGER NOT NULL,
                    firmware TEXT NOT NULL,
                    protocol TEXT NOT NULL
                );
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY NOT NULL,
                    client_id TEXT NOT NULL REFERENCES clients(id),
                    technician TEXT NOT NULL,
                    zone TEXT NOT NULL,
                    pen_serial TEXT NOT NULL,
                    cartridge_id TEXT NOT NULL,
                    pigment_lots TEXT NOT NULL,
                    gap_override_reason TEXT,
                    opened_at INTEGER NOT NULL,
                    closed_at INTEGER,
                    close_reason TEXT,
                    last_activity INTEGER NOT NULL,
                    phase TEXT NOT NULL,
                    snapshot TEXT NOT NULL
                );
                CREATE TABLE cartridge_uses (
                    cartridge_id TEXT PRIMARY KEY NOT NULL,
                    session_id TEXT NOT NULL REFERENCES sessions(id),
                    lot TEXT,
                    expiry_day INTEGER,
                    needle_count INTEGER,
                    needle_diameter_um INTEGER,
                    recorded_at INTEGER NOT NULL
                );
                CREATE TABLE setpoint_changes (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    session_id TEXT NOT NULL REFERENCES sessions(id),
                    at INTEGER NOT NULL,
                    session_time_ms INTEGER NOT NULL,
                    layer TEXT NOT NULL,
                    depth_um INTEGER NOT NULL,
                    rate_hz REAL NOT NULL
                );
                CREATE TABLE telemetry_seconds (
                    session_id TEXT NOT NULL REFERENCES sessions(id),
                    session_second INTEGER NOT NULL,
                    frames INTEGER NOT NULL,
                    depth_min_um INTEGER,
                    depth_mean_um REAL,
                    depth_max_um INTEGER,
                    rate_mean_hz REAL NOT NULL,
                    current_mean_ma REAL,
                    temperature_mean_c REAL,
                    PRIMARY KEY (session_id, session_second)
                );
                CREATE TABLE faults (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    session_id TEXT REFERENCES sessions(id),
                    at INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    detail TEXT NOT NULL
                );
                CREATE TABLE warnings (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    session_id TEXT REFERENCES sessions(id),
                    at INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    detail TEXT NOT NULL
                );
                CREATE TABLE audit (
                    seq INTEGER PRIMARY KEY NOT NULL,
                    at INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    session_id TEXT,
                    payload TEXT NOT NULL,
                    prev_hash TEXT NOT NULL,
                    hash TEXT NOT NULL
                );
                CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER cartridge_ledger_keep BEFORE DELETE ON cartridge_uses
                    BEGIN SELECT RAISE(ABORT, 'the cartridge ledger is never deleted'); END;
                CREATE TRIGGER sessions_keep BEFORE DELETE ON sessions
                    BEGIN SELECT RAISE(ABORT, 'sessions are never deleted'); END;
                CREATE INDEX sessions_by_client ON sessions(client_id, opened_at);
                """)
        }
        // Limits tightened at run time live here, not in a side file (issue 15 item 5): one row,
        // written in the same transaction as its audit entry (`RecordStore+Limits.swift`).
        migrator.registerMigration("v2-runtime-limits") { db in
            try db.execute(sql: """
                CREATE TABLE runtime_limits (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    limits TEXT NOT NULL,
                    audit_seq INTEGER NOT NULL REFERENCES audit(seq),
                    changed_at INTEGER NOT NULL
                );
                """)
        }
        // A one-row table the daemon writes to learn whether the disk takes writes (at start,
        // and while records are waiting for room): a read never fails on a full disk.
        migrator.registerMigration("v3-write-probe") { db in
            try db.execute(sql: "CREATE TABLE write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL)")
        }
        // Sessions carry their fault counts (`fault_counts`): a list of a thousand sessions
        // must not scan the faults table a thousand times.
        migrator.registerMigration("v4-faults-by-session") { db in
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS faults_by_session ON faults(session_id)")
        }
        return migrator
    }
}
