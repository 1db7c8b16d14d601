/// Where on the scalp the technician works. Each zone has its own protrusion maximum because
/// the scalp is thinner at the front and scar tissue wants a shallow touch.
public enum Zone: String, CaseIterable, Hashable, Sendable, Codable {
    case frontTemples = "front_temples"
    case crown
    case backSides = "back_sides"
    case scar
}

/// The skin layer the pigment is meant for.
public enum Layer: String, CaseIterable, Hashable, Sendable, Codable {
    case epidermis
    case upperDermis = "upper_dermis"
}

/// A protrusion band in micrometres, both ends included.
public struct DepthBand: Hashable, Sendable, Codable, CustomStringConvertible {
    public var minUm: Int
    public var maxUm: Int

    public init(minUm: Int, maxUm: Int) {
        self.minUm = minUm
        self.maxUm = maxUm
    }

    public func contains(_ um: Int) -> Bool { um >= minUm && um <= maxUm }

    public var description: String { "\(minUm)...\(maxUm) µm" }
}

/// Limits nobody can configure: compiled into the daemon, matching the firmware's.
public enum AbsoluteLimits {
    /// No protrusion setpoint, band or ceiling may exceed this.
    public static let depthCeilingUm = 2000
    /// Above this stroke rate while running: runaway, stop at once.
    public static let runawayHz = 160.0
    /// Below this stroke rate while running (after spin-up): stall, stop at once.
    public static let stallHz = 40.0
    /// No session runs longer, whatever the site configures. Pauses count.
    public static let sessionLength = Duration.seconds(4 * 3600)
    /// Needles per cartridge (3RL).
    public static let needleCount = 3
    /// Acceptable needle diameters.
    public static let needleDiameterUm = 180...300
    /// The shortest gap between two sessions of one client without a recorded override.
    public static let minimumSessionGap = Duration.seconds(5 * 86_400)
    /// The pen's deadman timeout range (PROTOCOL.md section 7).
    public static let deadmanMs = 50...1000
}

/// A limit set or a setpoint that is refused, naming the field, the value and what is allowed.
public struct LimitViolation: Error, Hashable, Sendable, CustomStringConvertible {
    public var field: String
    public var value: String
    public var allowed: String

    public init(field: String, value: String, allowed: String) {
        self.field = field
        self.value = value
        self.allowed = allowed
    }

    public var description: String { "\(field): \(value) is outside the allowed range \(allowed)" }
}

/// The limits a site runs with. Defaults come from ../shared/domain.md; a site may tighten
/// them, never loosen them past `AbsoluteLimits` — `validate()` refuses any set that does.
public struct SafetyLimits: Hashable, Sendable, Codable {
    /// Target band for pigment in the epidermis.
    public var epidermis = DepthBand(minUm: 200, maxUm: 400)
    /// Target band for pigment in the upper (papillary) dermis.
    public var upperDermis = DepthBand(minUm: 400, maxUm: 1000)
    /// Per-zone protrusion maximum: the runtime over-depth trip and a cap on every setpoint.
    public var frontTemplesMaxUm = 1000
    public var crownMaxUm = 1200
    public var backSidesMaxUm = 1500
    public var scarMaxUm = 800
    /// The site's protrusion ceiling, at most AbsoluteLimits.depthCeilingUm.
    public var siteCeilingUm = 1500
    /// Stroke-rate window for setpoints and for the running monitor.
    public var rateMinHz = 50.0
    public var rateMaxHz = 150.0
    /// How far outside the window (as a fraction of the window edge) a measured rate may be...
    public var rateTolerance = 0.10
    /// ...for how many consecutive strokes, before the needle is stopped.
    public var rateViolationStrokes = 5
    /// Motor spin-up: rate checks start this long after the motor starts.
    public var spinUpGrace = Duration.milliseconds(250)
    /// Running with no telemetry for this long stops the needle (H6).
    public var telemetrySilence = Duration.milliseconds(250)
    /// Session time at which the technician is warned.
    public var sessionWarnings: [Duration] = [.seconds(3 * 3600), .seconds(3 * 3600 + 45 * 60)]
    /// Session time at which the needle stops and the session closes (at most 4:00).
    public var sessionLength = AbsoluteLimits.sessionLength
    /// Shortest gap between a client's sessions without an override (at least 5 days).
    public var minimumSessionGap = AbsoluteLimits.minimumSessionGap
    /// The pen trips this far above the daemon's own limit, so the daemon always acts first
    /// and the pen is the independent backstop.
    public var penTripMarginUm = 100
    /// The pen's host-heartbeat deadman timeout.
    public var penDeadmanMs = 300

