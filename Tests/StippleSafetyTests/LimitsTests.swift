import StippleSafety
import Testing

@Suite struct LimitsTests {
    @Test func defaultsAreValidAndMatchTheDomain() {
        let limits = SafetyLimits.defaults
        #expect(limits.validate().isEmpty)
        #expect(limits.epidermis == DepthBand(minUm: 200, maxUm: 400))
        #expect(limits.upperDermis == DepthBand(minUm: 400, maxUm: 1000))
        #expect([limits.frontTemplesMaxUm, limits.crownMaxUm, limits.backSidesMaxUm, limits.scarMaxUm] == [1000, 1200, 1500, 800])
        #expect(limits.siteCeilingUm == 1500 && AbsoluteLimits.depthCeilingUm == 2000)
        #expect(limits.rateMinHz == 50 && limits.rateMaxHz == 150)
        #expect(limits.sessionLength == .seconds(4 * 3600))
    }

    @Test func zoneMaximumCapsTheLayerBand() {
        let limits = SafetyLimits.defaults
        #expect(limits.allowedBand(.upperDermis, in: .scar) == DepthBand(minUm: 400, maxUm: 800))
        #expect(limits.allowedBand(.upperDermis, in: .backSides) == DepthBand(minUm: 400, maxUm: 1000))
        #expect(limits.depthLimitUm(.backSides) == 1500)
        #expect(limits.depthLimitUm(.frontTemples) == 1000)
    }

    @Test func aLimitSetIsItselfValidatedAndEveryProblemNamed() {
        var limits = SafetyLimits.defaults
        limits.epidermis = DepthBand(minUm: 500, maxUm: 300)
        limits.crownMaxUm = 1700
        limits.siteCeilingUm = 2500
        limits.rateMaxHz = 170
        limits.sessionLength = .seconds(5 * 3600)
        limits.minimumSessionGap = .seconds(86_400)
        let problems = limits.validate()
        let fields = Set(problems.map(\.field))
        #expect(fields.isSuperset(of: ["band.epidermis.min_um", "site_ceiling_um", "rate_max_hz", "session_length", "minimum_session_gap"]))
        let ceiling = problems.first { $0.field == "site_ceiling_um" }!
        #expect(ceiling.description == "site_ceiling_um: 2500 is outside the allowed range 1...2000 µm")
        let gap = problems.first { $0.field == "minimum_session_gap" }!
        #expect(gap.value == "1 days" && gap.allowed == "5...366 days")
    }

    @Test func aZoneMaximumAboveTheSiteCeilingIsRefused() {
        var limits = SafetyLimits.defaults
        limits.siteCeilingUm = 1100
        let problems = limits.validate()
        #expect(problems.contains { $0.field == "zone_max_um.crown" && $0.value == "1200" && $0.allowed.contains("1...1100") })
        #expect(problems.contains { $0.field == "zone_max_um.back_sides" })
    }

    @Test func aBandMustStartBelowEveryZoneMaximum() {
        var limits = SafetyLimits.defaults
        limits.scarMaxUm = 350
        let problems = limits.validate()
        #expect(problems.contains { $0.field == "band.upper_dermis.min_um" && $0.allowed.contains("zone_max_um.scar") })
    }

    @Test func anInvalidLimitSetCannotBuildACore() {
        var limits = SafetyLimits.defaults
        limits.rateMinHz = 20
        #expect(throws: SafetyRefusal.self) { _ = try SafetyCore(limits: limits, history: SafetyHistory()) }
    }

    @Test("H2: setpoints outside the layer band, zone limit or ceiling are rejected before they reach the pen",
          arguments: [
              (Setpoint(layer: .epidermis, depthUm: 150, rateHz: 120), Zone.crown, "depth_um"),
              (Setpoint(layer: .epidermis, depthUm: 450, rateHz: 120), Zone.crown, "depth_um"),
              (Setpoint(layer: .upperDermis, depthUm: 900, rateHz: 120), Zone.scar, "depth_um"),
              (Setpoint(layer: .upperDermis, depthUm: 20_000, rateHz: 120), Zone.backSides, "depth_um"),
              (Setpoint(layer: .upperDermis, depthUm: -5, rateHz: 120), Zone.crown, "depth_um"),
              (Setpoint(layer: .upperDermis, depthUm: 800, rateHz: 45), Zone.crown, "rate_hz"),
              (Setpoint(layer: .upperDermis, depthUm: 800, rateHz: 155), Zone.crown, "rate_hz"),
              (Setpoint(layer: .upperDermis, depthUm: 800, rateHz: .nan), Zone.crown, "rate_hz"),
          ])
    func h2SetpointOutsideLimitsIsRejected(setpoint: Setpoint, zone: Zone, field: String) {
        var rig = Rig()
        var request = Rig.request
        request.zone = zone
        rig.open(request)
        let decision = rig.send(.setSetpoint(setpoint))
        #expect(decision.refusal?.code == .setpointOutOfLimits)
        #expect(decision.refusal?.violations.map(\.field) == [field])
        #expect(decision.actions.isEmpty, "nothing reaches the pen")
        #expect(rig.core.session?.setpoint == nil)
    }

