import Foundation
import StippleAPI
import StippleRecords
import StippleRequests
import StippleSafety

/// The limits as the API and the configuration file write them: units in the names.
public struct LimitsView: Codable, Sendable {
    public struct Band: Codable, Sendable {
        public var minUm: Int
        public var maxUm: Int
        enum CodingKeys: String, CodingKey { case minUm = "min_um", maxUm = "max_um" }
    }
    public var epidermis: Band
    public var upperDermis: Band
    public var zoneMaxUm: [String: Int]
    public var siteCeilingUm: Int
    public var depthToleranceUm: Int
    public var rateMinHz: Double
    public var rateMaxHz: Double
    public var rateTolerance: Double
    public var rateViolationStrokes: Int
    public var spinUpGraceMs: Int64
    public var telemetrySilenceMs: Int64
    public var sessionLengthS: Int64
    public var sessionWarningsS: [Int64]
    /// Every warning time, the mandatory ones included (read-only).
    public var effectiveWarningsS: [Int64]?
    public var minimumSessionGapDays: Int64
    public var penTripMarginUm: Int
    public var penDeadmanMs: Int

    enum CodingKeys: String, CodingKey {
        case epidermis, upperDermis = "upper_dermis", zoneMaxUm = "zone_max_um", siteCeilingUm = "site_ceiling_um"
        case depthToleranceUm = "depth_tolerance_um", rateMinHz = "rate_min_hz", rateMaxHz = "rate_max_hz"
        case rateTolerance = "rate_tolerance", rateViolationStrokes = "rate_violation_strokes", spinUpGraceMs = "spin_up_grace_ms"
        case telemetrySilenceMs = "telemetry_silence_ms", sessionLengthS = "session_length_s", sessionWarningsS = "session_warnings_s"
        case effectiveWarningsS = "effective_warnings_s", minimumSessionGapDays = "minimum_session_gap_days"
        case penTripMarginUm = "pen_trip_margin_um", penDeadmanMs = "pen_deadman_ms"
    }

    public init(_ limits: SafetyLimits) {
        epidermis = Band(minUm: limits.epidermis.minUm, maxUm: limits.epidermis.maxUm)
        upperDermis = Band(minUm: limits.upperDermis.minUm, maxUm: limits.upperDermis.maxUm)
        zoneMaxUm = Dictionary(uniqueKeysWithValues: Zone.allCases.map { ($0.rawValue, limits.zoneMaxUm($0)) })
        siteCeilingUm = limits.siteCeilingUm
        depthToleranceUm = limits.depthToleranceUm
        rateMinHz = limits.rateMinHz
        rateMaxHz = limits.rateMaxHz
        rateTolerance = limits.rateTolerance
        rateViolationStrokes = limits.rateViolationStrokes
        spinUpGraceMs = limits.spinUpGrace.milliseconds
        telemetrySilenceMs = limits.telemetrySilence.milliseconds
        sessionLengthS = Int64(limits.sessionLength.wholeSeconds)
        sessionWarningsS = limits.sessionWarnings.map { Int64($0.wholeSeconds) }
        effectiveWarningsS = limits.warningTimes.map { Int64($0.wholeSeconds) }
        minimumSessionGapDays = Int64(limits.minimumSessionGap.wholeSeconds / 86_400)
        penTripMarginUm = limits.penTripMarginUm
        penDeadmanMs = limits.penDeadmanMs
    }

    /// Applies the fields present in `object` over `base`, strictly: an unknown field or a
    /// value of the wrong type is named. Ranges are then `SafetyLimits.validate()`'s job.
    public static func apply(_ object: [String: Any], over base: SafetyLimits, prefix: String = "") throws(Problem) -> SafetyLimits {
        var problems: [Problem] = []
        let limits = apply(object, over: base, prefix: prefix, problems: &problems)
        guard problems.isEmpty else {
            var all = problems[0]
            all.errors = problems.flatMap(\.errors)
            throw all
        }
        return limits
    }