    public init() {}

    public static let defaults = SafetyLimits()

    public func band(_ layer: Layer) -> DepthBand {
        switch layer {
        case .epidermis: epidermis
        case .upperDermis: upperDermis
        }
    }

    public func zoneMaxUm(_ zone: Zone) -> Int {
        switch zone {
        case .frontTemples: frontTemplesMaxUm
        case .crown: crownMaxUm
        case .backSides: backSidesMaxUm
        case .scar: scarMaxUm
        }
    }

    /// The daemon's over-depth trip for a zone: no stroke may protrude further.
    public func depthLimitUm(_ zone: Zone) -> Int { min(zoneMaxUm(zone), siteCeilingUm, AbsoluteLimits.depthCeilingUm) }

    /// The setpoints allowed for a layer in a zone: the layer band, capped by the zone limit.
    public func allowedBand(_ layer: Layer, in zone: Zone) -> DepthBand {
        let band = self.band(layer)
        return DepthBand(minUm: band.minUm, maxUm: min(band.maxUm, depthLimitUm(zone)))
    }

    /// Every problem with this limit set (empty when it is usable).
    public func validate() -> [LimitViolation] {
        var problems: [LimitViolation] = []
        func check(_ ok: Bool, _ field: String, _ value: some CustomStringConvertible, _ allowed: String) {
            if !ok { problems.append(LimitViolation(field: field, value: value.description, allowed: allowed)) }
        }
        let ceiling = AbsoluteLimits.depthCeilingUm
        check((1...ceiling).contains(siteCeilingUm), "site_ceiling_um", siteCeilingUm, "1...\(ceiling) µm")
        let cap = min(siteCeilingUm, ceiling)
        for zone in Zone.allCases {
            let value = zoneMaxUm(zone)
            check((1...cap).contains(value), "zone_max_um.\(zone.rawValue)", value, "1...\(cap) µm (the site ceiling)")
        }
        for layer in Layer.allCases {
            let band = self.band(layer)
            let name = "band.\(layer.rawValue)"
            check(band.minUm >= 0, "\(name).min_um", band.minUm, "0...\(cap) µm")
            check(band.minUm < band.maxUm, "\(name).min_um", band.minUm, "below \(name).max_um (\(band.maxUm) µm)")
            check(band.maxUm <= cap, "\(name).max_um", band.maxUm, "\(band.minUm + 1)...\(cap) µm (the site ceiling)")
            // A band may reach above a zone's maximum (the zone caps it), but it must start
            // below every zone's maximum, or that zone could never be worked at this layer.
            for zone in Zone.allCases where band.minUm >= zoneMaxUm(zone) {
                check(false, "\(name).min_um", band.minUm, "below zone_max_um.\(zone.rawValue) (\(zoneMaxUm(zone)) µm)")
            }
        }
        let absolute = "\(AbsoluteLimits.stallHz)...\(AbsoluteLimits.runawayHz) Hz"
        check(rateMinHz >= AbsoluteLimits.stallHz && rateMinHz < rateMaxHz, "rate_min_hz", rateMinHz, "\(AbsoluteLimits.stallHz) Hz up to rate_max_hz (\(rateMaxHz) Hz)")
        check(rateMaxHz <= AbsoluteLimits.runawayHz && rateMaxHz > rateMinHz, "rate_max_hz", rateMaxHz, "above rate_min_hz, within \(absolute)")
        check(rateTolerance >= 0 && rateTolerance <= 0.25, "rate_tolerance", rateTolerance, "0...0.25")
        check((1...50).contains(rateViolationStrokes), "rate_violation_strokes", rateViolationStrokes, "1...50")
        check(spinUpGrace >= .zero && spinUpGrace <= .seconds(2), "spin_up_grace", spinUpGrace, "0...2 s")
        check(telemetrySilence >= .milliseconds(50) && telemetrySilence <= .seconds(1), "telemetry_silence", telemetrySilence, "50 ms...1 s")
        check(sessionLength > .zero && sessionLength <= AbsoluteLimits.sessionLength, "session_length", sessionLength.clockText, "0:00:01...4:00:00")
        for (index, warning) in sessionWarnings.enumerated() {
            check(warning > .zero && warning < sessionLength, "session_warnings[\(index)]", warning.clockText, "before session_length (\(sessionLength.clockText))")
        }
        check(minimumSessionGap >= AbsoluteLimits.minimumSessionGap, "minimum_session_gap", "\(minimumSessionGap.components.seconds / 86_400) days", "5 days or more")
        check((0...500).contains(penTripMarginUm), "pen_trip_margin_um", penTripMarginUm, "0...500 µm")
        check(AbsoluteLimits.deadmanMs.contains(penDeadmanMs), "pen_deadman_ms", penDeadmanMs, "50...1000 ms")
        return problems
    }

