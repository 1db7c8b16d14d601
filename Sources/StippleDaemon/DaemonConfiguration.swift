import Foundation
import Logging
import StippleDiscovery
import StippleGPIO
import StippleRequests
import StippleSafety

/// Everything `stippled` runs with: one JSON file (`/etc/stipple/stippled.json` by default,
/// documented in docs/configuration.md) with flags on top. Validated whole before anything
/// starts: every problem is listed with field, value and allowed range, and the daemon exits
/// with 78 (EX_CONFIG) — it never starts half-configured.
public struct DaemonConfiguration: Sendable {
    public enum PenSpec: Sendable, Hashable, CustomStringConvertible {
        /// The in-process simulator, optionally with a scenario file (test rigs).
        case sim(scenario: String?)
        /// A serial device or pty path.
        case serial(path: String)
        /// The pen found by udev (the `discovery` section), followed through hotplug.
        case auto
        /// A GPIO pen (the `gpio` section's lines).
        case gpio

        public var description: String {
            switch self {
            case .sim(let scenario): scenario.map { "sim:\($0)" } ?? "sim"
            case .serial(let path): "serial:\(path)"
            case .auto: "auto"
            case .gpio: "gpio"
            }
        }

        public static func parse(_ text: String) -> PenSpec? {
            if text == "sim" { return .sim(scenario: nil) }
            if text.hasPrefix("sim:") { return .sim(scenario: String(text.dropFirst(4))) }
            if text == "auto" || text == "udev" || text == "serial:auto" { return .auto }
            if text == "gpio" { return .gpio }
            if text.hasPrefix("serial:"), text.count > 7 { return .serial(path: String(text.dropFirst(7))) }
            return nil
        }
    }

    public enum ClockSpec: Sendable, Hashable, CustomStringConvertible {
        case real
        case accelerated(Int)

        public var description: String {
            switch self {
            case .real: "real"
            case .accelerated(let factor): "accelerated=\(factor)"
            }
        }

        public static func parse(_ text: String) -> ClockSpec? {
            if text == "real" { return .real }
            if text.hasPrefix("accelerated="), let factor = Int(text.dropFirst("accelerated=".count)) { return .accelerated(factor) }
            return nil
        }
    }

    public var pen: PenSpec = .sim(scenario: nil)
    public var socketPath: String
    public var stateDirectory: String
    public var clock: ClockSpec = .real
    public var logLevel: Logger.Level = .info
    public var limits = SafetyLimits.defaults
    /// How `--pen auto` finds the pen (DaemonConfiguration+Pens.swift).
    public var discovery = DiscoverySettings()
    /// The GPIO pen's lines, for `--pen gpio`.
    public var gpio: GPIOPenSettings?
    /// A loopback TCP port serving only `/metrics` (off unless configured: the API itself is
    /// never on TCP).
    public var metricsPort: Int?
    /// A node_exporter textfile-collector file, rewritten every 15 s (off unless configured).
    public var metricsTextfile: String?
    /// SCHED_FIFO priority of the supervisor's thread, the stop path (0: normal scheduling).
    /// Asked for only with the real clock; refused by the system, the daemon runs on at
    /// normal priority and says so (docs/deploy.md: LimitRTPRIO=).
    public var realtimePriority = 10
    public static let realtimePriorityRange = 0...99
    public var technicianGroup = "stipple"
    public var engineerGroup = "stipple-eng"
    /// The clinic's database (docs/fleet.md): off unless configured.
    public var clinic: ClinicSettings?
    /// The console's files (`console_dir`); nil: the installed or source checkout's copy.
    public var consoleDirectory: String?
    /// Where the configuration came from (for the log).
    public var source: String?

    public static let systemConfigPath = "/etc/stipple/stippled.json"
    public static let accelerationRange = 1...1000

    static let realtimePriorityAllowed = "an integer 0...99 (SCHED_FIFO priority of the supervisor's thread; 0: normal scheduling)"

