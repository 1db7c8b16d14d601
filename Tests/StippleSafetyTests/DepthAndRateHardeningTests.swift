import PropertyBased
import StippleSafety
import StippleWire
import Testing

/// Holes an adversarial review found in depth and rate handling (H1, H2, H3, H6, H13), each
/// with the test that injects it.
@Suite struct DepthAndRateHardeningTests {
    // MARK: - Limit sets (H2)

    /// Any number a configuration file could hold, hostile ones included.
    static let anyInt = Gen<Int>.oneOf(Gen.int(in: -3000...3000), Gen.int(in: 0...2500), Gen.int(in: 0...2500), Gen.int(in: 0...2500),
                                       Gen.int(in: 0...2500), Gen.int(in: 0...2500), Gen.int(in: 0...2500), Gen.int(in: 0...2500),
                                  Gen<Int>.pick([Int.min, Int.max, 0, -1, 1, 1500, 1501, 2000, 2001]))
    static let anyDouble = Gen<Double>.oneOf(Gen.double(in: -200...400), Gen.double(in: 30...170),
                                     Gen<Double>.pick([Double.nan, .infinity, -.infinity, 0, -0.0, 40, 50, 150, 160, 1e300]))

    struct LimitDraw: Sendable, CustomStringConvertible {
        var ints: [Int]
        var doubles: [Double]
        var seconds: [Int64]
        var description: String { "\(ints) \(doubles) \(seconds)" }
    }

    static let limitDraws = zip(anyInt.array(of: 14...14), anyDouble.array(of: 3...3),
                                Gen<Int64>.oneOf(Gen.int64(in: -100...20_000), Gen.int64(in: 0...20_000), Gen.int64(in: 0...20_000),
                                                 Gen.int64(in: 0...20_000), Gen.int64(in: 0...20_000), Gen<Int64>.pick([Int64.min, Int64.max, 0, 14_400, 14_401, 432_000, 431_999]))
                                    .array(of: 6...6))
        .map { LimitDraw(ints: $0, doubles: $1, seconds: $2) }

    static func limits(_ draw: LimitDraw) -> SafetyLimits {
        var limits = SafetyLimits.defaults
        // Mostly tightened from the loosest allowed value by up to `span`, so that a good share
        // validates; each field is now and then a little looser than allowed, or any number.
        func pick(_ index: Int, _ loosest: Int, tighten direction: Int, span: UInt) -> Int {
            let x = draw.ints[index % draw.ints.count]
            switch (x.magnitude / 3) % 40 {
            case 0: return x
            case 1: return loosest - direction * Int(1 + x.magnitude % 30)
            default: return loosest + direction * Int(x.magnitude % span)
            }
        }
        limits.epidermis = DepthBand(minUm: pick(0, 200, tighten: 1, span: 100), maxUm: pick(1, 400, tighten: -1, span: 100))
        limits.upperDermis = DepthBand(minUm: pick(2, 400, tighten: 1, span: 100), maxUm: pick(3, 1000, tighten: -1, span: 100))
        limits.frontTemplesMaxUm = pick(4, 1500, tighten: -1, span: 600)
        limits.crownMaxUm = pick(5, 1500, tighten: -1, span: 600)
        limits.backSidesMaxUm = pick(6, 1500, tighten: -1, span: 600)
        limits.scarMaxUm = pick(7, 1500, tighten: -1, span: 600)
        limits.siteCeilingUm = pick(8, 2000, tighten: -1, span: 500)
        limits.depthToleranceUm = pick(9, 100, tighten: -1, span: 100)
        limits.rateViolationStrokes = pick(10, 50, tighten: -1, span: 50)
        limits.penTripMarginUm = pick(11, 500, tighten: -1, span: 500)
        limits.penDeadmanMs = pick(12, 150, tighten: 1, span: 850)
        let hostileRates = (draw.ints[13].magnitude / 3) % 16 == 0
        func tame(_ value: Double, _ span: Double) -> Double { value.isFinite ? abs(value.truncatingRemainder(dividingBy: span)) : 0 }
        limits.rateMinHz = hostileRates ? draw.doubles[0] : 50 + tame(draw.doubles[0], 30)
        limits.rateMaxHz = hostileRates ? draw.doubles[1] : 150 - tame(draw.doubles[1], 30)
        limits.rateTolerance = hostileRates ? draw.doubles[2] : tame(draw.doubles[2], 0.25)
        func seconds(_ index: Int, _ loosest: Int64, tighten direction: Int64, span: UInt64) -> Int64 {
            let x = draw.seconds[index]
            switch (x.magnitude / 3) % 40 {
            case 0: return x
            case 1: return loosest - direction * Int64(1 + x.magnitude % 30)
            default: return loosest + direction * Int64(x.magnitude % span)
            }
        }
        limits.sessionLength = .seconds(seconds(0, 14_400, tighten: -1, span: 10_000))
        limits.minimumSessionGap = .seconds(seconds(1, 432_000, tighten: 1, span: 1_000_000))
        limits.spinUpGrace = .milliseconds(seconds(2, 1000, tighten: -1, span: 1000))
        limits.telemetrySilence = .milliseconds(seconds(3, 250, tighten: -1, span: 200))
        limits.sessionWarnings = [.seconds(seconds(4, 1, tighten: 1, span: 4000)), .seconds(seconds(5, 1, tighten: 1, span: 4000))]
        return limits
    }

