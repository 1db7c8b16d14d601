import StippleSafety
import StippleWire
import Testing

@Suite struct SessionClockTests {
    @Test("H4: warnings at 3:00 and 3:45, stop and close at 4:00")
    func h4WarningsAndCutoff() {
        var rig = Rig()
        rig.runPastSpinUp()
        var warnings: [Duration] = []
        var closedAt: Duration?
        var stopCameFirst = false
        while closedAt == nil, rig.now < MonotonicInstant(nanoseconds: 5 * 3600 * 1_000_000_000) {
            rig.advance(.seconds(1))
            let stroke = rig.send(.telemetry(rig.stroke()))
            let tick = rig.send(.tick(wall: rig.wall))
            for action in [stroke, tick].flatMap(\.actions) {
                if case .warn(.sessionTime(let elapsed, _)) = action { warnings.append(.seconds(elapsed.components.seconds)) }
                if case .sessionClosed(.timeLimit) = action {
                    closedAt = .seconds(rig.core.sessionElapsed(at: rig.now).components.seconds)
                    stopCameFirst = (stroke.actions.contains(action) ? stroke : tick).actions.first == .stopNeedle(nil)
                }
            }
        }
        #expect(warnings == [.seconds(3 * 3600), .seconds(3 * 3600 + 45 * 60)])
        #expect(closedAt == .seconds(4 * 3600))
        #expect(stopCameFirst)
        #expect(rig.core.phase == .closed && rig.core.closeReason == .timeLimit)
        #expect(rig.send(.arm(rig.goodFacts)).refusal?.armingFailures.first?.code == .notOpen, "the session is locked")
        #expect(rig.send(.setSetpoint(Rig.setpoint)).refusal?.code == .illegalTransition)
    }

    @Test("H4 (issue 15 item 17): a clock that keeps stepping back still reaches 4:00 at the real rate")
    func h4BackwardStepsNeverGiveTimeBack() {
        var clock = SessionClock(startedAt: MonotonicInstant(nanoseconds: 0), wall: WallTime(secondsSince1970: 0), bootID: "b")
        var reading = MonotonicInstant(nanoseconds: 0)
        var real = Duration.zero
        // Every minute of real time the clock also steps back by 30 s: session time must still be
        // the real time that passed.
        for _ in 0..<240 {
            reading = reading + .seconds(60)
            real += .seconds(60)
            clock.observe(reading)
            reading = reading + .seconds(-30)
            clock.observe(reading)
        }
        #expect(clock.elapsed(at: reading) == .seconds(4 * 3600))
        #expect(real == .seconds(4 * 3600))
        // A backward reading never takes anything away.
        #expect(clock.elapsed(at: reading + .seconds(-3600)) == .seconds(4 * 3600))
    }

    @Test("H4 (issue 15 item 17): the core closes at 4:00 of forward steps, whatever the clock does backwards")
    func h4CoreWithBackwardSteps() {
        var rig = Rig()
        rig.runPastSpinUp()
        let start = rig.core.sessionElapsed(at: rig.now)
        var closed = false
        var forward = start
        while !closed && forward < .seconds(5 * 3600) {
            rig.advance(.seconds(10))
            forward += .seconds(10)
            _ = rig.send(.tick(wall: rig.wall))
            rig.now = rig.now + .seconds(-7)  // the clock steps back after every reading
            let decision = rig.send(.tick(wall: rig.wall))
            closed = rig.core.closeReason == .timeLimit || decision.actions.contains(.sessionClosed(.timeLimit))
        }
        #expect(closed)
        #expect(forward <= .seconds(4 * 3600) + .seconds(10), "closed after \(forward.clockText) of real time")
    }

    @Test("H4 (issue 15 item 18): a closed session shows its final session time; a late cutoff records 4:00")
    func h4ClosedSessionTimeIsFinal() {
        var rig = Rig()
        rig.runPastSpinUp()
        rig.advance(.seconds(3600))
        rig.send(.closeSession)
        let final = rig.core.sessionElapsed(at: rig.now)
        rig.advance(.seconds(7200))
        #expect(rig.core.sessionElapsed(at: rig.now) == final, "the closed session's clock still counts")

        var late = Rig()
        late.runPastSpinUp()
        late.advance(.seconds(4 * 3600 + 19 * 60))  // nobody looked at 4:00 (the daemon was down)
        late.send(.tick(wall: late.wall))
        #expect(late.core.closeReason == .timeLimit)
        #expect(late.core.sessionElapsed(at: late.now) == .seconds(4 * 3600))
        #expect(late.core.snapshot?.session.clock.elapsedAtCheckpoint == .seconds(4 * 3600))
    }