    /// The defaults: the system service's paths as root, per-user paths otherwise
    /// (`$XDG_RUNTIME_DIR/stipple/api.sock`, `$XDG_STATE_HOME/stipple/`; without those,
    /// `/tmp/stipple-<uid>/` and `~/.local/state/stipple/`).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, uid: UInt32 = getuid()) {
        if uid == 0 {
            socketPath = "/run/stipple/api.sock"
            stateDirectory = "/var/lib/stipple"
        } else {
            let runtime = environment["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp/stipple-\(uid)"
            socketPath = runtime.hasPrefix("/tmp/stipple-") ? "\(runtime)/api.sock" : "\(runtime)/stipple/api.sock"
            let home = environment["HOME"] ?? "/tmp"
            let state = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(home)/.local/state"
            stateDirectory = "\(state)/stipple"
        }
    }

    public var databasePath: String { "\(stateDirectory)/stipple.db" }

    /// A configuration problem: the field, the value, what is allowed.
    public typealias Problem = LimitViolation

    /// Applies a configuration file's JSON object; every problem is collected, none stops the
    /// reading of the rest.
    public mutating func apply(file object: [String: Any], source: String, problems: inout [Problem]) {
        self.source = source
        let known: Set<String> = ["pen", "socket", "state_dir", "clock", "log_level", "limits", "groups", "metrics_port", "metrics_textfile",
                                  "discovery", "gpio", "realtime_priority", "clinic", "console_dir"]
        var reader = FieldReader(object, known: known)
        if let value = reader.string("pen", allowed: "") { applyPen(value, problems: &problems) }
        if let value = reader.string("socket", allowed: "") { socketPath = value }
        if let value = reader.string("state_dir", allowed: "") { stateDirectory = value }
        if let value = reader.string("clock", allowed: "") { applyClock(value, problems: &problems) }
        if let value = reader.string("log_level", allowed: "") { applyLogLevel(value, problems: &problems) }
        if let value = reader.string("metrics_textfile", allowed: "") { metricsTextfile = value }
        if let value = reader.string("console_dir", allowed: "an absolute path") { consoleDirectory = value }
        problems += reader
        if let raw = object["metrics_port"] {
            if let number = raw as? NSNumber, let port = JSONBody.exactInteger(number) {
                metricsPort = port
            } else {
                problems.append(Problem(field: "metrics_port", value: "\(raw)", allowed: "an integer port 1...65535"))
            }
        }
        if let raw = object["realtime_priority"] {
            if let number = raw as? NSNumber, let priority = JSONBody.exactInteger(number) {
                realtimePriority = priority
            } else {
                problems.append(Problem(field: "realtime_priority", value: "\(raw)", allowed: Self.realtimePriorityAllowed))
            }
        }
        if let raw = object["discovery"] { applyDiscovery(raw, problems: &problems) }
        if let raw = object["gpio"] { applyGPIO(raw, problems: &problems) }
        if let raw = object["clinic"] { clinic = ClinicSettings.parse(raw, problems: &problems) }
        if let raw = object["groups"] {
            if let groups = raw as? [String: Any] {
                for (key, value) in groups {
                    switch (key, value) {
                    case ("technician", let name as String): technicianGroup = name
                    case ("engineer", let name as String): engineerGroup = name
                    default: problems.append(Problem(field: "groups.\(key)", value: "\(value)", allowed: "technician or engineer: a group name"))
                    }
                }
            } else {
                problems.append(Problem(field: "groups", value: "\(raw)", allowed: "an object {technician, engineer}"))
            }
        }
        if let raw = object["limits"] {
            if let fields = raw as? [String: Any] {
                if fields["effective_warnings_s"] != nil {
                    problems.append(Problem(field: "limits.effective_warnings_s", value: "present", allowed: "nothing: it is read-only (the warnings in force); set limits.session_warnings_s"))
                }
                var found: [StippleRequests.Problem] = []
                limits = LimitsView.apply(fields, over: limits, prefix: "limits.", problems: &found)
                problems += found.flatMap(\.errors).map { Problem(field: $0.field, value: $0.value, allowed: $0.allowed) }
            } else {
                problems.append(Problem(field: "limits", value: "\(raw)", allowed: "an object of limit fields"))
            }
        }
    }

    public mutating func applyPen(_ value: String, problems: inout [Problem]) {
        if let spec = PenSpec.parse(value) { pen = spec } else {
            problems.append(Problem(field: "pen", value: value, allowed: "sim, sim:SCENARIO.json, serial:/dev/..., auto (udev discovery) or gpio"))
        }
    }