    /// As above, collecting every problem instead of stopping at the first (configuration files).
    public static func apply(_ object: [String: Any], over base: SafetyLimits, prefix: String, problems: inout [Problem]) -> SafetyLimits {
        var limits = base
        let body = JSONBody(object: object)
        let known: Set<String> = ["epidermis", "upper_dermis", "zone_max_um", "site_ceiling_um", "depth_tolerance_um", "rate_min_hz",
                                  "rate_max_hz", "rate_tolerance", "rate_violation_strokes", "spin_up_grace_ms", "telemetry_silence_ms",
                                  "session_length_s", "session_warnings_s", "effective_warnings_s", "minimum_session_gap_days",
                                  "pen_trip_margin_um", "pen_deadman_ms"]
        func attempt<T>(_ path: String, _ body: () throws(Problem) -> T?) -> T? {
            do { return try body() } catch {
                problems.append(error.prefixed(path))
                return nil
            }
        }
        _ = attempt(prefix) { () throws(Problem) -> Bool? in try body.refuseUnknown(known); return true }
        let any = Int.min...Int.max
        func int(_ name: String) -> Int? { attempt(prefix) { () throws(Problem) -> Int? in try body.integer(name, required: false, range: any) } }
        func number(_ name: String) -> Double? {
            attempt(prefix) { () throws(Problem) -> Double? in
                try body.number(name, required: false, range: -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude)
            }
        }
        func band(_ name: String, _ current: DepthBand) -> DepthBand {
            guard let raw = object[name] else { return current }
            guard let inner = raw as? [String: Any] else {
                problems.append(Problem.field(prefix + name, "\(raw)", "an object with min_um and max_um", status: 400))
                return current
            }
            let nested = JSONBody(object: inner)
            let path = prefix + name + "."
            _ = attempt(path) { () throws(Problem) -> Bool? in try nested.refuseUnknown(["min_um", "max_um"]); return true }
            return DepthBand(
                minUm: attempt(path) { () throws(Problem) -> Int? in try nested.integer("min_um", required: false, range: any) } ?? current.minUm,
                maxUm: attempt(path) { () throws(Problem) -> Int? in try nested.integer("max_um", required: false, range: any) } ?? current.maxUm)
        }
        limits.epidermis = band("epidermis", limits.epidermis)
        limits.upperDermis = band("upper_dermis", limits.upperDermis)
        if let raw = object["zone_max_um"] {
            if let zones = raw as? [String: Any] {
                let nested = JSONBody(object: zones)
                let path = prefix + "zone_max_um."
                _ = attempt(path) { () throws(Problem) -> Bool? in try nested.refuseUnknown(Set(Zone.allCases.map(\.rawValue))); return true }
                for zone in Zone.allCases {
                    guard let value = attempt(path, { () throws(Problem) -> Int? in try nested.integer(zone.rawValue, required: false, range: any) }) else { continue }
                    switch zone {
                    case .frontTemples: limits.frontTemplesMaxUm = value
                    case .crown: limits.crownMaxUm = value
                    case .backSides: limits.backSidesMaxUm = value
                    case .scar: limits.scarMaxUm = value
                    }
                }
            } else {
                problems.append(Problem.field(prefix + "zone_max_um", "\(raw)", "an object of zone: µm", status: 400))
            }
        }
        if let value = int("site_ceiling_um") { limits.siteCeilingUm = value }
        if let value = int("depth_tolerance_um") { limits.depthToleranceUm = value }
        if let value = number("rate_min_hz") { limits.rateMinHz = value }
        if let value = number("rate_max_hz") { limits.rateMaxHz = value }
        if let value = number("rate_tolerance") { limits.rateTolerance = value }
        if let value = int("rate_violation_strokes") { limits.rateViolationStrokes = value }
        if let value = int("spin_up_grace_ms") { limits.spinUpGrace = .milliseconds(value) }
        if let value = int("telemetry_silence_ms") { limits.telemetrySilence = .milliseconds(value) }
        if let value = int("session_length_s") { limits.sessionLength = .seconds(value) }
        if let value = int("minimum_session_gap_days") {
            limits.minimumSessionGap = .seconds(Int64(min(max(value, -1_000_000_000), 1_000_000_000)) * 86_400)
        }
        if let value = int("pen_trip_margin_um") { limits.penTripMarginUm = value }
        if let value = int("pen_deadman_ms") { limits.penDeadmanMs = value }
        if let raw = object["session_warnings_s"] {
            if let values = raw as? [NSNumber], values.count > 16 {
                problems.append(Problem.field(prefix + "session_warnings_s", "\(values.count) items", "at most 16 items"))
            } else if let values = raw as? [NSNumber], case let seconds = values.compactMap(JSONBody.exactInteger), seconds.count == values.count {
                limits.sessionWarnings = seconds.map { .seconds($0) }
            } else {
                problems.append(Problem.field(prefix + "session_warnings_s", "\(raw)", "an array of whole seconds", status: 400))
            }
        }
        return limits
    }
}