    /// Checks a setpoint against the layer band, the zone limit, the ceiling and the rate window.
    public func validateSetpoint(_ setpoint: Setpoint, in zone: Zone) -> [LimitViolation] {
        var problems: [LimitViolation] = []
        let band = allowedBand(setpoint.layer, in: zone)
        if !band.contains(setpoint.depthUm) {
            problems.append(LimitViolation(
                field: "depth_um", value: "\(setpoint.depthUm) µm",
                allowed: "\(band) (\(setpoint.layer.rawValue) band in zone \(zone.rawValue))"))
        }
        if !(setpoint.rateHz >= rateMinHz && setpoint.rateHz <= rateMaxHz) {
            problems.append(LimitViolation(field: "rate_hz", value: "\(setpoint.rateHz) Hz", allowed: "\(rateMinHz)...\(rateMaxHz) Hz"))
        }
        return problems
    }

    /// The limits to push to the pen for a session in `zone` working `layer`: the pen's own
    /// trip sits a margin above the daemon's, and its stall and runaway are the absolute ones.
    public func penLimits(layer: Layer, zone: Zone) -> PenLimits {
        let band = allowedBand(layer, in: zone)
        return PenLimits(
            depthMinUm: band.minUm, depthMaxUm: band.maxUm,
            depthTripUm: min(depthLimitUm(zone) + penTripMarginUm, AbsoluteLimits.depthCeilingUm),
            rateMinDhz: Int((rateMinHz * 10).rounded()), rateMaxDhz: Int((rateMaxHz * 10).rounded()),
            rateStallDhz: Int(AbsoluteLimits.stallHz * 10), rateRunawayDhz: Int(AbsoluteLimits.runawayHz * 10),
            deadmanMs: penDeadmanMs)
    }
}

/// What the technician asks the needle to do.
public struct Setpoint: Hashable, Sendable, Codable {
    public var layer: Layer
    public var depthUm: Int
    public var rateHz: Double

    public init(layer: Layer, depthUm: Int, rateHz: Double) {
        self.layer = layer
        self.depthUm = depthUm
        self.rateHz = rateHz
    }
}

/// The limit set pushed to the pen (the SET_LIMITS fields), in protocol units.
public struct PenLimits: Hashable, Sendable, Codable {
    public var depthMinUm: Int
    public var depthMaxUm: Int
    public var depthTripUm: Int
    public var rateMinDhz: Int
    public var rateMaxDhz: Int
    public var rateStallDhz: Int
    public var rateRunawayDhz: Int
    public var deadmanMs: Int
}
