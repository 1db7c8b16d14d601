import Foundation
import Synchronization

/// Why the daemon refused to start, left beside its socket (`stippled.refused`) for the console's
/// bridge to show: a technician whose screen says only "the daemon is not running" cannot tell a
/// stopped daemon from a refused configuration. Removed as soon as a daemon is ready. The
/// system service keeps its runtime directory (`RuntimeDirectoryPreserve=yes`) so the note
/// outlives the failed unit.
enum StartupRefusal {
    static let fileName = "stippled.refused"
    private static let message = Mutex<String?>(nil)

    /// What the daemon printed when it refused (the last refusal wins).
    static func note(_ text: String) { message.withLock { $0 = text } }

    /// Writes the note beside `socketPath`, if a refusal was noted. Best effort: the refusal
    /// itself is already on standard error (the journal).
    static func record(besideSocket socketPath: String) {
        guard let text = message.withLock({ $0 }) else { return }
        let directory = (socketPath as NSString).deletingLastPathComponent
        let stamp = ISO8601DateFormatter().string(from: Date())
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = "\(directory)/\(fileName)"
        try? Data("\(stamp) \(text)\n".utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        chmod(path, 0o644)
    }

    static func clear(besideSocket socketPath: String) {
        let directory = (socketPath as NSString).deletingLastPathComponent
        try? FileManager.default.removeItem(atPath: "\(directory)/\(fileName)")
    }
}