    @Test("H2: no limit set that validates exceeds any ceiling of domain.md (property over the whole limit space)")
    func h2ValidatedLimitSetsNeverExceedADomainCeiling() async {
        var accepted = 0
        var refused = 0
        await propertyCheck(count: 3000, input: Self.limitDraws) { draw in
            let limits = Self.limits(draw)
            // Hostile numbers never trap: every derived figure is computed for every set.
            let problems = limits.validate()
            let derived = Zone.allCases.flatMap { zone in Layer.allCases.map { (zone, $0) } }.map { zone, layer in
                (limits.depthTripUm(layer, in: zone), limits.penLimits(layer: layer, zone: zone), limits.allowedBand(layer, in: zone))
            }
            _ = limits.warningTimes
            guard problems.isEmpty else {
                refused += 1
                for problem in problems {
                    #expect(!problem.field.isEmpty && !problem.value.isEmpty && !problem.allowed.isEmpty)
                }
                return
            }
            accepted += 1
            for zone in Zone.allCases {
                #expect(limits.zoneMaxUm(zone) <= 1500 && limits.depthLimitUm(zone) <= 1500, "zone \(zone) above 1500 µm: \(draw)")
            }
            #expect(limits.siteCeilingUm <= 2000)
            #expect(DepthBand(minUm: 200, maxUm: 400).encloses(limits.epidermis), "epidermis band widened: \(draw)")
            #expect(DepthBand(minUm: 400, maxUm: 1000).encloses(limits.upperDermis), "upper-dermis band widened: \(draw)")
            #expect(limits.rateMinHz >= 50 && limits.rateMaxHz <= 150 && limits.rateMinHz < limits.rateMaxHz)
            #expect(limits.sessionLength <= .seconds(4 * 3600) && limits.minimumSessionGap >= .seconds(5 * 86_400))
            #expect(limits.telemetrySilence <= .milliseconds(250))
            #expect(ProtocolTiming.deadmanRangeMs.contains(limits.penDeadmanMs))
            for (trip, pen, band) in derived {
                #expect(trip <= 1500 && band.maxUm <= trip)
                #expect(pen.depthTripUm <= 2000 && pen.depthMaxUm <= pen.depthTripUm && pen.depthMinUm < pen.depthMaxUm)
                #expect(pen.rateStallDhz == 400 && pen.rateRunawayDhz == 1600 && pen.rateMinDhz >= 500 && pen.rateMaxDhz <= 1500)
            }
            let warnings = limits.warningTimes
            #expect(warnings.contains(limits.sessionLength - .seconds(3600)) || limits.sessionLength <= .seconds(3600))
            // (A session shorter than a mandatory warning's lead has no such warning: it would fall before the start.)
            #expect(warnings.contains(limits.sessionLength - .seconds(15 * 60)) || limits.sessionLength <= .seconds(15 * 60))
        }
        print("limit sets: \(accepted) accepted, \(refused) refused")
        #expect(accepted > 100 && refused > 100, "the draws must reach both sides: \(accepted) accepted, \(refused) refused")
    }

    @Test("H2: a band may be tightened, never widened beyond the domain's band for its layer")
    func h2ABandWiderThanTheDomainIsRefused() {
        var limits = SafetyLimits.defaults
        limits.epidermis = DepthBand(minUm: 200, maxUm: 700)
        limits.upperDermis = DepthBand(minUm: 300, maxUm: 1000)
        let problems = limits.validate()
        #expect(problems.contains { $0.description == "band.epidermis.max_um: 700 is outside the allowed range 200...400 µm (the epidermis band of domain.md)" })
        #expect(problems.contains { $0.field == "band.upper_dermis.min_um" && $0.value == "300" && $0.allowed.hasPrefix("400...1000 µm") })
        var tighter = SafetyLimits.defaults
        tighter.epidermis = DepthBand(minUm: 250, maxUm: 350)
        #expect(tighter.validate().isEmpty, "tightening is always allowed")
    }

