import PropertyBased
import StippleAPI
import StippleSafety
import StippleSupervision
import StippleWire
import Testing

/// The races of issue 17, on the pure core: arm against stop, e-stop, disarm, clear-fault, a lost
/// presence, a pen fault, a record failing — at every step of an arm in flight, in every order,
/// with no thread and no sleep. `CoreDriver` checks the core's promises after every input: stops
/// first, recorded before the needle may do more, answered only once durable, no motion without
/// a lease, a latch never lost, every command answered once.
@Suite struct SupervisorCoreRaceTests {
    /// The inputs that race an arm (and each other).
    enum Race: CaseIterable, Sendable {
        case stop, estop, disarm, clearFault, presenceLost, presenceSilent, penFault, recordFails, armByBob, linkLost, penReset

        func apply(to driver: inout CoreDriver) {
            switch self {
            case .stop: driver.command(.stop(.stop, actor: "ana"), "stop")
            case .estop: driver.command(.stop(.estop, actor: "ana"), "estop")
            case .disarm: driver.command(.stop(.disarm, actor: "ana"), "disarm")
            case .clearFault: driver.command(.clearFault(actor: "ana", recordsUnwritable: nil), "clear-fault")
            case .presenceLost: driver.closeStream(CoreDriver.alice)
            case .presenceSilent: driver.pass(.milliseconds(1_500), ping: false)
            case .penFault: driver.penFaults()
            case .recordFails: driver.deliverRecord(succeeds: false)
            case .armByBob: _ = driver.arm(CoreDriver.bob)
            case .linkLost: driver.loseLink()
            case .penReset: driver.penResets()
            }
        }
    }

    /// How far an arm has got when the race comes: its records asked for, durable, the pen's
    /// ARM out, the pen's answers in, the armed record asked for.
    static let armSteps = 0...4

    static func advanceArm(_ driver: inout CoreDriver, by steps: Int) {
        for step in 0..<steps {
            switch step {
            case 0, 3: driver.deliverAllRecords()
            case 1, 2: driver.penAnswers()
            default: break
            }
        }
    }

    @Test("every ordered pair of racing inputs, at every step of an arm in flight, ends safe, and every command is answered once")
    func everyPairAtEveryStep() throws {
        var runs = 0
        for step in Self.armSteps {
            for first in Race.allCases {
                for second in Race.allCases {
                    var driver = try CoreDriver.armable()
                    let arm = driver.arm(CoreDriver.alice)
                    Self.advanceArm(&driver, by: step)
                    first.apply(to: &driver)
                    second.apply(to: &driver)
                    driver.drain()
                    #expect(driver.violations.isEmpty, "arm step \(step), \(first) then \(second): \(driver.violations)")
                    // Whatever came, the arm's answer is the truth about the pen.
                    if driver.succeeded(arm) && driver.core.safety.isArmedPhase && driver.core.safety.armedBy == driver.streams["console-a"] {
                        #expect(driver.penArmed, "arm step \(step), \(first) then \(second): armed, answered, and the pen is not")
                    }
                    runs += 1
                }
            }
        }
        #expect(runs == Self.armSteps.count * Race.allCases.count * Race.allCases.count)
    }

    /// Random interleavings of longer runs: arms by either console, the racing inputs, the
    /// pen's answers, record outcomes and time, in any order.
    static let interleavings = Gen.int(in: 0...(8 + Race.allCases.count)).array(of: 1...30)

    @Test("random interleavings of arms, stops, faults, presence and record outcomes keep every promise")
    func randomInterleavings() async {
        await propertyCheck(count: 200, input: Self.interleavings) { steps in
            var driver = try CoreDriver.armable()
            for step in steps {
                switch step {
                case 0, 1: _ = driver.arm(CoreDriver.alice)
                case 2: _ = driver.arm(CoreDriver.bob)
                case 3: driver.penAnswers()
                case 4: driver.deliverRecord(succeeds: true)
                case 5: driver.pass(.milliseconds(50))
                case 6: driver.pedal.toggle()
                case 7: driver.openStream(CoreDriver.alice)
                case 8: driver.penRefusesNext = true
                default: Race.allCases[step - 9].apply(to: &driver)
                }
            }
            driver.drain()
            #expect(driver.violations.isEmpty, "\(steps): \(driver.violations)")
        }
    }

    // MARK: - The races by name (each provably hit: the test sees the state it races)