    @Test("H4: the cutoff holds on any event, not only on ticks")
    func h4CutoffOnAnyEvent() {
        var rig = Rig()
        rig.runPastSpinUp()
        rig.advance(.seconds(4 * 3600))
        let decision = rig.send(.telemetry(rig.stroke()))
        #expect(decision.actions.first == .stopNeedle(nil))
        #expect(rig.core.phase == .closed)
    }

    @Test("H4: pauses count")
    func h4PausesCount() {
        var rig = Rig()
        rig.runPastSpinUp()
        rig.advance(.seconds(3600))
        rig.send(.telemetry(rig.stroke(depth: nil, rate: 0, motorOn: false, pedal: false)))
        #expect(rig.core.phase == .paused)
        let idle = rig.stroke(depth: nil, rate: 0, motorOn: false, pedal: false)
        rig.advance(.seconds(3 * 3600 - 1))
        rig.send(.telemetry(idle))
        rig.send(.tick(wall: rig.wall))
        #expect(rig.core.phase == .paused)
        rig.advance(.seconds(2))
        rig.send(.tick(wall: rig.wall))
        #expect(rig.core.phase == .closed)
    }

    @Test("H4: wall-clock jumps change nothing")
    func h4WallClockJumps() {
        var rig = Rig()
        rig.runPastSpinUp()
        for jump in [-400_000, 90 * 86_400, -30, 3600 * 10] {
            rig.advance(.seconds(600))
            rig.wall = WallTime(secondsSince1970: rig.wall.secondsSince1970 + Int64(jump))
            rig.send(.telemetry(rig.stroke()))
            rig.send(.tick(wall: rig.wall))
        }
        #expect(rig.core.sessionElapsed(at: rig.now) == .seconds(2400) + .microseconds(6_667 * 60))
        #expect(rig.core.phase == .running)
    }

    @Test("H4: time survives a daemon restart on the same boot, exactly")
    func h4RestartSameBoot() throws {
        var rig = Rig()
        rig.runPastSpinUp()
        rig.advance(.seconds(3 * 3600 + 50 * 60))
        rig.send(.telemetry(rig.stroke()))
        rig.send(.tick(wall: rig.wall))
        #expect(rig.core.phase == .running)
        let snapshot = try #require(rig.core.snapshot)
        // stippled is down for 5 minutes; the wall clock is set back a day meanwhile.
        let later = rig.now + .seconds(300)
        let wall = WallTime(secondsSince1970: rig.wall.secondsSince1970 - 86_400)
        var (core, _) = try SafetyCore.restoring(snapshot, limits: .defaults, history: rig.core.history, at: later, wall: wall, bootID: "boot-A")
        #expect(core.sessionElapsed(at: later) == .seconds(3 * 3600 + 55 * 60) + .microseconds(6_667 * 60))
        #expect(core.phase == .faulted, "it was running: it comes back latched, never armed")
        _ = core.handle(.telemetry(TelemetrySample(peakProtrusionUm: nil, strokeRateHz: 0, motorOn: false, pedalPressed: false)), at: later + .milliseconds(1))
        let cleared = core.handle(.clearFault, at: later + .milliseconds(1))
        #expect(cleared.refusal == nil, "\(String(describing: cleared.refusal))")
        #expect(core.phase == .open)
        _ = core.handle(.tick(wall: wall), at: later + .seconds(5 * 60))
        #expect(core.phase == .closed && core.closeReason == .timeLimit)
    }