    @Test("H2: no zone maximum above 1500 µm, whatever the site ceiling says")
    func h2ZoneAboveTheAbsoluteZoneCeilingIsRefused() {
        var limits = SafetyLimits.defaults
        limits.siteCeilingUm = 2000
        limits.backSidesMaxUm = 1800
        let problem = limits.validate().first { $0.field == "zone_max_um.back_sides" }
        #expect(problem?.value == "1800")
        #expect(problem?.allowed.contains("1...1500 µm") == true)
    }

    @Test("H2: the rate window may be narrowed within 50–150 Hz, never widened; NaN is refused")
    func h2RateWindowIsTightenOnly() {
        for (low, high) in [(45.0, 150.0), (50, 155), (Double.nan, 150), (50, .infinity), (120, 110)] {
            var limits = SafetyLimits.defaults
            limits.rateMinHz = low
            limits.rateMaxHz = high
            #expect(!limits.validate().isEmpty, "\(low)...\(high)")
        }
    }

    // MARK: - The active band at run time (H1)

    @Test("H1: a stroke beyond the active band plus its tolerance stops, even far under the zone maximum")
    func h1ActiveBandStopsBelowTheZoneMaximum() {
        var rig = Rig()
        var request = Rig.request
        request.zone = .backSides
        rig.open(request)
        rig.send(.setSetpoint(Setpoint(layer: .epidermis, depthUm: 300, rateHz: 120)))
        rig.send(.arm(rig.goodFacts))
        rig.send(.telemetry(rig.stroke(depth: 300)))
        #expect(rig.core.phase == .running && rig.core.depthTripUm == 450)
        #expect(rig.send(.telemetry(rig.stroke(depth: 450))).actions.isEmpty, "within the 50 µm tolerance")
        let decision = rig.send(.telemetry(rig.stroke(depth: 1400)))
        #expect(decision.firstActionIsStop && decision.faultsLatched == [.overDepth], "1400 µm with an epidermis setpoint in the back zone")
        var edge = Rig()
        edge.open(request)
        edge.send(.setSetpoint(Setpoint(layer: .epidermis, depthUm: 300, rateHz: 120)))
        edge.send(.arm(edge.goodFacts))
        #expect(edge.send(.telemetry(edge.stroke(depth: 451))).faultsLatched == [.overDepth], "one µm past the tolerance")
    }

    @Test("H1: the zone maximum has no tolerance")
    func h1TheZoneMaximumHasNoTolerance() {
        var rig = Rig()
        var request = Rig.request
        request.zone = .scar
        rig.open(request)
        rig.send(.setSetpoint(Setpoint(layer: .upperDermis, depthUm: 780, rateHz: 120)))
        rig.send(.arm(rig.goodFacts))
        #expect(rig.core.depthTripUm == 800)
        #expect(rig.send(.telemetry(rig.stroke(depth: 801))).faultsLatched == [.overDepth])
    }

    // MARK: - The depth sensor (H1)

    @Test("H1: missing depth readings while running stop within three strokes")
    func h1MissingDepthReadingsStop() {
        var rig = Rig()
        rig.runPastSpinUp()
        #expect(rig.send(.telemetry(rig.stroke(depth: nil))).faultsLatched.isEmpty)
        #expect(rig.send(.telemetry(rig.stroke(depth: nil))).faultsLatched.isEmpty)
        let third = rig.send(.telemetry(rig.stroke(depth: nil)))
        #expect(third.firstActionIsStop && third.faultsLatched == [.depthSensor])
    }

    @Test("H1: a reading in between resets the count; a negative reading stops at once")
    func h1NegativeDepthStopsAndReadingsResetTheCount() {
        var rig = Rig()
        rig.runPastSpinUp()
        for _ in 0..<10 {
            rig.send(.telemetry(rig.stroke(depth: nil)))
            rig.send(.telemetry(rig.stroke(depth: nil)))
            rig.advance(.milliseconds(3))
            rig.send(.telemetry(rig.stroke()))
        }
        #expect(rig.core.phase == .running)
        for phase in [SessionPhase.open, .armed, .running, .paused, .noSession] {
            var negative = Rig()
            negative.bring(to: phase)
            let decision = negative.send(.telemetry(negative.stroke(depth: -1, rate: 0, motorOn: false, pedal: false)))
            #expect(decision.firstActionIsStop && decision.faultsLatched == [.depthSensor], "\(phase)")
        }
    }

    @Test("H1: a depth sensor stuck on one value stops the needle")
    func h1StuckDepthSensorStops() {
        var rig = Rig()
        rig.runPastSpinUp()
        var latched: [FaultReason] = []
        var strokes = 0
        while latched.isEmpty && strokes < 100 {
            rig.advance(.milliseconds(8))
            latched = rig.send(.telemetry(rig.stroke(depth: 812))).faultsLatched
            strokes += 1
        }
        #expect(latched == [.depthSensor] && strokes == SafetyCore.depthStuckStrokes)
    }

