#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Logging
import StippleDaemon
import StippleRecords
import StippleSafety

/// What the daemon checks before it starts anything, and refuses to start over (exit 78,
/// EX_CONFIG, naming the file and the problem): configuration and limits that cannot be trusted
/// never start a daemon on looser terms. (Records that disagree with each other are another
/// matter: the daemon starts, serves its API and refuses to arm, so people can see why.)
enum StartupChecks {
    static func refuse(_ message: String) -> ExitCode {
        var stderr = FileHandle.standardError
        print("stippled: \(message); nothing was started", to: &stderr)
        StartupRefusal.note(message)
        return ExitCode(78)
    }

    /// The state directory holds the records: a directory that users other than its owner may
    /// write to (mode 0777, say) lets them replace stipple.db or its WAL. Refused (issue 15 item 15).
    static func stateDirectoryIsPrivate(_ directory: String) throws {
        var info = stat()
        guard stat(directory, &info) == 0 else { throw refuse("cannot read the state directory \(directory): \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw refuse("the state directory \(directory) is not a directory") }
        let mode = info.st_mode & 0o7777
        if mode & 0o022 != 0 {
            throw refuse(String(format: "the state directory %@ has mode %04o: others can write to it and replace the records (allowed: no group or other write, e.g. chmod 0750 %@)",
                                directory, mode, directory))
        }
    }

    /// stipple.db and its WAL and shared-memory files: readable by the daemon's user only.
    static func makePrivate(_ database: String) {
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: database + suffix) {
            chmod(database + suffix, 0o600)
        }
    }

    /// The limits in force: the tightest of the configuration's and the run-time tightening kept
    /// in the records; an old `limits.json` side file is migrated into the records (read once,
    /// verified, moved aside), never dropped.
    static func limitsInForce(configuration: DaemonConfiguration, records: RecordStore?, logger: Logger) throws -> SafetyLimits {
        let configured = configuration.limits
        var stored: SafetyLimits?
        if let records {
            do { stored = try records.runtimeLimits() } catch { throw refuse("\(error)") }
        }
        let sideFile = configuration.stateDirectory + "/limits.json"
        if FileManager.default.fileExists(atPath: sideFile) {
            let legacy = try legacyLimits(sideFile, over: configured)
            let merged = stored.map { $0.tightest(with: legacy) } ?? legacy
            if let records {
                do {
                    try records.saveRuntimeLimits(merged, kind: "limits_migrated", actor: "stippled",
                                                  extra: ["from": sideFile], at: Int64(Date().timeIntervalSince1970))
                    let aside = sideFile + ".migrated"
                    try? FileManager.default.removeItem(atPath: aside)
                    try FileManager.default.moveItem(atPath: sideFile, toPath: aside)
                    logger.notice("run-time limits migrated into the records", metadata: ["from": "\(sideFile)", "kept_as": "\(aside)"])
                } catch {
                    throw refuse("cannot migrate \(sideFile) into the records: \(error)")
                }
            } else {
                logger.warning("the records are unavailable: run-time limits read from the old side file", metadata: ["file": "\(sideFile)"])
            }
            stored = merged
        }
        guard let stored else { return configured }
        let inForce = configured.tightest(with: stored)
        let problems = inForce.validate()
        guard problems.isEmpty else {
            throw refuse("the configuration and the run-time limits in \(configuration.databasePath) leave no valid limit set together (\(problems.map(\.description).joined(separator: "; "))): an engineer must reconcile them")
        }
        if inForce != configured {
            logger.notice("limits tightened at run time are in force", metadata: ["records": "\(configuration.databasePath)"])
        }
        return inForce
    }

    /// The old side file: a whole, valid limit set, or the start is refused.
    static func legacyLimits(_ path: String, over base: SafetyLimits) throws -> SafetyLimits {
        guard let data = FileManager.default.contents(atPath: path) else { throw refuse("cannot read \(path)") }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw refuse("\(path) is not a JSON object (truncated?): the run-time limits it held cannot be verified")
        }
        let limits: SafetyLimits
        do { limits = try LimitsView.apply(object, over: base) } catch {
            throw refuse("\(path) holds limits that do not parse: \(error.errors.map { "\($0.field): \($0.value) (allowed \($0.allowed))" }.joined(separator: "; "))")
        }
        let problems = limits.validate()
        guard problems.isEmpty else { throw refuse("\(path) holds invalid limits: \(problems.map(\.description).joined(separator: "; "))") }
        return limits
    }
}
