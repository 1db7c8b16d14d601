#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Logging
import StippleDaemon
import StippleRecords

/// `stippled verify-audit`: the chain, and the head its witnesses saw.
struct VerifyAudit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-audit",
        abstract: "Walk the audit log's hash chain and report the first broken link, or a truncated tail (exit 1 if any).")

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let configuration = try common.load()
        let store: RecordStore
        do { store = try RecordStore(path: configuration.databasePath, mayCreate: false) } catch {
            print("stippled verify-audit: \(error)")
            throw ExitCode(2)
        }
        if let head = AuditWitness.witnessed(stateDirectory: configuration.stateDirectory) { store.expect(head) }
        let result = try store.verifyAudit()
        if let broken = result.firstBroken {
            print("audit chain BROKEN after \(result.entries) entries: \(broken)")
            throw ExitCode(1)
        }
        print("audit chain verified: \(result.entries) entries, every link holds")
    }
}

/// `stippled backup --to FILE`: SQLite's online backup, safe while the daemon runs.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the records consistently (SQLite's online backup; the daemon may keep running).",
        discussion: "The copy is one file (mode 0600) that `stippled restore` accepts. Keep it where the clinic keeps records (2–5 years).")

    @OptionGroup var common: CommonOptions
    @Option(help: "Where to write the copy (must not exist).") var to: String

    func run() async throws {
        let configuration = try common.load()
        guard !FileManager.default.fileExists(atPath: to) else {
            print("stippled backup: \(to) exists; refusing to overwrite it")
            throw ExitCode(2)
        }
        let store: RecordStore
        do { store = try RecordStore(path: configuration.databasePath, mayCreate: false) } catch {
            print("stippled backup: \(error)")
            throw ExitCode(2)
        }
        _ = FileManager.default.createFile(atPath: to, contents: nil, attributes: [.posixPermissions: 0o600])
        try store.backup(to: to)
        let copy = try RecordStore(path: to, mayCreate: false)
        let head = try copy.auditHead()
        print("backed up the records to \(to): audit head \(head.map(\.description) ?? "empty")")
    }
}

/// `stippled restore --from FILE`: the daemon stopped, a verified backup becomes the records.
/// The records it replaces are kept beside it, never deleted; the restore is recorded in the
/// chain, and the witnesses learn the restored head (going back in time is then deliberate).
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replace the records with a backup (stop the daemon first; the old records are kept aside).")

    @OptionGroup var common: CommonOptions
    @Option(help: "The backup made by `stippled backup`.") var from: String

    func run() async throws {
        let configuration = try common.load()
        let directory = configuration.stateDirectory
        let lock: StateDirectoryLock
        do { lock = try StateDirectoryLock(directory: directory) } catch {
            print("stippled restore: \(error) (stop the daemon first)")
            throw ExitCode(2)
        }
        defer { withExtendedLifetime(lock) {} }
        let backup = try RecordStore(path: from, mayCreate: false)
        guard backup.health.isHealthy, try backup.verifyAudit().ok else {
            print("stippled restore: \(from) fails its checks (\(backup.health)); nothing was changed")
            throw ExitCode(1)
        }
        let database = configuration.databasePath
        let stamp = Int(Date().timeIntervalSince1970)
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: database + suffix) {
            try FileManager.default.moveItem(atPath: database + suffix, toPath: "\(database).before-restore-\(stamp)\(suffix)")
        }
        _ = FileManager.default.createFile(atPath: database, contents: nil, attributes: [.posixPermissions: 0o600])
        try backup.backup(to: database)
        let restored = try RecordStore(path: database, mayCreate: false)
        let previous = AuditWitness.witnessed(stateDirectory: directory)
        try restored.audit(kind: "records_restored", actor: "uid:\(getuid())", payload: [
            "from": from, "replaced_head": previous.map(\.description) ?? "none",
        ], at: Int64(stamp))
        try restored.checkpoint()
        // The restored head goes to the journal as well (a marker the daemon honours only from
        // root: run the restore as root) and to the state directory's witness file.
        var logger = Logger(label: "stippled") { label in
            FileManager.default.fileExists(atPath: JournalLogHandler.socketPath)
                ? JournalLogHandler(label: label) as any LogHandler : StreamLogHandler.standardError(label: label)
        }
        logger.logLevel = .info
        if let head = try restored.auditHead() {
            AuditWitness(stateDirectory: directory, logger: logger).reset(to: head)
            print("restored the records from \(from): audit head \(head); the replaced records are kept as \(database).before-restore-\(stamp)")
        }
        _ = FileManager.default.createFile(atPath: directory + "/.records-created", contents: Data("records created here; if stipple.db is missing, restore it\n".utf8))
        // Run as root (as it must be for the journal to honour the restore): the files go to the
        // state directory's owner, the daemon's user, mode 0600.
        var owner = stat()
        if stat(directory, &owner) == 0 {
            for name in ["stipple.db", "stipple.db-wal", "stipple.db-shm", AuditWitness.fileName, ".records-created", "lock"] {
                let file = directory + "/" + name
                guard FileManager.default.fileExists(atPath: file) else { continue }
                _ = chown(file, owner.st_uid, owner.st_gid)
                _ = chmod(file, 0o600)
            }
        }
        if getuid() != 0 {
            print("note: not run as root — a journal witness keeps its newer heads and the daemon will refuse to arm; run `sudo stippled restore` where the journal is in use")
        }
    }
}
