#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Synchronization

/// The sd_notify protocol, spoken directly (a datagram to `$NOTIFY_SOCKET`), so the daemon needs
/// no libsystemd: READY=1 once the records are open and the API socket is bound, WATCHDOG=1 from
/// the supervisor's own loop, STOPPING=1 on shutdown. Without `$NOTIFY_SOCKET` (not run by
/// systemd) every call does nothing.
public final class SystemdNotifier: Sendable {
    private let path: String?
    /// `WatchdogSec=` as systemd passes it; nil without a watchdog.
    public let watchdogInterval: Duration?
    private let lastPet = Mutex<ContinuousClock.Instant?>(nil)

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        if let usec = environment["WATCHDOG_USEC"].flatMap(Int64.init), usec > 0,
           environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == getpid() }) ?? true {
            watchdogInterval = .microseconds(usec)
        } else {
            watchdogInterval = nil
        }
    }

    public var isActive: Bool { path != nil }

    /// Sends one notification; returns whether it was delivered.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let path else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // An abstract socket is written with a leading '@'.
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                sendto(fd, message, message.count, Int32(MSG_NOSIGNAL), socketAddress, length)
            }
        }
        return sent == message.count
    }

    /// WATCHDOG=1 at most twice per watchdog interval. Called from the supervisor's loop: if the
    /// supervisor hangs, the pets stop, and systemd restarts the daemon (the pen's deadman has
    /// long stopped the needle by then).
    public func petWatchdog() {
        guard let interval = watchdogInterval else { return }
        let now = ContinuousClock.now
        let due = lastPet.withLock { last in
            if let last, now - last < interval / 2 { return false }
            last = now
            return true
        }
        if due { notify("WATCHDOG=1") }
    }
}

/// Writes log records to the systemd journal with their priority and structured fields
/// (SESSION_ID, PEN_SERIAL, FAULT_CODE, ...), so `journalctl -u stippled` reads well and can be
/// filtered (`journalctl -u stippled FAULT_CODE=over_depth`). Used when the daemon runs under
/// systemd (`$JOURNAL_STREAM` set); otherwise logs go to standard error.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    public static let socketPath = "/run/systemd/journal/socket"

    public init(label: String) { self.label = label }

    /// Whether the process runs under systemd with the journal listening.
    public static var isAvailable: Bool {
        ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil && FileManager.default.fileExists(atPath: socketPath)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("MESSAGE", "\(event.message)"), ("PRIORITY", String(Self.priority(event.level))),
            ("SYSLOG_IDENTIFIER", "stippled"), ("STIPPLE_SOURCE", event.source),
            ("CODE_FILE", event.file), ("CODE_LINE", String(event.line)), ("CODE_FUNC", event.function),
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) {
            fields.append((Self.fieldName(key), "\(value)"))
        }
        Self.send(fields)
    }

    /// syslog priorities, as the journal files them.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Journal field names are upper-case letters, digits and underscores.
    static func fieldName(_ key: String) -> String {
        let name = String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
        return name.first?.isLetter == true ? name : "F_" + name
    }

    /// The journal's native protocol: KEY=VALUE lines, or KEY\n<64-bit length><value>\n for
    /// values with newlines.
    static func send(_ fields: [(String, String)]) {
        var datagram: [UInt8] = []
        for (key, value) in fields {
            if value.contains("\n") {
                datagram += Array(key.utf8) + [0x0A]
                var length = UInt64(value.utf8.count).littleEndian
                withUnsafeBytes(of: &length) { datagram += $0 }
                datagram += Array(value.utf8) + [0x0A]
            } else {
                datagram += Array("\(key)=\(value)\n".utf8)
            }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(socketPath.utf8)) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + socketPath.utf8.count)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, datagram, datagram.count, Int32(MSG_NOSIGNAL), $0, length) }
        }
    }
}
