import StippleAPI
import StippleLink
import StippleSafety
import StippleSupervision
import StippleWire
import Testing

/// The test as `SupervisorCore`'s shell: it reads no clock (two virtual ones, the session's and
/// the real one), owns a model pen that obeys the frames the instant they are written, holds the
/// records' outcomes until the test delivers them, and checks the core's promises after every
/// input. No thread, no task, no sleep: every interleaving is one the test chose.
struct CoreDriver {
    struct SetupFailed: Error, CustomStringConvertible {
        var description: String
    }

    typealias Effect = SupervisorCore.Effect
    typealias CommandID = SupervisorCore.CommandID
    typealias RecordID = SupervisorCore.RecordID

    var core: SupervisorCore
    var session = MonotonicInstant.zero
    var real = MonotonicInstant.zero
    var wall = WallTime(secondsSince1970: 1_790_000_000)

    // The model pen: each frame takes effect the moment it is written.
    var penArmed = false
    var motorEnabled = false
    var pedal = false
    var penFault = false
    /// The next ARM or MOTOR_RUN the pen refuses (a cartridge it rejects, say).
    var penRefusesNext = false
    /// Answers the pen owes, oldest first: delivered by `penAnswers`.
    var owedAcks: [(Message, AckStatus)] = []
    var strokes: UInt32 = 0

    // The records: appended in order, their outcomes delivered in order by the test.
    var outstanding: [(RecordID, RecordRequest)] = []
    var outcomes: [RecordID: Bool] = [:]

    // Commands: what each asked for, the records its own call made, its answers.
    var nextCommand: UInt64 = 1
    var kinds: [CommandID: String] = [:]
    var recordsOf: [CommandID: [RecordID]] = [:]
    var answers: [CommandID: [Result<SupervisorCore.Answer, CommandError>]] = [:]

    /// Every broken promise, with the input that broke it.
    var violations: [String] = []
    var inputs: [String] = []

    static let alice = PresenceTable.Holder(uid: 1000, pid: 41, client: "console-a")
    static let bob = PresenceTable.Holder(uid: 1001, pid: 42, client: "console-b")
    var streams: [String: ConnectionID] = [:]

    static let request = SessionRequest(sessionID: "S1", clientID: "C1", technician: "Ana", zone: .crown, cartridgeID: "CART-1",
                                        pigmentLots: ["PIG-LOT-9"], penSerial: "PEN-1")
    static let setpoint = Setpoint(layer: .upperDermis, depthUm: 800, rateHz: 120)
    static let helloReply = Message.HelloReply(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor, fwMajor: 1, fwMinor: 0,
                                               fwPatch: 0, capabilities: [.cartridgeReader, .depthSensor], serial: "PEN-1",
                                               limitsCRC: 0, depthCeilingUm: 1500)

    var now: SupervisorCore.Now { .init(reading: session, real: real, wall: wall) }

    var cartridgeReport: Message.Cartridge {
        .init(event: .inserted, needleCount: 3, needleDiameterUm: 250, expiryDays: UInt16(wall.day + 100), cartridgeID: "CART-1", lot: "L1")
    }

    init() throws {
        core = try SupervisorCore(settings: .init(limits: .defaults), history: SafetyHistory(), restore: nil, recordsOpen: true,
                                  recordsProblems: [], recordsInconsistencies: [], bootID: "boot-A",
                                  at: .init(reading: .zero, real: .zero, wall: WallTime(secondsSince1970: 1_790_000_000)))
        carry(core.start(recordsUnwritable: nil, at: now), "start")
    }