    @Test("a stop while the arm's records are written: the pen never gets ARM, the arm answers state_changed")
    func stopWhileRecording() throws {
        var driver = try CoreDriver.armable()
        let arm = driver.arm(CoreDriver.alice)
        #expect(driver.core.safety.phase == .armed && !driver.outstanding.isEmpty)  // the race's window
        let stop = driver.command(.stop(.stop, actor: "ana"), "stop")
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.code(arm) == .stateChanged)
        #expect(driver.answers[stop]?.first.map { if case .success(.stopped(nil)) = $0 { true } else { false } } == true)
        #expect(!driver.penArmed)
    }

    @Test("disarmed and armed again by another console while the pen answers: the first arm is not acknowledged, the lease is the second's")
    func rearmedByAnotherConsole() throws {
        var driver = try CoreDriver.armable()
        let first = driver.arm(CoreDriver.alice)
        driver.deliverAllRecords()
        #expect(driver.penArmed && driver.owedAcks.count == 2)  // ARM out, answers owed
        driver.command(.stop(.disarm, actor: "ana"), "disarm")
        driver.deliverAllRecords()
        let second = driver.arm(CoreDriver.bob)
        #expect(driver.core.safety.phase == .armed && driver.core.safety.armedBy == driver.streams["console-b"])
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.code(first) == .stateChanged)
        #expect(driver.succeeded(second))
        #expect(driver.core.presence.lease == driver.streams["console-b"] && driver.penArmed)
    }

    @Test("the arm's record fails: not armed, the pen never gets ARM, records_unavailable")
    func armRecordFails() throws {
        var driver = try CoreDriver.armable()
        let arm = driver.arm(CoreDriver.alice)
        driver.deliverRecord(succeeds: false)
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.code(arm) == .recordsUnavailable)
        #expect(!driver.penArmed && !driver.core.safety.isArmedPhase)
    }

    @Test("the armed record fails after the pen armed: the arm is undone, the pen disarmed")
    func armedRecordFails() throws {
        var driver = try CoreDriver.armable()
        let arm = driver.armThroughThePen(CoreDriver.alice)
        #expect(driver.penArmed && !driver.outstanding.isEmpty)  // armed on the pen, its record in flight
        driver.deliverRecord(succeeds: false)
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.code(arm) == .recordsUnavailable)
        #expect(!driver.penArmed && !driver.core.safety.isArmedPhase)
    }

    @Test("a stop whose record fails stops all the same and answers stopped_unrecorded")
    func stopUnrecorded() throws {
        var driver = try CoreDriver.armable()
        driver.armThroughThePen(CoreDriver.alice)
        driver.deliverAllRecords()
        #expect(driver.penArmed && driver.motorEnabled)
        let stop = driver.command(.stop(.stop, actor: "ana"), "stop")
        #expect(!driver.penArmed)  // stopped before any record
        while !driver.outstanding.isEmpty { driver.deliverRecord(succeeds: false) }
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        guard case .success(.stopped(let unrecorded))? = driver.answers[stop]?.first else {
            Issue.record("the stop answered \(String(describing: driver.answers[stop]))")
            return
        }
        #expect(unrecorded?.code == ProblemCode.stoppedUnrecorded.rawValue)
    }

    @Test("presence lost while arming: the needle never moves, operator_lost latches, the arm answers state_changed")
    func presenceLostWhileArming() throws {
        var driver = try CoreDriver.armable()
        let arm = driver.arm(CoreDriver.alice)
        driver.closeStream(CoreDriver.alice)
        #expect(driver.core.safety.faults.contains(.clientLost))
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.code(arm) == .stateChanged)
        #expect(!driver.penArmed && driver.core.safety.phase == .faulted)
    }

    @Test("a new fault while a clear is in flight stays latched: the clear answers fault_persists")
    func newFaultDuringClear() throws {
        var driver = try CoreDriver.armable()
        driver.command(.stop(.estop, actor: "ana"), "estop")
        driver.drain()
        #expect(driver.core.safety.phase == .faulted)
        let clear = driver.command(.clearFault(actor: "ana", recordsUnwritable: nil), "clear-fault")
        driver.penAnswers()  // the pen cleared its latch: the core now waits for a fresh frame
        driver.penFaults(.overTemperature)
        driver.penFault = false  // and the pen's next frame shows no latch: only the event says so
        driver.pass(.milliseconds(20))
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.code(clear) == .faultPersists)
        #expect(driver.core.safety.phase == .faulted)
    }

    @Test("a clear with no new fault clears, and never re-arms")
    func clearClears() throws {
        var driver = try CoreDriver.armable()
        driver.command(.stop(.estop, actor: "ana"), "estop")
        driver.drain()
        let clear = driver.command(.clearFault(actor: "ana", recordsUnwritable: nil), "clear-fault")
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.succeeded(clear))
        #expect(driver.core.safety.phase == .open && !driver.penArmed)
    }

    // MARK: - Found by review

    @Test("an e-stop while a limits change is recorded stays latched: only the limits change")
    func limitsChangeKeepsALatch() throws {
        var driver = try CoreDriver()
        var tighter = SafetyLimits.defaults
        tighter.depthToleranceUm = 40
        let change = driver.command(.changeLimits(tighter, actor: "eng"), "limits")
        #expect(driver.core.limitsChanging)  // the race's window: the limits record in flight
        driver.command(.stop(.estop, actor: "ana"), "estop")
        #expect(driver.core.safety.phase == .faulted)
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.succeeded(change) && driver.core.safety.limits.depthToleranceUm == 40)
        #expect(driver.core.safety.phase == .faulted && !driver.core.safety.faults.isEmpty)
    }

    @Test("disarmed while the pen answers, then armed again at once: the new arm gets its own ACKs and succeeds")
    func rearmAfterAbandonedArm() throws {
        var driver = try CoreDriver.armable()
        let first = driver.arm(CoreDriver.alice)
        driver.deliverAllRecords()
        #expect(driver.owedAcks.count == 2)  // ARM and MOTOR_RUN out, answers owed
        driver.command(.stop(.disarm, actor: "ana"), "disarm")
        #expect(driver.code(first) == .stateChanged)  // answered at once, its waits dropped
        driver.owedAcks.removeAll()  // the link abandoned them: their answers never come
        driver.deliverAllRecords()
        let second = driver.arm(CoreDriver.alice)
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.succeeded(second), "\(String(describing: driver.answers[second]))")
        #expect(driver.penArmed && driver.core.safety.isArmedPhase)
    }

    @Test("a pen that reports itself armed while faulted is disarmed, and the DISARM is flushed as a stop")
    func disarmAloneIsAStop() throws {
        var driver = try CoreDriver.armable()
        driver.command(.stop(.estop, actor: "ana"), "estop")
        driver.drain()
        driver.penArmed = true  // a pen that did not obey
        driver.session = driver.session + .milliseconds(5)
        var flags: PenFlags = [.cartridgePresent, .armed]
        flags.insert(.faultLatched)
        let effects = driver.core.penEvent(.telemetry(.init(penTimeUs: 0, strokeCount: 999, peakProtrusionUm: 0xFFFF, strokeRateDhz: 0,
                                                          motorCurrentMa: 0, temperatureDc: 300, flags: flags)), at: driver.now)
        let disarm = effects.firstIndex { if case .send(.disarm) = $0 { true } else { false } }
        let flush = effects.firstIndex { if case .flush(stops: true) = $0 { true } else { false } }
        #expect(disarm != nil && flush != nil && disarm! < flush!, "\(effects)")
    }

    @Test("a stop while the armed record is written: the arm is not acknowledged")
    func stopWhileRecordingArmed() throws {
        var driver = try CoreDriver.armable()
        let arm = driver.armThroughThePen(CoreDriver.alice)
        #expect(driver.penArmed && !driver.outstanding.isEmpty)  // the armed record in flight
        driver.command(.stop(.stop, actor: "ana"), "stop")
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.code(arm) == .stateChanged)
        #expect(!driver.penArmed)
    }

    @Test("an e-stop while a clear is in flight: the clear gives way, the latch stays")
    func estopDuringClear() throws {
        var driver = try CoreDriver.armable()
        driver.command(.stop(.estop, actor: "ana"), "estop")
        driver.drain()
        let clear = driver.command(.clearFault(actor: "ana", recordsUnwritable: nil), "clear-fault")
        driver.penAnswers()  // the pen cleared; the core waits for a fresh frame
        driver.command(.stop(.estop, actor: "ana"), "estop again")
        driver.drain()
        #expect(driver.violations.isEmpty, "\(driver.violations)")
        #expect(driver.code(clear) == .faultPersists)
        #expect(driver.core.safety.phase == .faulted)
    }

    @Test("the pen clears its latch but sends no frame within the wait: the latch stays, fault_persists")
    func clearWithoutFreshFrame() throws {
        var driver = try CoreDriver.armable()
        driver.command(.stop(.estop, actor: "ana"), "estop")
        driver.drain()
        let clear = driver.command(.clearFault(actor: "ana", recordsUnwritable: nil), "clear-fault")
        driver.penAnswers()  // CLEAR_FAULT acknowledged; then silence
        #expect(driver.code(clear) == nil)  // still waiting for a frame
        driver.real = driver.real + .milliseconds(400)
        driver.carry(driver.core.realTimePassed(at: driver.now), "the wait ran out")
        #expect(driver.code(clear) == .faultPersists)
        #expect(driver.core.safety.phase == .faulted)
        #expect(driver.violations.isEmpty, "\(driver.violations)")
    }
}