    @Test("H4: across a reboot the downtime is counted from the wall clock, never negatively")
    func h4RestartAfterReboot() throws {
        var rig = Rig()
        rig.openWithSetpoint()
        rig.advance(.seconds(3600))
        rig.send(.tick(wall: rig.wall))
        rig.advance(.seconds(10))
        rig.send(.tick(wall: rig.wall))
        let snapshot = try #require(rig.core.snapshot)
        let elapsedAtSave = rig.core.sessionElapsed(at: rig.now)
        let fresh = MonotonicInstant(nanoseconds: 5_000_000_000)  // the new boot's monotonic clock is small
        let (forward, _) = try SafetyCore.restoring(snapshot, limits: .defaults, history: SafetyHistory(), at: fresh,
                                                    wall: rig.wall + .seconds(1800), bootID: "boot-B")
        #expect(forward.sessionElapsed(at: fresh) == elapsedAtSave + .seconds(1800))
        // The wall clock set back across a reboot: no bound on the downtime is left, so the
        // session is locked instead of continued with time given back.
        let (backward, decision) = try SafetyCore.restoring(snapshot, limits: .defaults, history: SafetyHistory(), at: fresh,
                                                            wall: WallTime(secondsSince1970: rig.wall.secondsSince1970 - 7200), bootID: "boot-B")
        #expect(backward.phase == .closed && backward.closeReason == .clockUntrusted)
        #expect(backward.sessionElapsed(at: fresh) >= elapsedAtSave)
        #expect(decision.actions.contains(.sessionClosed(.clockUntrusted)))
        #expect(decision.actions.contains { if case .warn(.sessionLocked) = $0 { true } else { false } })
    }

    @Test("H4: a restored session already past 4:00 closes at once")
    func h4RestoredPastTheLimit() throws {
        var rig = Rig()
        rig.openWithSetpoint()
        rig.advance(.seconds(3 * 3600))
        rig.send(.tick(wall: rig.wall))
        let snapshot = try #require(rig.core.snapshot)
        let (core, decision) = try SafetyCore.restoring(snapshot, limits: .defaults, history: SafetyHistory(),
                                                        at: .zero, wall: rig.wall + .seconds(2 * 3600), bootID: "boot-C")
        #expect(core.phase == .closed && core.closeReason == .timeLimit)
        #expect(decision.actions.contains(.sessionClosed(.timeLimit)))
    }

    static func history(lastActivity: WallTime, open: Bool = false) -> SafetyHistory {
        var history = SafetyHistory()
        history.recordSession(id: "S0", client: "C1", lastActivity: lastActivity, isOpen: open)
        return history
    }

    @Test("H4: a new session for the same client inside the gap is refused unless an override reason is given")
    func h4GapRule() {
        let lastEnd = WallTime(secondsSince1970: 1_790_000_000)
        var rig = Rig(history: Self.history(lastActivity: lastEnd))
        rig.advance(.seconds(2 * 86_400))
        var request = Rig.request
        let refusal = rig.open(request).refusal
        #expect(refusal?.code == .sessionGap)
        #expect(refusal?.message.contains("2.0 days ago") == true && refusal?.message.contains("5 days") == true)
        request.gapOverrideReason = "   "
        #expect(rig.open(request).refusal?.code == .sessionGap, "a blank reason is no reason")
        request.gapOverrideReason = "touch-up of a scar area, approved by the supervising doctor"
        #expect(rig.open(request).refusal == nil)
        #expect(rig.core.session?.request.gapOverrideReason == request.gapOverrideReason, "the reason is kept for the record")
    }

    @Test func theGapRuleCountsFullDaysAndDistrustsABackwardClock() {
        let now = WallTime(secondsSince1970: 1_790_000_000)
        var rig = Rig(history: Self.history(lastActivity: now + .seconds(-5 * 86_400)))
        #expect(rig.open().refusal == nil, "exactly five days is enough")
        var back = Rig(history: Self.history(lastActivity: now + .seconds(3600)))
        #expect(back.open().refusal?.message.contains("wall clock moved back") == true)
        var busy = Rig(history: Self.history(lastActivity: now + .seconds(-30 * 86_400), open: true))
        #expect(busy.open().refusal?.code == .sessionAlreadyOpen)
    }

    @Test func theClockIsPersistedRegularly() {
        var rig = Rig()
        let opened = rig.openWithSetpoint()
        #expect(rig.log[0].actions.contains { if case .persist = $0 { true } else { false } } || opened.actions.contains { if case .persist = $0 { true } else { false } })
        var persisted = 0
        for _ in 0..<60 {
            rig.advance(.seconds(1))
            persisted += rig.send(.tick(wall: rig.wall)).actions.filter { if case .persist = $0 { true } else { false } }.count
        }
        #expect(persisted == 6)
    }
}