    /// A core with a session open, its setpoint set and pushed, the pen identified with a good
    /// cartridge, and both consoles' event streams open: one `arm` away from armed.
    static func armable() throws -> CoreDriver {
        var driver = try CoreDriver()
        driver.carry(driver.core.linkOpened(at: driver.now), "link opened")
        driver.pen(.cartridge(driver.cartridgeReport))
        driver.deliverAllRecords()
        let open = driver.command(.openSession(request, actor: "ana"), "open")
        driver.deliverAllRecords()
        let setpoint = driver.command(.setSetpoint(setpoint, actor: "ana"), "setpoint")
        driver.deliverAllRecords()
        driver.telemetry()
        driver.openStream(alice)
        driver.openStream(bob)
        guard driver.succeeded(open) && driver.succeeded(setpoint), driver.core.safety.phase == .open,
              driver.core.pen.readBackLimitsCRC != nil, driver.violations.isEmpty else {
            throw SetupFailed(description: "\(driver.core.safety.phase), answers \(driver.answers), \(driver.violations)")
        }
        return driver
    }

    // MARK: - Inputs

    mutating func pen(_ event: HostLink.Event) {
        carry(core.penEvent(event, at: now), "pen \(event)")
    }

    @discardableResult
    mutating func command(_ command: SupervisorCore.Command, _ kind: String) -> CommandID {
        let id = CommandID(nextCommand)
        nextCommand += 1
        kinds[id] = kind
        carry(core.command(id, command, at: now), kind, from: id)
        return id
    }

    @discardableResult
    mutating func arm(_ holder: PresenceTable.Holder) -> CommandID {
        command(.arm(holder, actor: holder.client, recordsUnwritable: nil), "arm \(holder.client)")
    }

    /// Arms as far as the pen: the arm's records durable, ARM and MOTOR_RUN answered; the armed
    /// record is then in flight.
    @discardableResult
    mutating func armThroughThePen(_ holder: PresenceTable.Holder) -> CommandID {
        let id = arm(holder)
        deliverAllRecords()
        penAnswers()
        penAnswers()
        return id
    }

    mutating func openStream(_ holder: PresenceTable.Holder) {
        streams[holder.client] = core.presenceOpened(holder, at: now)
    }

    mutating func closeStream(_ holder: PresenceTable.Holder) {
        guard let id = streams.removeValue(forKey: holder.client) else { return }
        carry(core.presenceClosed(id, at: now), "stream of \(holder.client) closed")
    }

    /// A telemetry frame of the model pen: the needle strokes only when armed, enabled and the
    /// pedal is down.
    mutating func telemetry() {
        strokes += 1
        let moving = penArmed && motorEnabled && pedal
        var flags: PenFlags = [.cartridgePresent]
        if penArmed { flags.insert(.armed) }
        if moving { flags.insert(.motorOn) }
        if pedal { flags.insert(.pedalPressed) }
        if penFault { flags.insert(.faultLatched) }
        pen(.telemetry(.init(penTimeUs: UInt32(truncatingIfNeeded: session.nanoseconds / 1000), strokeCount: strokes,
                             peakProtrusionUm: moving ? UInt16(800 + strokes % 7) : 0xFFFF, strokeRateDhz: moving ? 1200 : 0,
                             motorCurrentMa: moving ? 300 : 0, temperatureDc: 300, flags: flags)))
    }

    /// Time passes on both clocks; a frame comes and the core's timer runs.
    mutating func pass(_ duration: Duration, ping: Bool = true) {
        session = session + duration
        real = real + duration
        if ping { for holder in [Self.alice, Self.bob] where streams[holder.client] != nil { _ = core.ping(holder, at: now) } }
        telemetry()
        carry(core.tick(at: now), "tick +\(duration)")
    }

    /// The pen latches a fault of its own and says so.
    mutating func penFaults(_ code: FaultCode = .overDepth) {
        penFault = true
        penArmed = false
        motorEnabled = false
        pen(.fault(.init(code: code, detail: 0, value: 0, penTimeUs: 0)))
    }

    /// The cable is pulled, and plugged back in: a new link, whose HELLO the pen answers.
    mutating func loseLink() {
        owedAcks.removeAll()
        carry(core.linkLost(reason: "unplugged", at: now), "link lost")
        carry(core.linkOpened(at: now), "link opened again")
    }

    /// The pen resets: it forgets its arm, its latch and its limits, and says so.
    mutating func penResets() {
        penArmed = false
        motorEnabled = false
        penFault = false
        owedAcks.removeAll()
        pen(.fault(.init(code: .reset, detail: 0, value: 0, penTimeUs: 0)))
    }