extension Problem {
    func prefixed(_ prefix: String) -> Problem {
        guard !prefix.isEmpty else { return self }
        var copy = self
        copy.errors = errors.map { FieldError(field: prefix + $0.field, value: $0.value, allowed: $0.allowed) }
        copy.detail = prefix + detail
        return copy
    }
}

/// A session in a list or on its own.
struct SessionSummary: Codable, Sendable {
    var id: String
    var clientID: String
    var technician: String
    var zone: String
    var penSerial: String
    var cartridgeID: String
    var pigmentLots: [String]
    var gapOverrideReason: String?
    var openedAt: Int64
    var closedAt: Int64?
    var closeReason: String?
    var phase: String
    var faults: [String]
    /// Every fault recorded in the session by code, and how often (`faults`: latched now).
    var faultCounts: [String: Int]
    var sessionTimeMs: Int64
    var setpoint: StatusView.SetpointView?

    enum CodingKeys: String, CodingKey {
        case id, clientID = "client_id", technician, zone, penSerial = "pen_serial", cartridgeID = "cartridge_id"
        case pigmentLots = "pigment_lots", gapOverrideReason = "gap_override_reason", openedAt = "opened_at", closedAt = "closed_at"
        case closeReason = "close_reason", phase, faults, faultCounts = "fault_counts", sessionTimeMs = "session_time_ms", setpoint
    }

    init(_ record: SessionRecord) {
        id = record.id
        clientID = record.clientID
        technician = record.technician
        zone = record.zone
        penSerial = record.penSerial
        cartridgeID = record.cartridgeID
        pigmentLots = record.pigmentLots
        gapOverrideReason = record.gapOverrideReason
        openedAt = record.openedAt
        closedAt = record.closedAt
        closeReason = record.closeReason
        phase = record.phase
        faults = record.snapshot.faults.map(\.rawValue)
        faultCounts = record.faultCounts
        sessionTimeMs = record.snapshot.session.clock.elapsedAtCheckpoint.milliseconds
        setpoint = record.snapshot.session.setpoint.map { StatusView.SetpointView(layer: $0.layer.rawValue, depthUm: $0.depthUm, rateHz: $0.rateHz) }
    }
}

/// The session report as JSON: everything recorded, and the audit chain's state.
struct ReportView: Codable, Sendable {
    var session: SessionSummary
    var pen: PenRecord?
    var cartridges: [SessionReportData.CartridgeUse]
    var setpoints: [SessionReportData.SetpointChange]
    var faults: [SessionReportData.Event]
    var warnings: [SessionReportData.Event]
    var telemetry: [SessionReportData.TelemetrySecond]
    var limits: LimitsView?
    /// "recorded" (at the opening) or "current" (sessions from before that was recorded).
    var limitsSource: String?
    /// The session's audit entries, oldest first.
    var events: [AuditEntry] = []
    var audit: AuditVerification
    /// "accelerated" for a session that ran on the simulator's accelerated clock (its boot id
    /// says so), "real" otherwise: a report must never pass a test rig's run off as a treatment.
    var clock: String

    init(_ data: SessionReportData, audit: AuditVerification) {
        session = SessionSummary(data.session)
        pen = data.pen
        cartridges = data.cartridges
        setpoints = data.setpoints
        faults = data.faults
        warnings = data.warnings
        telemetry = data.telemetry
        self.audit = audit
        clock = data.session.snapshot.session.clock.bootID.hasPrefix("accelerated-") ? "accelerated" : "real"
    }
}

/// `GET /v1/arming-checks`: what an arm now would say, without arming.
struct ArmingChecklistView: Encodable, Sendable {
    struct Blocked: Encodable, Sendable {
        var code: String
        var detail: String
    }
    var ready: Bool
    var blocked: Blocked?
    var failures: [Problem.CheckFailure]
}

/// `GET /v1/me`: the caller as the daemon reads it from the socket.
struct CallerView: Encodable, Sendable {
    var user: String
    var uid: UInt32
    var role: String
}