    @Test("H1: a pen without a depth sensor (depth set mechanically) runs with no readings")
    func h1APenWithoutASensorRunsOnItsMechanicalDepth() {
        var rig = Rig()
        rig.openWithSetpoint()
        var facts = rig.goodFacts
        facts.pen?.hasDepthSensor = false
        rig.send(.arm(facts))
        for _ in 0..<200 {
            rig.advance(.milliseconds(8))
            rig.send(.telemetry(rig.stroke(depth: nil)))
        }
        #expect(rig.core.phase == .running)
        #expect(rig.send(.telemetry(rig.stroke(depth: 1200))).faultsLatched == [.overDepth], "a reading it does send still counts")
    }

    // MARK: - Stroke rate and silence (H3, H6)

    @Test("H3: runaway stops at once, also during spin-up")
    func h3RunawayDuringSpinUpStopsAtOnce() {
        var rig = Rig()
        rig.run()
        rig.advance(.milliseconds(5))
        let decision = rig.send(.telemetry(rig.stroke(rate: 161)))
        #expect(decision.firstActionIsStop && decision.faultsLatched == [.rateRunaway])
    }

    /// A site that narrows the window to 50–120 Hz: 10 % above it (132 Hz) is well below runaway.
    static var narrowWindow: SafetyLimits {
        var limits = SafetyLimits.defaults
        limits.rateMaxHz = 120
        return limits
    }

    @Test("H3: a rate above the window counts during spin-up; only stall and below-window wait")
    func h3AboveTheWindowCountsDuringSpinUp() {
        var rig = Rig(limits: Self.narrowWindow)
        rig.run()
        var latched: [FaultReason] = []
        for _ in 0..<SafetyLimits.defaults.rateViolationStrokes where latched.isEmpty {
            rig.advance(.milliseconds(6))
            latched = rig.send(.telemetry(rig.stroke(rate: 140))).faultsLatched
        }
        #expect(latched == [.rateOutOfWindow])
        #expect(rig.now - MonotonicInstant.zero < SafetyLimits.defaults.spinUpGrace)
    }

    @Test("H3: NaN, infinite and negative stroke rates are faults in every state, never in the window")
    func h3ImpossibleRatesAreFaults() {
        for rate in [Double.nan, .infinity, -.infinity, -1, -Double.leastNonzeroMagnitude] {
            for phase in SessionPhase.allCases {
                var rig = Rig()
                rig.bring(to: phase)
                let decision = rig.send(.telemetry(rig.stroke(depth: nil, rate: rate, motorOn: false, pedal: false)))
                #expect(decision.stopsNeedle, "\(rate) in \(phase)")
                #expect(rig.core.phase == .faulted)
                #expect(phase == .faulted || decision.faultsLatched == [.implausibleTelemetry], "\(rate) in \(phase)")
            }
        }
    }

    @Test("H3/H6: tapping the pedal resets no safety timer")
    func h6PedalTappingCannotHideSilence() {
        var rig = Rig()
        rig.runPastSpinUp()
        // The pen falls silent; the pedal (a GPIO line, say) is tapped faster than the spin-up grace.
        var latched: [FaultReason] = []
        var elapsed = Duration.zero
        while latched.isEmpty && elapsed < .seconds(2) {
            rig.advance(.milliseconds(40))
            elapsed += .milliseconds(40)
            latched += rig.send(.pedal(pressed: false)).faultsLatched
            latched += rig.send(.pedal(pressed: true)).faultsLatched
            latched += rig.send(.tick(wall: rig.wall)).faultsLatched
        }
        #expect(latched == [.telemetrySilence])
        #expect(elapsed <= .milliseconds(280), "caught within the 250 ms silence, not reset by the presses")
    }

    @Test("H3: tapping the pedal does not reset the count of strokes outside the window")
    func h3PedalTappingKeepsTheRateViolationCount() {
        var rig = Rig(limits: Self.narrowWindow)
        rig.runPastSpinUp()
        var latched: [FaultReason] = []
        for _ in 0..<10 where latched.isEmpty {
            rig.advance(.milliseconds(7))
            latched += rig.send(.telemetry(rig.stroke(rate: 140))).faultsLatched
            latched += rig.send(.telemetry(rig.stroke(depth: nil, rate: 0, motorOn: false, pedal: false))).faultsLatched
            latched += rig.send(.telemetry(rig.stroke(depth: nil, rate: 0, motorOn: false, pedal: true))).faultsLatched
        }
        #expect(latched == [.rateOutOfWindow])
    }
}