    /// The pen answers the oldest frame it owes an answer to.
    mutating func penAnswers() {
        guard !owedAcks.isEmpty else { return }
        let (message, status) = owedAcks.removeFirst()
        pen(.acknowledged(message, status: status, detail: 0))
    }

    /// The next record's outcome.
    mutating func deliverRecord(succeeds: Bool) {
        guard !outstanding.isEmpty else { return }
        let (id, request) = outstanding.removeFirst()
        outcomes[id] = succeeds
        carry(core.recorded(id, succeeds ? .success(()) : .failure(RecordFailure("disk full")), at: now),
              "record \(id.value) \(request.what) \(succeeds ? "durable" : "failed")")
    }

    mutating func deliverAllRecords() {
        var guardCount = 0
        while !outstanding.isEmpty && guardCount < 1000 {
            deliverRecord(succeeds: true)
            guardCount += 1
        }
    }

    /// Everything in flight completes: records durable, the pen answers, time passes beyond
    /// every deadline. Every command must then have its one answer.
    mutating func drain() {
        for _ in 0..<20 {
            deliverAllRecords()
            while !owedAcks.isEmpty { penAnswers() }
            deliverAllRecords()
            pass(.milliseconds(20))
        }
        real = real + .seconds(5)
        carry(core.realTimePassed(at: now), "deadlines")
        deliverAllRecords()
        for (id, kind) in kinds.sorted(by: { $0.key.value < $1.key.value }) where answers[id]?.count != 1 {
            violations.append("\(kind) (#\(id.value)) got \(answers[id]?.count ?? 0) answers")
        }
        if core.commandsInFlight != 0 { violations.append("\(core.commandsInFlight) commands still in flight after draining") }
    }

    func succeeded(_ id: CommandID) -> Bool {
        if case .success = answers[id]?.first { true } else { false }
    }

    func code(_ id: CommandID) -> ProblemCode? {
        if case .failure(let error) = answers[id]?.first { error.code } else { nil }
    }

    // MARK: - Carrying out, and the promises

    static func isStop(_ message: Message) -> Bool {
        switch message {
        case .motorStop, .estop, .disarm: true
        default: false
        }
    }

