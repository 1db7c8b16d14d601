import PropertyBased
import StippleSafety
import StippleWire
import Testing

/// Long random sequences of events and times against the invariants of docs/safety.md.
@Suite struct PropertyTests {
    /// One random step: what happens, two parameters, and how much time passes first.
    struct Step: Sendable, CustomStringConvertible {
        var kind: Int
        var a: Int
        var b: Int
        var dt: Int
        var description: String { "(\(kind),\(a),\(b),\(dt))" }
    }

    static let steps = zip(Gen.int(in: 0...19), Gen.int(in: 0...999), Gen.int(in: 0...999), Gen.int(in: 0...999))
        .map { Step(kind: $0, a: $1, b: $2, dt: $3) }
        .array(of: 1...300)

    /// Time that passes before a step: mostly a stroke, sometimes seconds, now and then half an hour.
    static func delay(_ dt: Int) -> Duration {
        switch dt {
        case 0..<700: .microseconds(Int64(dt) * 20)
        case 700..<950: .milliseconds(Int64(dt - 690) * 10)
        default: .seconds(Int64(dt - 949) * 40)
        }
    }

    /// Arming facts that are good, or broken in one or two ways the oracle knows.
    static func facts(_ rig: Rig, _ a: Int, _ b: Int) -> ArmingFacts {
        var facts = rig.goodFacts
        facts.cartridge?.id = rig.core.session?.cartridgeID ?? "CART-1"
        for selector in [a % 20, b % 20] {
            switch selector {
            case 1: facts.pen?.serial = "OTHER"
            case 2: facts.readBackLimitsCRC = 1
            case 11: facts.readBackLimitsCRC = SafetyLimits.defaults.penLimits(layer: .epidermis, zone: .scar).checksum
            case 3: facts.cartridge?.needleCount = 1
            case 4: facts.cartridge?.expiryDay = facts.today - 1
            case 5: facts.pedalPressed = true
            case 6: facts.estopPressed = true
            case 7: facts.penFaultLatched = true
            case 8: facts.connectionAlive = false
            case 9: facts.pen = nil
            case 10: facts.cartridge = nil
            default: break
            }
        }
        return facts
    }

    /// An oracle for "every arming check passed", written independently of the core. `pushed`
    /// is what the test saw the core push on the current link (from its decisions).
    static func oracleAllows(_ facts: ArmingFacts, _ core: SafetyCore, pushed: PenLimits?, at now: MonotonicInstant) -> Bool {
        guard let session = core.session, let pen = facts.pen, let cartridge = facts.cartridge,
              let setpoint = session.setpoint, let pushed else { return false }
        return pen.serial == session.request.penSerial && pen.protocolMajor == facts.hostProtocolMajor
            && pushed == SafetyLimits.defaults.penLimits(layer: setpoint.layer, zone: session.request.zone)
            && facts.readBackLimitsCRC == pushed.checksum
            && cartridge.needleCount == 3 && (180...300).contains(cartridge.needleDiameterUm)
            && (cartridge.expiryDay ?? Int.min) >= facts.today && cartridge.id == session.cartridgeID
            && core.history.earlierUse(of: cartridge.id, otherThan: session.request.sessionID) == nil
            && !facts.pedalPressed && !facts.estopPressed && !facts.penFaultLatched && core.faults.isEmpty
            && facts.connection != nil && facts.connectionAlive && session.setpoint != nil
            && core.sessionElapsed(at: now) < core.limits.sessionLength
    }

    /// Mostly what a real session sends (so sequences get far), with hostile events mixed in.
    static func event(for step: Step, rig: Rig) -> SafetyEvent {
        let depthLimit = SafetyLimits.defaults.depthLimitUm(.crown)
        let phase = rig.core.phase
        switch step.kind {
        case 0:
            var request = Rig.request
            request.sessionID = "S\(step.a)"
            request.cartridgeID = "CART-\(step.b % 3)"
            return .openSession(request, wall: rig.wall, bootID: "boot")
        case 1, 2:
            // Mostly valid setpoints, now and then one outside the band or the rate window.
            let upper = step.a % 3 != 0
            let depth = step.b < 900 ? (upper ? 400 + step.b * 2 / 3 : 200 + step.b / 5) : step.b * 2
            return .setSetpoint(Setpoint(layer: upper ? .upperDermis : .epidermis, depthUm: depth, rateHz: Double(45 + step.a % 110)))
        case 3, 4: return .arm(facts(rig, step.a, step.b))
        case 5: return .pedal(pressed: step.a % 2 == 0)
        case 6...10:
            if step.a % 10 < 8 {
                // A plausible frame: the motor runs when the pen would run it.
                let pedal = step.b % 12 != 0
                let motor = pedal && (phase == .running || phase == .armed || phase == .paused)
                return .telemetry(TelemetrySample(
                    peakProtrusionUm: motor ? 600 + step.b % 300 : nil, strokeRateHz: motor ? Double(100 + step.a % 40) : 0,
                    motorOn: motor, pedalPressed: pedal))
            }
            let depth = step.a % 10 == 8 ? depthLimit + step.b % 300 : 300 + step.b
            return .telemetry(TelemetrySample(
                peakProtrusionUm: step.b % 17 == 0 ? nil : depth, strokeRateHz: Double(step.a % 200),
                motorOn: step.b % 5 != 0, pedalPressed: step.a % 7 != 0,
                estopPressed: step.b == 999, cartridgePresent: step.a != 998))
        case 11, 12: return .tick(wall: rig.wall)
        case 13: return .disarm
        case 14: return step.a % 4 == 0 ? .closeSession : .tick(wall: rig.wall)
        case 15: return step.a % 3 == 0 ? .emergencyStop(step.a % 2 == 0 ? .api : .penButton) : .tick(wall: rig.wall)
        case 16:
            if step.a % 3 != 0 { return .tick(wall: rig.wall) }
            return [SafetyEvent.linkLost, .penReset, .cartridgeRemoved, .clientDisconnected(rig.connection),
                    .penFault(FaultCode(rawValue: UInt8(step.b % 12))),
                    .penConnected(PenIdentity(serial: "PEN-1", protocolMajor: 1, protocolMinor: 0))][step.b % 6]
        case 17, 18: return .clearFault
        default: return .changeCartridge("CART-\(step.a % 3)")
        }
    }

