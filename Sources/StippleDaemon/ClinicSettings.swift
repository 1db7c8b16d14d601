import Foundation
import StippleRequests
import StippleSafety

/// The `clinic` section of stippled.json (docs/fleet.md): where the connection to the clinic's
/// PostgreSQL is described, and what the site does while it cannot be reached. The connection
/// file itself (host, user, password, TLS) is read and checked by `StippleClinic` at start.
public struct ClinicSettings: Sendable, Hashable {
    /// While the database cannot be reached: `refuse` opens no new session (one already running
    /// goes on); `allowWithOverride` opens one when an engineer gives a recorded reason, and the
    /// claim is made when the link returns (a conflict becomes a review item).
    public enum OfflinePolicy: String, Sendable, Hashable, CaseIterable {
        case refuse
        case allowWithOverride = "allow-with-override"
    }

    public var connectionFile: String
    public var offline: OfflinePolicy = .refuse
    /// How long a claim may wait for the database before the offline policy applies.
    public var claimTimeoutMs = 2000
    public static let claimTimeoutRange = 100...30_000
    /// How often the shipper looks for new audit entries.
    public var shipIntervalMs = 500
    public static let shipIntervalRange = 50...60_000

    public init(connectionFile: String) { self.connectionFile = connectionFile }

    static func parse(_ raw: Any, problems: inout [LimitViolation]) -> ClinicSettings? {
        guard let fields = raw as? [String: Any] else {
            problems.append(LimitViolation(field: "clinic", value: "\(raw)", allowed: "an object {connection_file, offline, claim_timeout_ms, ship_interval_ms}"))
            return nil
        }
        var settings = ClinicSettings(connectionFile: "")
        for (key, value) in fields {
            switch key {
            case "connection_file":
                if let path = value as? String { settings.connectionFile = path } else {
                    problems.append(LimitViolation(field: "clinic.connection_file", value: "\(value)", allowed: "an absolute path to the connection file"))
                }
            case "offline":
                if let text = value as? String, let policy = OfflinePolicy(rawValue: text) { settings.offline = policy } else {
                    problems.append(LimitViolation(field: "clinic.offline", value: "\(value)", allowed: "refuse or allow-with-override"))
                }
            case "claim_timeout_ms", "ship_interval_ms":
                let range = key == "claim_timeout_ms" ? claimTimeoutRange : shipIntervalRange
                if let number = value as? NSNumber, let ms = JSONBody.exactInteger(number) {
                    if key == "claim_timeout_ms" { settings.claimTimeoutMs = ms } else { settings.shipIntervalMs = ms }
                } else {
                    problems.append(LimitViolation(field: "clinic.\(key)", value: "\(value)", allowed: "an integer \(range.lowerBound)...\(range.upperBound) (ms)"))
                }
            default:
                problems.append(LimitViolation(field: "clinic.\(key)", value: "\(value)", allowed: "connection_file, offline, claim_timeout_ms or ship_interval_ms"))
            }
        }
        return settings
    }

    func validate() -> [LimitViolation] {
        var problems: [LimitViolation] = []
        if !connectionFile.hasPrefix("/") {
            problems.append(LimitViolation(field: "clinic.connection_file", value: "\"\(connectionFile)\"", allowed: "an absolute path to the connection file"))
        }
        if !Self.claimTimeoutRange.contains(claimTimeoutMs) {
            problems.append(LimitViolation(field: "clinic.claim_timeout_ms", value: "\(claimTimeoutMs)", allowed: "\(Self.claimTimeoutRange.lowerBound)...\(Self.claimTimeoutRange.upperBound) (ms)"))
        }
        if !Self.shipIntervalRange.contains(shipIntervalMs) {
            problems.append(LimitViolation(field: "clinic.ship_interval_ms", value: "\(shipIntervalMs)", allowed: "\(Self.shipIntervalRange.lowerBound)...\(Self.shipIntervalRange.upperBound) (ms)"))
        }
        return problems
    }
}