    /// Carries out one input's effects in order, checking each promise on the way.
    mutating func carry(_ effects: [Effect], _ input: String, from command: CommandID? = nil) {
        inputs.append(input)
        let latchedBefore = Set(core.safety.faults)
        let context = inputs.suffix(8).joined(separator: " → ")
        var found: [String] = []
        func broke(_ what: String) { found.append("\(what) — after \(context)") }
        defer { violations += found }

        // Stops first: no pen write after a record, event, log or answer; every stop flushed
        // (as a stop) before anything else.
        var sawOther = false
        var unflushedStop = false
        for effect in effects {
            switch effect {
            case .send(let message):
                if sawOther { broke("a write to the pen (\(message.id)) after a record, event or answer") }
                if Self.isStop(message) { unflushedStop = true }
            case .flush(let stops):
                if stops { unflushedStop = false }
            case .newLink:
                break
            case .record, .publish, .log, .answer:
                if unflushedStop { broke("a stop not flushed before the records and answers") }
                sawOther = true
            }
        }
        if unflushedStop { broke("a stop never flushed") }

        for effect in effects {
            switch effect {
            case .send(let message):
                send(message, broke)
            case .record(let id, let request):
                outstanding.append((id, request))
                if let command { recordsOf[command, default: []].append(id) }
            case .answer(let id, let result):
                answers[id, default: []].append(result)
                if answers[id]!.count > 1 { broke("command #\(id.value) answered twice") }
                checkAnswer(id, result, broke)
            case .flush, .newLink, .publish, .log:
                break
            }
        }
        // The pen answers HELLO at once (a new link, a reset).
        for case .send(.hello) in effects {
            carry(core.penEvent(.helloReply(Self.helloReply), at: now), "pen says hello")
        }
        // It reports its cartridge when asked.
        for case .send(.readCartridge) in effects {
            carry(core.penEvent(.cartridge(cartridgeReport), at: now), "pen reports its cartridge")
        }
        // The pen reads its limits back at once after SET_LIMITS.
        for case .send(.setLimits) in effects {
            if let expected = core.safety.expectedPenLimits {
                let limits = expected.message
                carry(core.penEvent(.limits(.init(depthMinUm: limits.depthMinUm, depthMaxUm: limits.depthMaxUm, depthTripUm: limits.depthTripUm,
                                                  rateMinDhz: limits.rateMinDhz, rateMaxDhz: limits.rateMaxDhz, rateStallDhz: limits.rateStallDhz,
                                                  rateRunawayDhz: limits.rateRunawayDhz, deadmanMs: limits.deadmanMs,
                                                  limitsCRC: expected.checksum)), at: now), "pen reads limits back")
            }
        }

        // No motion without a lease: a pen that can move its needle belongs to an armed session
        // whose lease holder's event stream is open.
        if penArmed && motorEnabled {
            if !core.safety.isArmedPhase { broke("the pen is armed and its motor enabled while the session is \(core.safety.phase.rawValue)") }
            if let lease = core.presence.lease {
                if core.presence.streams[lease] == nil { broke("the pen may move, and the lease's stream is closed") }
            } else {
                broke("the pen may move, and nobody holds the lease")
            }
        }
        // A latch is never lost: a fault leaves only with a recorded clearing.
        let cleared = effects.contains { if case .record(_, .audit("fault_cleared", _, _, _, _)) = $0 { true } else { false } }
        if !latchedBefore.isSubset(of: Set(core.safety.faults)) && !cleared {
            broke("faults \(latchedBefore.subtracting(core.safety.faults)) left without a clearing")
        }
        if !core.safety.faults.isEmpty && core.safety.isArmedPhase { broke("armed with a fault latched") }
    }

    mutating func send(_ message: Message, _ broke: (String) -> Void) {
        switch message {
        case .arm:
            // Recorded before it lets the needle do more: every record the arming command made
            // is durable before the pen gets ARM.
            for (id, kind) in kinds where kind.hasPrefix("arm") && answers[id] == nil {
                for record in recordsOf[id] ?? [] where outcomes[record] != true {
                    broke("ARM sent before record \(record.value) of \(kind) was durable")
                }
            }
            if penFault || penRefusesNext {
                penRefusesNext = false
                owedAcks.append((message, penFault ? .faultLatched : .cartridgeRejected))
            } else {
                penArmed = true
                owedAcks.append((message, .ok))
            }
        case .motorRun:
            if penArmed {
                motorEnabled = true
                owedAcks.append((message, .ok))
            } else {
                owedAcks.append((message, .notArmed))
            }
        case .motorStop:
            motorEnabled = false
        case .disarm, .estop:
            penArmed = false
            motorEnabled = false
            if case .estop = message { penFault = true }
        case .clearFault:
            penFault = false
            owedAcks.append((message, .ok))
        default:
            break
        }
    }

    /// Answered only once durable: a success answer comes after every record its command made is
    /// durable; a stop whose record failed says so (`stopped_unrecorded`), and stopped anyway.
    func checkAnswer(_ id: CommandID, _ result: Result<SupervisorCore.Answer, CommandError>, _ broke: (String) -> Void) {
        let kind = kinds[id] ?? "?"
        let records = recordsOf[id] ?? []
        switch result {
        case .success(.stopped(let unrecorded)):
            if unrecorded == nil, let record = records.first(where: { outcomes[$0] != true }) {
                broke("\(kind) answered as recorded, and record \(record.value) was not")
            }
            if penArmed && motorEnabled { broke("\(kind) answered stopped while the pen may move") }
        case .success:
            if let record = records.first(where: { outcomes[$0] != true }) {
                broke("\(kind) answered success before record \(record.value) was durable (\(outcomes[record].map { $0 ? "durable" : "failed" } ?? "pending"))")
            }
        case .failure:
            break
        }
    }
}
