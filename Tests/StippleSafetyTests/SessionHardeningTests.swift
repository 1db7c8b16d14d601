import Foundation
import PropertyBased
import StippleSafety
import StippleWire
import Testing

/// Holes an adversarial review found in session time, the gap rule, cartridges, checksums,
/// latches and persisted records (H4, H9, H12, H13, H15), each with the test that injects it.
@Suite struct SessionHardeningTests {
    // MARK: - Persisted records read as hostile input

    /// A snapshot of a session that ran for an hour, as JSON the test can corrupt.
    static func runningSnapshot() throws -> (Rig, [String: Any]) {
        var rig = Rig()
        rig.runPastSpinUp()
        rig.advance(.seconds(3600))
        rig.send(.telemetry(rig.stroke()))
        rig.send(.tick(wall: rig.wall))
        let snapshot = try #require(rig.core.snapshot)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(snapshot)) as! [String: Any]
        return (rig, json)
    }

    /// A frame of a pen at rest.
    static let idle = TelemetrySample(peakProtrusionUm: nil, strokeRateHz: 0, motorOn: false, pedalPressed: false)

    static func decode(_ json: [String: Any]) throws -> SessionSnapshot {
        try JSONDecoder().decode(SessionSnapshot.self, from: JSONSerialization.data(withJSONObject: json))
    }

    static func restore(_ json: [String: Any], at now: MonotonicInstant, wall: WallTime, boot: String = "boot-A",
                        limits: SafetyLimits = .defaults) throws -> (SafetyCore, Decision) {
        try SafetyCore.restoring(decode(json), limits: limits, history: SafetyHistory(), at: now, wall: wall, bootID: boot)
    }

    static func setClock(_ json: inout [String: Any], _ key: String, _ value: Any) {
        var session = json["session"] as! [String: Any]
        var clock = session["clock"] as! [String: Any]
        clock[key] = value
        session["clock"] = clock
        json["session"] = session
    }

    @Test("H4: session time never goes backwards: a same-boot monotonic reading behind its checkpoint locks the session")
    func h4MonotonicBehindTheCheckpointLocks() throws {
        let (rig, json) = try Self.runningSnapshot()
        let elapsed = rig.core.sessionElapsed(at: rig.now)
        let (core, decision) = try Self.restore(json, at: MonotonicInstant(nanoseconds: 1_000), wall: rig.wall)
        #expect(core.closeReason == .clockUntrusted && core.phase == .faulted, "it was running: latched, and locked")
        #expect(core.sessionElapsed(at: MonotonicInstant(nanoseconds: 1_000)) >= elapsed, "no time given back")
        #expect(decision.firstActionIsStop)
    }

