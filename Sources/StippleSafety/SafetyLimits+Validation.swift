extension SafetyLimits {
    /// Every problem with this limit set (empty when it is usable), each naming the field, the
    /// value and the allowed range. A set that passes never exceeds any ceiling of domain.md.
    public func validate() -> [LimitViolation] {
        var problems: [LimitViolation] = []
        func check(_ ok: Bool, _ field: String, _ value: some CustomStringConvertible, _ allowed: String) {
            if !ok { problems.append(LimitViolation(field: field, value: value.description, allowed: allowed)) }
        }
        let ceiling = AbsoluteLimits.depthCeilingUm
        check((1...ceiling).contains(siteCeilingUm), "site_ceiling_um", siteCeilingUm, "1...\(ceiling) µm")
        // Each zone below the site ceiling and below the domain's per-zone ceiling, whatever
        // the site ceiling says.
        let zoneCap = min(max(siteCeilingUm, 1), AbsoluteLimits.zoneCeilingUm)
        for zone in Zone.allCases {
            let value = zoneMaxUm(zone)
            check((1...zoneCap).contains(value), "zone_max_um.\(zone.rawValue)", value,
                  "1...\(zoneCap) µm (the site ceiling, and at most \(AbsoluteLimits.zoneCeilingUm) µm per zone)")
        }
        for layer in Layer.allCases {
            let band = self.band(layer)
            let domain = AbsoluteLimits.band(layer)
            let name = "band.\(layer.rawValue)"
            // A band may be tightened, never widened: an "epidermis" band reaching into the
            // dermis is a configuration error, not a preference.
            check(domain.contains(band.minUm), "\(name).min_um", band.minUm, "\(domain) (the \(layer.rawValue) band of domain.md)")
            check(domain.contains(band.maxUm), "\(name).max_um", band.maxUm, "\(domain) (the \(layer.rawValue) band of domain.md)")
            check(band.minUm < band.maxUm, "\(name).min_um", band.minUm, "below \(name).max_um (\(band.maxUm) µm)")
            check(band.maxUm <= siteCeilingUm, "\(name).max_um", band.maxUm, "at most site_ceiling_um (\(siteCeilingUm) µm)")
            // A band may reach above a zone's maximum (the zone caps it), but it must start
            // below every zone's maximum, or that zone could never be worked at this layer.
            for zone in Zone.allCases where band.minUm >= zoneMaxUm(zone) {
                check(false, "\(name).min_um", band.minUm, "below zone_max_um.\(zone.rawValue) (\(zoneMaxUm(zone)) µm)")
            }
        }
        let tolerance = AbsoluteLimits.depthToleranceUm
        check(tolerance.contains(depthToleranceUm), "depth_tolerance_um", depthToleranceUm, "\(tolerance.lowerBound)...\(tolerance.upperBound) µm")
        let window = AbsoluteLimits.rateWindowHz
        let windowText = "\(window.lowerBound)...\(window.upperBound) Hz"
        check(window.contains(rateMinHz) && rateMinHz < rateMaxHz, "rate_min_hz", rateMinHz, "\(windowText), below rate_max_hz (\(rateMaxHz) Hz)")
        check(window.contains(rateMaxHz) && rateMaxHz > rateMinHz, "rate_max_hz", rateMaxHz, "\(windowText), above rate_min_hz (\(rateMinHz) Hz)")
        check(rateTolerance >= 0 && rateTolerance <= 0.25, "rate_tolerance", rateTolerance, "0...0.25")
        check((1...50).contains(rateViolationStrokes), "rate_violation_strokes", rateViolationStrokes, "1...50")
        check(spinUpGrace >= .zero && spinUpGrace <= .seconds(1), "spin_up_grace", spinUpGrace, "0 s...1 s")
        check(telemetrySilence >= .milliseconds(50) && telemetrySilence <= AbsoluteLimits.telemetrySilence,
              "telemetry_silence", telemetrySilence, "50 ms...\(AbsoluteLimits.telemetrySilence)")
        check(sessionLength >= .seconds(60) && sessionLength <= AbsoluteLimits.sessionLength, "session_length", sessionLength.clockText, "0:01:00...4:00:00")
        for (index, warning) in sessionWarnings.enumerated() {
            check(warning > .zero && warning < sessionLength, "session_warnings[\(index)]", warning.clockText, "0:00:01 up to session_length (\(sessionLength.clockText))")
        }
        let maximumGap = Duration.seconds(366 * 86_400)
        check(minimumSessionGap >= AbsoluteLimits.minimumSessionGap && minimumSessionGap <= maximumGap, "minimum_session_gap",
              "\(minimumSessionGap.wholeSeconds / 86_400) days", "5...366 days")
        check((0...500).contains(penTripMarginUm), "pen_trip_margin_um", penTripMarginUm, "0...500 µm")
        let deadman = AbsoluteLimits.deadmanMs
        check(deadman.contains(penDeadmanMs), "pen_deadman_ms", penDeadmanMs, "\(deadman.lowerBound)...\(deadman.upperBound) ms")
        return problems
    }

    /// Every field of `self` that is looser than `current`: a change of limits at run time may
    /// only tighten (empty means `self` is at least as tight everywhere).
    public func loosenings(comparedTo current: SafetyLimits) -> [LimitViolation] {
        var problems: [LimitViolation] = []
        func tighter(_ ok: Bool, _ field: String, _ value: some CustomStringConvertible, _ allowed: String) {
            if !ok { problems.append(LimitViolation(field: field, value: value.description, allowed: allowed + " (limits may only be tightened)")) }
        }
        for layer in Layer.allCases {
            let now = current.band(layer)
            let new = band(layer)
            tighter(now.encloses(new), "band.\(layer.rawValue)", new, "inside \(now)")
        }
        for zone in Zone.allCases {
            tighter(zoneMaxUm(zone) <= current.zoneMaxUm(zone), "zone_max_um.\(zone.rawValue)", zoneMaxUm(zone), "at most \(current.zoneMaxUm(zone)) µm")
        }
        tighter(siteCeilingUm <= current.siteCeilingUm, "site_ceiling_um", siteCeilingUm, "at most \(current.siteCeilingUm) µm")
        tighter(depthToleranceUm <= current.depthToleranceUm, "depth_tolerance_um", depthToleranceUm, "at most \(current.depthToleranceUm) µm")
        tighter(rateMinHz >= current.rateMinHz, "rate_min_hz", rateMinHz, "at least \(current.rateMinHz) Hz")
        tighter(rateMaxHz <= current.rateMaxHz, "rate_max_hz", rateMaxHz, "at most \(current.rateMaxHz) Hz")
        tighter(rateTolerance <= current.rateTolerance, "rate_tolerance", rateTolerance, "at most \(current.rateTolerance)")
        tighter(rateViolationStrokes <= current.rateViolationStrokes, "rate_violation_strokes", rateViolationStrokes, "at most \(current.rateViolationStrokes)")
        tighter(spinUpGrace <= current.spinUpGrace, "spin_up_grace", spinUpGrace, "at most \(current.spinUpGrace)")
        tighter(telemetrySilence <= current.telemetrySilence, "telemetry_silence", telemetrySilence, "at most \(current.telemetrySilence)")
        tighter(sessionLength <= current.sessionLength, "session_length", sessionLength.clockText, "at most \(current.sessionLength.clockText)")
        tighter(minimumSessionGap >= current.minimumSessionGap, "minimum_session_gap", "\(minimumSessionGap.wholeSeconds / 86_400) days",
                "at least \(current.minimumSessionGap.wholeSeconds / 86_400) days")
        tighter(penTripMarginUm <= current.penTripMarginUm, "pen_trip_margin_um", penTripMarginUm, "at most \(current.penTripMarginUm) µm")
        tighter(penDeadmanMs <= current.penDeadmanMs, "pen_deadman_ms", penDeadmanMs, "at most \(current.penDeadmanMs) ms")
        return problems
    }

    /// The tightest of two limit sets, field by field: bands intersected, maxima the smaller,
    /// minima the larger, every warning of both. The limits in force are the tightest of the
    /// configuration and the run-time tightening, so neither can loosen the other (issue 15 item
    /// 5). The result may fail `validate()` (two bands that do not overlap): the caller refuses it.
    public func tightest(with other: SafetyLimits) -> SafetyLimits {
        var result = self
        func intersect(_ a: DepthBand, _ b: DepthBand) -> DepthBand {
            DepthBand(minUm: max(a.minUm, b.minUm), maxUm: min(a.maxUm, b.maxUm))
        }
        result.epidermis = intersect(epidermis, other.epidermis)
        result.upperDermis = intersect(upperDermis, other.upperDermis)
        result.frontTemplesMaxUm = min(frontTemplesMaxUm, other.frontTemplesMaxUm)
        result.crownMaxUm = min(crownMaxUm, other.crownMaxUm)
        result.backSidesMaxUm = min(backSidesMaxUm, other.backSidesMaxUm)
        result.scarMaxUm = min(scarMaxUm, other.scarMaxUm)
        result.siteCeilingUm = min(siteCeilingUm, other.siteCeilingUm)
        result.depthToleranceUm = min(depthToleranceUm, other.depthToleranceUm)
        result.rateMinHz = max(rateMinHz, other.rateMinHz)
        result.rateMaxHz = min(rateMaxHz, other.rateMaxHz)
        result.rateTolerance = min(rateTolerance, other.rateTolerance)
        result.rateViolationStrokes = min(rateViolationStrokes, other.rateViolationStrokes)
        result.spinUpGrace = min(spinUpGrace, other.spinUpGrace)
        result.telemetrySilence = min(telemetrySilence, other.telemetrySilence)
        result.sessionWarnings = Array(Set(sessionWarnings + other.sessionWarnings)).sorted()
        result.sessionLength = min(sessionLength, other.sessionLength)
        result.minimumSessionGap = max(minimumSessionGap, other.minimumSessionGap)
        result.penTripMarginUm = min(penTripMarginUm, other.penTripMarginUm)
        result.penDeadmanMs = min(penDeadmanMs, other.penDeadmanMs)
        return result
    }
}
