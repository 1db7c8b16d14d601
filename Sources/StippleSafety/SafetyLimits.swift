import StippleWire

/// The limits a site runs with. Defaults come from ../shared/domain.md; a site may tighten
/// them, never loosen them past `AbsoluteLimits` — `validate()` refuses any set that does, and
/// a core cannot be built with a set it refuses.
public struct SafetyLimits: Hashable, Sendable, Codable {
    /// Target band for pigment in the epidermis (inside the domain's 200–400 µm).
    public var epidermis = AbsoluteLimits.band(.epidermis)
    /// Target band for pigment in the upper (papillary) dermis (inside the domain's 400–1000 µm).
    public var upperDermis = AbsoluteLimits.band(.upperDermis)
    /// Per-zone protrusion maximum: the runtime over-depth trip and a cap on every setpoint.
    public var frontTemplesMaxUm = 1000
    public var crownMaxUm = 1200
    public var backSidesMaxUm = 1500
    public var scarMaxUm = 800
    /// The site's protrusion ceiling, at most AbsoluteLimits.depthCeilingUm.
    public var siteCeilingUm = 1500
    /// A stroke may protrude this far past the active band's maximum (the setpoint layer's band
    /// capped by the zone) before the needle is stopped; never past the zone maximum.
    public var depthToleranceUm = 50
    /// Stroke-rate window for setpoints and for the running monitor.
    public var rateMinHz = 50.0
    public var rateMaxHz = 150.0
    /// How far outside the window (as a fraction of the window edge) a measured rate may be...
    public var rateTolerance = 0.10
    /// ...for how many consecutive strokes, before the needle is stopped.
    public var rateViolationStrokes = 5
    /// Motor spin-up: the stall and below-window checks start this long after the motor starts.
    /// Runaway has no grace.
    public var spinUpGrace = Duration.milliseconds(250)
    /// Armed with no telemetry for this long stops the needle (H6).
    public var telemetrySilence = AbsoluteLimits.telemetrySilence
    /// Extra warnings a site wants; the warnings of `AbsoluteLimits.warningsBeforeEnd` are
    /// always given on top of these.
    public var sessionWarnings: [Duration] = []
    /// Session time at which the needle stops and the session closes (at most 4:00).
    public var sessionLength = AbsoluteLimits.sessionLength
    /// Shortest gap between a client's sessions without an override (at least 5 days).
    public var minimumSessionGap = AbsoluteLimits.minimumSessionGap
    /// The pen trips this far above the daemon's own trip, so the daemon always acts first
    /// and the pen is the independent backstop.
    public var penTripMarginUm = 100
    /// The pen's host-heartbeat deadman timeout.
    public var penDeadmanMs = ProtocolTiming.deadmanDefaultMs

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

    /// The zone's hard limit: no stroke may protrude further, whatever the layer.
    public func depthLimitUm(_ zone: Zone) -> Int {
        min(zoneMaxUm(zone), siteCeilingUm, AbsoluteLimits.zoneCeilingUm, AbsoluteLimits.depthCeilingUm)
    }

    /// The setpoints allowed for a layer in a zone: the layer band, capped by the zone limit.
    public func allowedBand(_ layer: Layer, in zone: Zone) -> DepthBand {
        let band = self.band(layer)
        return DepthBand(minUm: band.minUm, maxUm: min(band.maxUm, depthLimitUm(zone)))
    }

    /// The daemon's over-depth trip while working `layer` in `zone`: the active band's maximum
    /// plus the measurement tolerance, never beyond the zone limit.
    public func depthTripUm(_ layer: Layer, in zone: Zone) -> Int {
        let tolerance = min(max(depthToleranceUm, AbsoluteLimits.depthToleranceUm.lowerBound), AbsoluteLimits.depthToleranceUm.upperBound)
        return min(allowedBand(layer, in: zone).maxUm.saturatingPlus(tolerance), depthLimitUm(zone))
    }

    /// The warning times of every session, in order: the mandatory ones counted back from the
    /// end, and the site's own, each once.
    public var warningTimes: [Duration] {
        let length = min(max(sessionLength, .zero), AbsoluteLimits.sessionLength)
        var times = AbsoluteLimits.warningsBeforeEnd.map { length - $0 }.filter { $0 > .zero }
        for extra in sessionWarnings where extra > .zero && extra < length && !times.contains(extra) {
            times.append(extra)
        }
        return times.sorted()
    }

    /// Whose range a refused stroke rate is given against: the window in force, not the
    /// firmware's stall and runaway rates (a user saw both in errors and could not tell which held).
    public static let rateWindowNote = "(the stroke-rate window in force: rate_min_hz...rate_max_hz of GET /v1/limits)"

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
            problems.append(LimitViolation(field: "rate_hz", value: "\(setpoint.rateHz) Hz", allowed: "\(rateMinHz)...\(rateMaxHz) Hz \(Self.rateWindowNote)"))
        }
        return problems
    }

    /// The limits to push to the pen for a session in `zone` working `layer`: the setpoint band,
    /// a trip a margin above the daemon's own, and the absolute stall and runaway rates.
    public func penLimits(layer: Layer, zone: Zone) -> PenLimits {
        let band = allowedBand(layer, in: zone)
        let margin = min(max(penTripMarginUm, 0), AbsoluteLimits.depthCeilingUm)
        return PenLimits(
            depthMinUm: band.minUm, depthMaxUm: band.maxUm,
            depthTripUm: min(depthTripUm(layer, in: zone).saturatingPlus(margin), AbsoluteLimits.depthCeilingUm),
            rateMinDhz: Self.deciHertz(rateMinHz), rateMaxDhz: Self.deciHertz(rateMaxHz),
            rateStallDhz: Self.deciHertz(AbsoluteLimits.stallHz), rateRunawayDhz: Self.deciHertz(AbsoluteLimits.runawayHz),
            deadmanMs: penDeadmanMs)
    }

    /// Hertz to the protocol's tenths of a hertz; a number that is not one becomes 0, which
    /// every pen refuses.
    public static func deciHertz(_ hz: Double) -> Int {
        let dhz = (hz * 10).rounded()
        return dhz.isFinite && dhz >= 0 && dhz <= 100_000 ? Int(dhz) : 0
    }
}
