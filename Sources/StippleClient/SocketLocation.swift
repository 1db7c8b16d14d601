import Foundation

/// Where stipplectl looks for the daemon's API socket, in order: `--socket`, `$STIPPLE_SOCKET`,
/// then the socket a non-root user's own daemon (`make run`) listens on, if it exists, then the
/// system service's `/run/stipple/api.sock`. The per-user path is stippled's own default for a
/// non-root user (`DaemonConfiguration`); a test holds the two equal.
public struct SocketLocation: Sendable, Equatable {
    public var path: String
    /// Paths looked at before `path` that did not exist (named when the daemon cannot be reached).
    public var alsoLookedAt: [String]
    /// Where the path came from: "--socket", "STIPPLE_SOCKET", or "default".
    public var source: String

    public static let systemPath = "/run/stipple/api.sock"

    public init(path: String, alsoLookedAt: [String], source: String) {
        self.path = path
        self.alsoLookedAt = alsoLookedAt
        self.source = source
    }

    /// stippled's default socket for a user: as root the system path; otherwise
    /// `$XDG_RUNTIME_DIR/stipple/api.sock`, or `/tmp/stipple-UID/api.sock` without it.
    public static func daemonDefault(uid: UInt32, environment: [String: String]) -> String {
        if uid == 0 { return systemPath }
        let runtime = environment["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp/stipple-\(uid)"
        return runtime.hasPrefix("/tmp/stipple-") ? "\(runtime)/api.sock" : "\(runtime)/stipple/api.sock"
    }

    public static func resolve(flag: String?, environment: [String: String], uid: UInt32,
                               exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> SocketLocation {
        if let flag, !flag.isEmpty { return SocketLocation(path: flag, alsoLookedAt: [], source: "--socket") }
        if let variable = environment["STIPPLE_SOCKET"], !variable.isEmpty {
            return SocketLocation(path: variable, alsoLookedAt: [], source: "STIPPLE_SOCKET")
        }
        let own = daemonDefault(uid: uid, environment: environment)
        if own == systemPath || exists(own) { return SocketLocation(path: own, alsoLookedAt: [], source: "default") }
        return SocketLocation(path: systemPath, alsoLookedAt: [own], source: "default")
    }

    /// The daemon's stop socket beside the API socket (`api.sock` → `api-stop.sock`): stops go
    /// there first, where no API load can delay them.
    public var stopPath: String {
        path.hasSuffix(".sock") ? String(path.dropLast(5)) + "-stop.sock" : path + "-stop"
    }
}