    @Test func invariantsHoldOverRandomSequences() async {
        var visited: [SessionPhase: Int] = [:]
        // Random sequences reach `paused` (armed, running, then a pedal release with the
        // strokes stopping) only now and then: more rounds until every state is reached, so the
        // coverage check below never fails on an unlucky draw.
        for _ in 0..<6 where SessionPhase.allCases.contains(where: { visited[$0, default: 0] == 0 }) {
            await propertyCheck(count: 300, input: Self.steps) { steps in
                var rig = Rig()
                var pushed: PenLimits?
                for step in steps {
                    rig.advance(Self.delay(step.dt))
                    let event = Self.event(for: step, rig: rig)
                    let wasRunning = rig.core.phase
                    let trip = rig.core.depthTripUm
                    let zoneLimit = rig.core.session.map { rig.core.limits.depthLimitUm($0.request.zone) } ?? AbsoluteLimits.zoneCeilingUm
                    #expect(trip <= zoneLimit, "the active trip never exceeds the zone limit")
                    let allowed: Bool? = if case .arm(let facts) = event { Self.oracleAllows(facts, rig.core, pushed: pushed, at: rig.now) } else { nil }
                    switch event {
                    case .linkLost, .penReset, .penFault(.reset), .penConnected: pushed = nil
                    default: break
                    }
                    let decision = rig.send(event)
                    for case .pushLimits(let limits) in decision.actions { pushed = limits }
                    let core = rig.core
                    visited[core.phase, default: 0] += 1

                    // Never running unless every arming check passed at the moment of arming.
                    if let allowed, core.phase == .armed, wasRunning != .armed {
                        #expect(allowed, "armed although a check failed: \(event) after \(steps)")
                    }
                    // Never running after the session length.
                    if core.phase == .running {
                        #expect(core.sessionElapsed(at: rig.now) < core.limits.sessionLength, "running after 4:00: \(steps)")
                    }
                    // Never running (or armed) with a latched fault; faults exist only while faulted.
                    #expect(core.faults.isEmpty == (core.phase != .faulted), "\(core.phase) with faults \(core.faults): \(steps)")
                    // Every over-limit frame is answered by a stop in the same step: deeper than the
                    // active band allows, faster than runaway, or a number that cannot be true.
                    if case .telemetry(let sample) = event {
                        let rate = sample.strokeRateHz
                        if let peak = sample.peakProtrusionUm, peak > trip || peak < 0 {
                            #expect(decision.stopsNeedle, "over-limit frame without a stop: \(steps)")
                        }
                        if !rate.isFinite || rate < 0 || rate > AbsoluteLimits.runawayHz {
                            #expect(decision.stopsNeedle, "runaway or impossible rate without a stop: \(steps)")
                        }
                    }
                    // A latched fault always comes with a stop, first.
                    if !decision.faultsLatched.isEmpty {
                        #expect(decision.firstActionIsStop || decision.actions.first.map { if case .warn = $0 { true } else { false } } == true,
                                "fault without a leading stop: \(decision.actions)")
                        #expect(decision.stopsNeedle)
                    }
                    // A refusal never moves the needle.
                    if decision.refusal != nil { #expect(!decision.actions.contains(.armPen)) }
                }
            }
        }
        // The sequences must actually reach every state, or the invariants prove little.
        for phase in SessionPhase.allCases {
            #expect(visited[phase, default: 0] > 0, "no sequence reached \(phase): \(visited)")
        }
        print("state visits over random sequences: \(visited.sorted { $0.value > $1.value }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: " "))")
    }

    @Test func aFourHourSessionAt150HzOnAVirtualClock() {
        var rig = Rig()
        rig.run()
        let stroke = Duration.nanoseconds(6_666_667)  // 150 Hz
        var frames = 0
        var lastTick = rig.now
        var warnings = 0
        var closed = false
        while !closed {
            rig.now = rig.now + stroke
            let decision = rig.core.handle(.telemetry(rig.stroke(depth: 790 + frames % 20, rate: 150)), at: rig.now)
            frames += 1
            if rig.now - lastTick >= .milliseconds(50) {
                lastTick = rig.now
                rig.wall = WallTime(secondsSince1970: 1_790_000_000 + rig.now.nanoseconds / 1_000_000_000)
                _ = rig.core.handle(.tick(wall: rig.wall), at: rig.now)
            }
            for action in decision.actions {
                if case .warn = action { warnings += 1 }
                if case .sessionClosed(.timeLimit) = action { closed = true }
                if case .faultLatched(let reason, let detail) = action { Issue.record("unexpected fault \(reason): \(detail)") }
            }
            if frames > 2_200_000 { break }
        }
        #expect(closed)
        #expect(warnings == 2)
        #expect(frames == 2_160_000, "four hours of strokes at 150 Hz")
        #expect(rig.core.phase == .closed && !rig.core.mayMove)
    }
}