    @Test("H4: a negative persisted session time is a corrupted record: locked, never less time")
    func h4NegativeElapsedLocks() throws {
        var (rig, json) = try Self.runningSnapshot()
        Self.setClock(&json, "elapsedAtCheckpoint", ["-3600", "0"].map { _ in -3600 } as [Int64] as Any)
        // Duration encodes as [high, low] attoseconds: build a negative one.
        let negative = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Duration.seconds(-3600)))
        Self.setClock(&json, "elapsedAtCheckpoint", negative)
        let (core, _) = try Self.restore(json, at: rig.now + .seconds(10), wall: rig.wall)
        #expect(core.closeReason == .clockUntrusted)
        #expect(core.sessionElapsed(at: rig.now + .seconds(10)) >= .zero)
    }

    @Test("H4: across a reboot with the wall clock set back, the session is locked, not continued with time given back")
    func h4RebootWithTheWallClockSetBackLocks() throws {
        let (rig, json) = try Self.runningSnapshot()
        let (core, decision) = try Self.restore(json, at: .zero, wall: rig.wall + .seconds(-7200), boot: "boot-B")
        #expect(core.closeReason == .clockUntrusted)
        #expect(decision.actions.contains(.sessionClosed(.clockUntrusted)))
        var fresh = core
        #expect(fresh.handle(.arm(Rig().goodFacts), at: .zero).refusal?.armingFailures.contains { $0.code == .notOpen } == true)
    }

    @Test("H4: corrupted wall times, counters and fault lists never trap; they fail safe")
    func h4CorruptedRecordsFailSafe() throws {
        let (rig, json) = try Self.runningSnapshot()
        // A faulted record whose fault list was lost still needs an explicit clear.
        var lost = json
        lost["phase"] = "faulted"
        lost["faults"] = [String]()
        var (core, decision) = try Self.restore(lost, at: rig.now, wall: rig.wall)
        #expect(core.phase == .faulted && core.faults == [.recordCorrupted])
        #expect(core.closeReason == .recordCorrupted, "and the session is locked")
        #expect(decision.firstActionIsStop)
        #expect(core.handle(.clearFault, at: rig.now).refusal?.code == .faultPersists, "not before the pen is heard from")
        _ = core.handle(.telemetry(Self.idle), at: rig.now + .milliseconds(1))
        #expect(core.handle(.clearFault, at: rig.now + .milliseconds(1)).refusal == nil, "a technician can clear it")
        // Counters and wall times at the ends of their ranges.
        for (key, value) in [("warningsGiven", Int.min), ("warningsGiven", Int.max), ("warningsGiven", -1), ("warningsGiven", 3)] {
            var bad = json
            bad[key] = value
            let (core, _) = try Self.restore(bad, at: rig.now, wall: rig.wall)
            #expect(core.faults.contains(.recordCorrupted) && core.closeReason == .recordCorrupted, "\(key) = \(value)")
        }
        for extreme in [Int64.min, Int64.max, -1, 0] {
            var bad = json
            Self.setClock(&bad, "checkpointWall", ["secondsSince1970": extreme])
            Self.setClock(&bad, "checkpointMonotonic", ["nanoseconds": extreme])
            for boot in ["boot-A", "boot-B"] {
                for wall in [Int64.min, Int64.max, 0] {
                    let now = MonotonicInstant(nanoseconds: extreme)
                    let (core, _) = try Self.restore(bad, at: now, wall: WallTime(secondsSince1970: wall), boot: boot)
                    #expect(core.phase != .running && core.phase != .armed && core.phase != .paused)
                    if core.closeReason == nil {
                        #expect(core.sessionElapsed(at: now) >= rig.core.sessionElapsed(at: rig.now), "time given back: \(extreme) \(boot) \(wall)")
                    }
                }
            }
        }
        // A record that lists faults without being faulted, or is closed with no reason.
        var contradictory = json
        contradictory["faults"] = ["over_depth"]
        #expect(try Self.restore(contradictory, at: rig.now, wall: rig.wall).0.faults.contains(.recordCorrupted))
        var closed = json
        closed["phase"] = "closed"
        #expect(try Self.restore(closed, at: rig.now, wall: rig.wall).0.faults.contains(.recordCorrupted))
    }

    @Test("H2: a restored setpoint that today's limits refuse is dropped and never armed")
    func h2RestoredSetpointIsRevalidated() throws {
        let (rig, json) = try Self.runningSnapshot()
        var tighter = SafetyLimits.defaults
        tighter.upperDermis = DepthBand(minUm: 400, maxUm: 700)
        var (core, decision) = try Self.restore(json, at: rig.now, wall: rig.wall, limits: tighter)
        #expect(core.session?.setpoint == nil)
        #expect(decision.actions.contains { if case .warn(.restoredSetpointRefused(let violations)) = $0 { violations.first?.field == "depth_um" } else { false } })
        _ = core.handle(.telemetry(Self.idle), at: rig.now + .milliseconds(1))
        _ = core.handle(.clearFault, at: rig.now + .milliseconds(1))
        #expect(core.phase == .open)
        let refusal = core.handle(.arm(rig.goodFacts), at: rig.now).refusal
        #expect(refusal?.armingFailures.contains { $0.code == .setpointMissing } == true)
    }

    @Test("H13: after a restore the limits are pushed and verified again before anything arms")
    func h13RestoreRepushesLimits() throws {
        let (rig, json) = try Self.runningSnapshot()
        var (core, _) = try Self.restore(json, at: rig.now, wall: rig.wall)
        _ = core.handle(.telemetry(Self.idle), at: rig.now + .milliseconds(1))
        _ = core.handle(.clearFault, at: rig.now + .milliseconds(1))
        let facts = rig.goodFacts  // the read-back of the limits pushed before the restart
        #expect(core.handle(.arm(facts), at: rig.now).refusal?.armingFailures.map(\.code) == [.limitsUnverified])
        let connected = core.handle(.penConnected(PenIdentity(serial: "PEN-1", protocolMajor: 1, protocolMinor: 0)), at: rig.now)
        #expect(connected.actions.first == .pushLimits(SafetyLimits.defaults.penLimits(layer: .upperDermis, zone: .crown)))
        #expect(core.handle(.arm(facts), at: rig.now).refusal == nil)
    }

    // MARK: - Warnings, gap rule, ids (H4, H9)

    @Test("H4: the warnings at 3:00 and 3:45 cannot be configured away")
    func h4MandatoryWarningsCannotBeConfiguredAway() {
        var limits = SafetyLimits.defaults
        limits.sessionWarnings = []
        #expect(limits.validate().isEmpty)
        #expect(limits.warningTimes == [.seconds(3 * 3600), .seconds(3 * 3600 + 45 * 60)])
        limits.sessionWarnings = [.seconds(2 * 3600)]
        #expect(limits.warningTimes == [.seconds(2 * 3600), .seconds(3 * 3600), .seconds(3 * 3600 + 45 * 60)], "a site may add warnings")
        limits.sessionLength = .seconds(2 * 3600)
        limits.sessionWarnings = []
        #expect(limits.warningTimes == [.seconds(3600), .seconds(3600 + 45 * 60)], "a shorter session is warned an hour and 15 minutes before its end")
        var rig = Rig(limits: limits)
        rig.openWithSetpoint()
        var warned = 0
        for _ in 0..<(2 * 60) {
            rig.advance(.seconds(60))
            warned += rig.send(.tick(wall: rig.wall)).actions.filter { if case .warn = $0 { true } else { false } }.count
        }
        #expect(warned == 2 && rig.core.closeReason == .timeLimit)
    }

    @Test("H4: the gap rule holds for sessions the core closed itself, with no history from any caller")
    func h4GapRuleCannotBeBypassedByOmission() {
        for cutoff in [false, true] {
            var rig = Rig()
            rig.runPastSpinUp()
            if cutoff {
                while rig.core.closeReason == nil {
                    rig.advance(.milliseconds(50))
                    rig.send(.telemetry(rig.stroke()))
                    rig.send(.tick(wall: rig.wall))
                }
                #expect(rig.core.closeReason == .timeLimit)
            } else {
                rig.send(.closeSession)
            }
            rig.advance(.seconds(3600))
            var again = Rig.request
            again.sessionID = "S-NEXT"
            again.cartridgeID = "CART-NEW"
            again.clientID = " c1 "  // the same client, typed differently
            #expect(rig.open(again).refusal?.code == .sessionGap, "cutoff: \(cutoff)")
            rig.advance(.seconds(5 * 86_400))
            #expect(rig.open(again).refusal == nil, "five days later")
        }
    }

    @Test("H9: cartridge ids are normalised: case, whitespace, dashes and full width are one cartridge")
    func h9CartridgeIDsAreNormalised() {
        let spellings = ["cart-a", "CART-A", " CART-A ", "Cart A", "CART–A", "CART—A", "cart_a", "CART - A", "ＣＡＲＴ－Ａ", "\tCART-A\n", "CART\u{2212}A"]
        for spelling in spellings {
            #expect(Identifier.canonical(spelling) == "CART-A", "\(spelling)")
        }
        for bad in ["", "   ", "--", "CART\u{0}A", "CARTÉ", String(repeating: "A", count: 65)] {
            #expect(Identifier.canonical(bad) == nil, "\(bad)")
        }
        for spelling in spellings {
            var history = SafetyHistory()
            history.recordCartridgeUse("cart-a", session: "S0")
            var rig = Rig(history: history)
            var request = Rig.request
            request.cartridgeID = spelling
            #expect(rig.open(request).refusal?.code == .cartridgeReused, "\(spelling)")
        }
        var rig = Rig()
        var request = Rig.request
        request.cartridgeID = "cart 1"
        rig.open(request)
        rig.send(.setSetpoint(Rig.setpoint))
        var facts = rig.goodFacts
        facts.cartridge?.id = "CART-1"
        #expect(rig.send(.arm(facts)).refusal == nil, "the pen's reader and the typed id agree")
    }

    @Test("H9: reusing a session id never makes a used cartridge usable again")
    func h9SessionIDsAreNeverReused() {
        var rig = Rig()
        rig.arm()
        rig.send(.closeSession)
        var reuse = Rig.request
        reuse.clientID = "C-OTHER"
        #expect(rig.open(reuse).refusal?.code == .sessionIDReused)
        reuse.sessionID = " s1 "
        #expect(rig.open(reuse).refusal?.code == .sessionIDReused, "however it is spelled")
        reuse.sessionID = "S9"
        #expect(rig.open(reuse).refusal?.code == .cartridgeReused, "a new id, the old cartridge")
    }

    // MARK: - Latches and arming (H12, H13)

    @Test("H12: closing a faulted session does not clear the latch; the next session cannot arm or open until it is cleared")
    func h12ClosingAFaultedSessionKeepsTheLatch() {
        var rig = Rig()
        rig.runPastSpinUp()
        rig.send(.emergencyStop(.api))
        let closed = rig.send(.closeSession)
        #expect(closed.refusal == nil && closed.actions.contains(.sessionClosed(.technician)))
        #expect(rig.core.phase == .faulted && rig.core.faults == [.emergencyStop])
        var next = StateMachineTests.second
        next.clientID = "C9"
        #expect(rig.open(next).refusal?.code == .faultLatched)
        rig.idleFrame()
        #expect(rig.send(.clearFault).refusal == nil)
        #expect(rig.core.phase == .closed)
        #expect(rig.open(next).refusal == nil)
    }

    @Test("H12: clearing is refused while the most recent telemetry still shows the cause")
    func h12ClearRefusedWhileTheCausePersists() {
        var estop = Rig()
        estop.runPastSpinUp()
        var sample = estop.stroke()
        sample.estopPressed = true
        estop.send(.telemetry(sample))
        #expect(estop.send(.clearFault).refusal?.code == .faultPersists)
        var silent = Rig()
        silent.runPastSpinUp()
        silent.send(.linkLost)
        #expect(silent.send(.clearFault).refusal?.code == .faultPersists, "no frame from the pen since the link was lost")
        silent.advance(.milliseconds(10))
        silent.send(.telemetry(silent.stroke(depth: nil, rate: 0, motorOn: false, pedal: false)))
        #expect(silent.send(.clearFault).refusal == nil)
        var spinning = Rig()
        spinning.runPastSpinUp()
        spinning.send(.penFault(.overCurrent))
        spinning.advance(.milliseconds(300))
        spinning.send(.telemetry(spinning.stroke()))
        #expect(spinning.send(.clearFault).refusal?.message.contains("motor on") == true)
    }

    @Test("H12: arming asked in any state lists every failed check")
    func h12ArmingInAnyStateListsEveryFailure() {
        for phase in SessionPhase.allCases where phase != .open {
            var rig = Rig()
            rig.bring(to: phase)
            var facts = rig.goodFacts
            facts.pedalPressed = true
            facts.estopPressed = true
            let refusal = rig.send(.arm(facts)).refusal
            let codes = refusal?.armingFailures.map(\.code) ?? []
            #expect(refusal?.code == .armingChecksFailed, "\(phase)")
            #expect(codes.contains(.pedalPressed) && codes.contains(.estopPressed), "\(phase): \(codes)")
            #expect(codes.contains(phase == .faulted ? .faultLatched : .notOpen), "\(phase): \(codes)")
        }
    }

    // MARK: - Hostile numbers through every entry point

    static let hostileInt = Gen<Int>.oneOf(Gen.int(in: -5000...5000), Gen<Int>.pick([Int.min, Int.max, 0, -1, 1, Int.min + 1, Int.max - 1]))
    static let hostileDouble = Gen<Double>.oneOf(Gen.double(in: -500...500),
                                         Gen<Double>.pick([Double.nan, .infinity, -.infinity, 0, -0.0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]))
    static let hostileInt64 = Gen<Int64>.oneOf(Gen.int64(in: -10_000_000_000...10_000_000_000), Gen<Int64>.pick([Int64.min, Int64.max, 0, -1]))

    struct Hostile: Sendable, CustomStringConvertible {
        var kinds: [Int]
        var ints: [Int]
        var doubles: [Double]
        var times: [Int64]
        var description: String { "kinds \(kinds) ints \(ints) doubles \(doubles) times \(times)" }
    }

    static let hostileRuns = zip(Gen.int(in: 0...13).array(of: 1...60), hostileInt.array(of: 8...8),
                                 hostileDouble.array(of: 4...4), hostileInt64.array(of: 4...4))
        .map { Hostile(kinds: $0, ints: $1, doubles: $2, times: $3) }

    @Test("Hostile numbers in every numeric field never trap the core, and no decision lets the needle move outside the limits")
    func hostileNumbersNeverTrapTheCore() async {
        await propertyCheck(count: 400, input: Self.hostileRuns) { run in
            var rig = Rig()
            rig.runPastSpinUp()
            for (index, kind) in run.kinds.enumerated() {
                let i = run.ints[index % run.ints.count]
                let j = run.ints[(index + 3) % run.ints.count]
                let d = run.doubles[index % run.doubles.count]
                let t = run.times[index % run.times.count]
                // Time itself is hostile: any instant, forwards or backwards.
                if index % 4 == 3 { rig.now = MonotonicInstant(nanoseconds: t) } else { rig.advance(.milliseconds(5)) }
                let trip = rig.core.depthTripUm
                let event: SafetyEvent
                switch kind {
                case 0, 1, 2:
                    event = .telemetry(TelemetrySample(peakProtrusionUm: i % 5 == 0 ? nil : i, strokeRateHz: d, motorOn: j % 2 == 0,
                                                       pedalPressed: j % 3 != 0, estopPressed: j % 11 == 0, cartridgePresent: j % 13 != 0))
                case 3: event = .setSetpoint(Setpoint(layer: i % 2 == 0 ? .epidermis : .upperDermis, depthUm: i, rateHz: d))
                case 4:
                    var facts = rig.goodFacts
                    facts.today = i
                    facts.cartridge?.expiryDay = j
                    facts.cartridge?.needleCount = i
                    facts.cartridge?.needleDiameterUm = j
                    facts.hostProtocolMajor = i
                    facts.pen?.protocolMinor = j
                    event = .arm(facts)
                case 5: event = .tick(wall: WallTime(secondsSince1970: t))
                case 6:
                    var request = Rig.request
                    request.sessionID = "S\(i)"
                    request.cartridgeID = "C\(j)"
                    event = .openSession(request, wall: WallTime(secondsSince1970: t), bootID: "\(i)")
                case 7: event = .penFault(FaultCode(rawValue: UInt8(truncatingIfNeeded: i)))
                case 8: event = .clearFault
                case 9: event = .closeSession
                case 10: event = .pedal(pressed: i % 2 == 0)
                case 11: event = .penConnected(PenIdentity(serial: "PEN-\(i)", protocolMajor: i, protocolMinor: j, hasDepthSensor: j % 2 == 0))
                case 12: event = .disarm
                default: event = .emergencyStop(.daemon)
                }
                let decision = rig.send(event)
                if case .telemetry(let sample) = event {
                    let rate = sample.strokeRateHz
                    let outside = (sample.peakProtrusionUm.map { $0 > trip || $0 < 0 } ?? false)
                        || !rate.isFinite || rate < 0 || rate > AbsoluteLimits.runawayHz
                    if outside { #expect(decision.stopsNeedle && !rig.core.mayMove, "\(run)") }
                }
                if case .setSetpoint(let setpoint) = event, decision.refusal == nil, let zone = rig.core.session?.request.zone {
                    #expect(rig.core.limits.validateSetpoint(setpoint, in: zone).isEmpty, "an invalid setpoint was accepted: \(run)")
                }
                if decision.actions.contains(.armPen) {
                    #expect(run.ints.isEmpty == false)
                    if case .arm(let facts) = event {
                        #expect(facts.hostProtocolMajor == facts.pen?.protocolMajor && facts.cartridge?.needleCount == 3, "\(run)")
                    }
                }
                #expect(rig.core.faults.isEmpty == (rig.core.phase != .faulted))
                _ = rig.core.sessionRemaining(at: rig.now)
                _ = rig.core.snapshot
            }
            // Restoring what the hostile run left, at hostile times, never traps either.
            if let snapshot = rig.core.snapshot {
                for t in run.times {
                    _ = try? SafetyCore.restoring(snapshot, limits: .defaults, history: rig.core.history,
                                                 at: MonotonicInstant(nanoseconds: t), wall: WallTime(secondsSince1970: t), bootID: "\(t)")
                }
            }
        }
    }
}