    @Test func h2TheErrorNamesTheFieldTheValueAndTheRange() {
        var rig = Rig()
        var request = Rig.request
        request.zone = .scar
        rig.open(request)
        let refusal = rig.send(.setSetpoint(Setpoint(layer: .upperDermis, depthUm: 900, rateHz: 120))).refusal
        #expect(refusal?.violations.first?.description == "depth_um: 900 µm is outside the allowed range 400...800 µm (upper_dermis band in zone scar)")
    }

    @Test("H13: the limits pushed to the pen sit a margin above the daemon's own")
    func h13PenLimitsAreTheDaemonsPlusAMargin() {
        let pen = SafetyLimits.defaults.penLimits(layer: .upperDermis, zone: .crown)
        #expect(pen.depthMinUm == 400 && pen.depthMaxUm == 1000)
        #expect(pen.depthTripUm == 1150, "band maximum 1000 + 50 µm tolerance + 100 µm margin")
        #expect(pen.rateMinDhz == 500 && pen.rateMaxDhz == 1500)
        #expect(pen.rateStallDhz == 400 && pen.rateRunawayDhz == 1600)
        let scar = SafetyLimits.defaults.penLimits(layer: .upperDermis, zone: .scar)
        #expect(scar.depthTripUm == 900, "the scar zone's 800 µm caps the band and the trip, no tolerance past it")
        let epidermis = SafetyLimits.defaults.penLimits(layer: .epidermis, zone: .backSides)
        #expect(epidermis.depthTripUm == 550, "an epidermis setpoint trips the pen at 400 + 50 + 100 µm, not near the zone's 1500")
        var hostile = SafetyLimits.defaults
        hostile.penTripMarginUm = Int.max
        hostile.depthToleranceUm = Int.max
        #expect(hostile.penLimits(layer: .upperDermis, zone: .backSides).depthTripUm == 2000, "never above the compiled ceiling")
    }

    @Test func changingTheLayerPushesNewLimitsOnlyWhileDisarmed() {
        var rig = Rig()
        rig.open()
        let first = rig.send(.setSetpoint(Rig.setpoint))
        #expect(first.actions.contains(.pushLimits(SafetyLimits.defaults.penLimits(layer: .upperDermis, zone: .crown))))
        let same = rig.send(.setSetpoint(Setpoint(layer: .upperDermis, depthUm: 700, rateHz: 110)))
        #expect(same.actions == [.applySetpoint(Setpoint(layer: .upperDermis, depthUm: 700, rateHz: 110))])
        rig.send(.arm(rig.goodFacts))
        let refused = rig.send(.setSetpoint(Setpoint(layer: .epidermis, depthUm: 300, rateHz: 110)))
        #expect(refused.refusal?.code == .illegalTransition)
        let allowed = rig.send(.setSetpoint(Setpoint(layer: .upperDermis, depthUm: 600, rateHz: 100)))
        #expect(allowed.refusal == nil && allowed.actions == [.applySetpoint(Setpoint(layer: .upperDermis, depthUm: 600, rateHz: 100))])
    }
}

@Suite struct TightestLimitsTests {
    @Test("issue 15 item 5: the tightest of two sets never loosens either, field by field")
    func tightestNeverLoosens() {
        var config = SafetyLimits.defaults
        config.frontTemplesMaxUm = 900
        config.rateMaxHz = 140
        var runtime = SafetyLimits.defaults
        runtime.crownMaxUm = 800
        runtime.upperDermis = DepthBand(minUm: 450, maxUm: 950)
        runtime.sessionWarnings = [.seconds(3600)]
        let both = config.tightest(with: runtime)
        #expect(both.crownMaxUm == 800 && both.frontTemplesMaxUm == 900 && both.rateMaxHz == 140)
        #expect(both.upperDermis == DepthBand(minUm: 450, maxUm: 950))
        #expect(both.sessionWarnings == [.seconds(3600)])
        #expect(both.loosenings(comparedTo: config).isEmpty && both.loosenings(comparedTo: runtime).isEmpty)
        #expect(both.validate().isEmpty)
        #expect(runtime.tightest(with: config) == both, "order does not matter")
    }

    @Test("bands that do not overlap leave a set that validate() refuses")
    func disjointBandsAreRefused() {
        var a = SafetyLimits.defaults
        a.epidermis = DepthBand(minUm: 200, maxUm: 250)
        var b = SafetyLimits.defaults
        b.epidermis = DepthBand(minUm: 300, maxUm: 400)
        #expect(!a.tightest(with: b).validate().isEmpty)
    }
}