    public mutating func applyClock(_ value: String, problems: inout [Problem]) {
        if let spec = ClockSpec.parse(value) { clock = spec } else {
            problems.append(Problem(field: "clock", value: value, allowed: "real or accelerated=N (N in \(Self.accelerationRange.lowerBound)...\(Self.accelerationRange.upperBound))"))
        }
    }

    public mutating func applyLogLevel(_ value: String, problems: inout [Problem]) {
        if let level = Logger.Level(rawValue: value) { logLevel = level } else {
            problems.append(Problem(field: "log_level", value: value, allowed: Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")))
        }
    }

    /// Why a state directory cannot be used, or nil: it exists as a writable directory, or its
    /// nearest existing parent is one (so it can be created).
    static func unusableDirectory(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if !isDirectory.boolValue { return "it exists and is not a directory" }
            return FileManager.default.isWritableFile(atPath: path) ? nil : "it is not writable"
        }
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty, parent != path else { return "no parent directory" }
        return unusableDirectory(parent).map { "its parent \(parent): \($0)" }
    }

    /// The whole configuration's problems (empty when it may start).
    public func validate() -> [Problem] {
        var problems = limits.validate().map { Problem(field: "limits.\($0.field)", value: $0.value, allowed: $0.allowed) }
        if let problem = Self.unusableDirectory(stateDirectory) {
            problems.append(Problem(field: "state_dir", value: stateDirectory, allowed: "a directory the daemon can create or write (\(problem))"))
        }
        for (field, name) in [("groups.technician", technicianGroup), ("groups.engineer", engineerGroup)] where name.isEmpty || name.contains(where: { $0.isWhitespace || $0 == ":" }) {
            problems.append(Problem(field: field, value: "\"\(name)\"", allowed: "a group name"))
        }
        if technicianGroup == engineerGroup {
            problems.append(Problem(field: "groups.engineer", value: engineerGroup, allowed: "a group other than groups.technician (\(technicianGroup)): roles must differ"))
        }
        if case .accelerated(let factor) = clock {
            if !Self.accelerationRange.contains(factor) {
                problems.append(Problem(field: "clock", value: "accelerated=\(factor)", allowed: "accelerated=N with N in \(Self.accelerationRange.lowerBound)...\(Self.accelerationRange.upperBound)"))
            }
            if !pen.isSimulated {
                problems.append(Problem(field: "clock", value: "accelerated=\(factor) with pen \(pen)",
                                        allowed: "real: a real pen never runs on simulated time (accelerated only with --pen sim)"))
            }
        }
        if let consoleDirectory, !consoleDirectory.hasPrefix("/") {
            problems.append(Problem(field: "console_dir", value: consoleDirectory, allowed: "an absolute path"))
        }
        if !socketPath.hasPrefix("/") { problems.append(Problem(field: "socket", value: socketPath, allowed: "an absolute path")) }
        if socketPath.utf8.count > 107 { problems.append(Problem(field: "socket", value: socketPath, allowed: "at most 107 bytes (a Unix socket path)")) }
        if !stateDirectory.hasPrefix("/") { problems.append(Problem(field: "state_dir", value: stateDirectory, allowed: "an absolute path")) }
        if let port = metricsPort, !(1...65535).contains(port) {
            problems.append(Problem(field: "metrics_port", value: "\(port)", allowed: "1...65535 (served on 127.0.0.1 only)"))
        }
        if !Self.realtimePriorityRange.contains(realtimePriority) {
            problems.append(Problem(field: "realtime_priority", value: "\(realtimePriority)", allowed: Self.realtimePriorityAllowed))
        }
        if let path = metricsTextfile, !path.hasPrefix("/") || !path.hasSuffix(".prom") {
            problems.append(Problem(field: "metrics_textfile", value: path, allowed: "an absolute path ending in .prom"))
        }
        problems += validatePens()
        if let clinic { problems += clinic.validate() }
        if case .sim(let scenario?) = pen, !FileManager.default.fileExists(atPath: scenario) {
            problems.append(Problem(field: "pen", value: "sim:\(scenario)", allowed: "sim:FILE where FILE exists"))
        }
        return problems
    }
}
