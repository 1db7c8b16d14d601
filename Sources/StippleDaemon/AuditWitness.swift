#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import StippleRecords
import Synchronization

/// Keeps the audit chain's head — its newest sequence number and hash — outside the database,
/// so that a truncated tail, an older copy of stipple.db or a lost -wal is caught at start
/// (issue 15 item 14): the chain must still contain every head a witness saw.
///
/// Two witnesses, and the newest head either saw counts:
/// - the **system journal**: each head is logged with `MESSAGE_ID` `auditHeadMessageID` and the
///   fields `AUDIT_SEQ` and `AUDIT_HASH`. journald belongs to root: the daemon's own user can add
///   entries but cannot remove the ones it wrote, so it cannot hide a truncation it made itself;
/// - a small file in the state directory (`audit-head`), for hosts without a journal (a
///   container, a developer's `make run`): it catches accidents — a restored old copy, a lost
///   WAL — not a deliberate rewrite by the daemon's user.
///
/// A head is recorded only after the write that made it is committed, so a witness is never
/// ahead of a database that was intact.
public final class AuditWitness: Sendable {
    public static let auditHeadMessageID = "8e1c2a4f6b3d4f0e9a7c5b1d2e3f4a6b"
    public static let fileName = "audit-head"

    let path: String
    let logger: Logger
    private let last = Mutex<Int64>(0)

    public init(stateDirectory: String, logger: Logger) {
        path = stateDirectory + "/" + Self.fileName
        // Every head reaches the journal whatever the daemon's log level.
        var logger = logger
        logger.logLevel = .info
        self.logger = logger
        last.withLock { $0 = Self.readFile(path)?.seq ?? 0 }
    }

    /// Records `head` if it is newer than the last one recorded.
    public func record(_ head: AuditHead) {
        let newer = last.withLock { seq -> Bool in
            guard head.seq > seq else { return false }
            seq = head.seq
            return true
        }
        guard newer else { return }
        let temporary = path + ".tmp"
        if FileManager.default.createFile(atPath: temporary, contents: Data("\(head.seq) \(head.hash)\n".utf8), attributes: [.posixPermissions: 0o600]) {
            if rename(temporary, path) != 0 { logger.warning("cannot keep the audit head", metadata: ["file": "\(path)", "errno": "\(errno)"]) }
        }
        logger.info("audit head", metadata: ["message_id": "\(Self.auditHeadMessageID)", "audit_seq": "\(head.seq)", "audit_hash": "\(head.hash)"])
    }

    /// After `stippled restore`: the restored chain's head replaces whatever was witnessed (the
    /// journal keeps the older heads, and this entry, marked `AUDIT_RESTORE`, supersedes them).
    public func reset(to head: AuditHead) {
        last.withLock { $0 = head.seq }
        let temporary = path + ".tmp"
        if FileManager.default.createFile(atPath: temporary, contents: Data("\(head.seq) \(head.hash)\n".utf8), attributes: [.posixPermissions: 0o600]) {
            _ = rename(temporary, path)
        }
        logger.notice("audit head after a restore", metadata: [
            "message_id": "\(Self.auditHeadMessageID)", "audit_seq": "\(head.seq)", "audit_hash": "\(head.hash)", "audit_restore": "1",
        ])
    }

    /// The newest head any witness saw, or nil when none did.
    public static func witnessed(stateDirectory: String) -> AuditHead? {
        // The daemon's user owns its state directory: its heads are the ones to read, whoever
        // asks (the daemon, or root running `stippled verify-audit`).
        var info = stat()
        let owner = stat(stateDirectory, &info) == 0 ? info.st_uid : getuid()
        let candidates = [readFile(stateDirectory + "/" + fileName), readJournal(daemonUID: owner)].compactMap { $0 }
        return candidates.max { $0.seq < $1.seq }
    }

    static func readFile(_ path: String) -> AuditHead? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let parts = text.split(whereSeparator: \.isWhitespace)
        guard parts.count == 2, let seq = Int64(parts[0]), seq > 0, parts[1].count == 64 else { return nil }
        return AuditHead(seq: seq, hash: String(parts[1]))
    }

    /// The newest head this user logged to the journal; nil without journalctl or a journal.
    static func readJournal(daemonUID: UInt32) -> AuditHead? {
        let candidates = ["/usr/bin/journalctl", "/bin/journalctl"]
        guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        // The daemon's own heads, and restore markers that root wrote (`sudo stippled restore`):
        // the daemon's user cannot forge a restore to hide a truncation it made.
        process.arguments = ["--no-pager", "-q", "-o", "json", "--output-fields=AUDIT_SEQ,AUDIT_HASH,AUDIT_RESTORE,_UID",
                             "MESSAGE_ID=\(auditHeadMessageID)", "_UID=\(daemonUID)", "+", "MESSAGE_ID=\(auditHeadMessageID)", "_UID=0"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var best: AuditHead?
        for line in data.split(separator: UInt8(ascii: "\n")) {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any],
                  let seq = (object["AUDIT_SEQ"] as? String).flatMap(Int64.init),
                  let hash = object["AUDIT_HASH"] as? String, hash.count == 64 else { continue }
            // Oldest first: a restore (by root) supersedes every head before it.
            let restore = object["AUDIT_RESTORE"] != nil
            if restore && object["_UID"] as? String != "0" { continue }
            if restore || seq > (best?.seq ?? 0) { best = AuditHead(seq: seq, hash: hash) }
        }
        return best
    }
}
