import StippleAPI
import StippleLink
import StippleSafety
import StippleWire

/// Everything the supervisor decides, as a value: inputs and one time value in, an ordered list of
/// effects out — no I/O, no clock, no task, no sleep. It is to the daemon what `SafetyCore` is to a
/// session, shaped like swift-nio's state machines: the `Supervisor` actor is only the shell that
/// reads the clock, feeds inputs, and carries the effects out (writes to the pen, appends to the
/// records, publishes events, answers the API).
///
/// Its rules, which every input keeps and `SupervisorCoreRaceTests` tries every order of:
/// - **stops first**: a decision's stop frames are followed at once by a `flush(stops: true)`, and
///   every write to the pen an input produces comes before any of its records, events, logs or
///   answers (`linkFirst`);
/// - **recorded before it lets the needle do more**: a setpoint, an arm, a limits change is
///   appended to the records, and the core waits for that record's outcome before the pen gets the
///   command or the change takes effect;
/// - **answered only once durable**: a command's answer comes after every record it made is
///   reported durable; a record that failed turns the answer into `records_unavailable` — except a
///   stop, which stopped regardless and answers with `stopped_unrecorded` (issue 12);
/// - **time only as input**: `Now` carries the session clock's reading (simulated or real) and the
///   real monotonic clock (operator presence, acknowledgement deadlines — a person's screen and a
///   pen's answer do not speed up under an accelerated simulator).
///
/// Commands that wait (for the records, for the pen's answer, for fresh telemetry) are kept in
/// `pending` with the step they are at; each input that may move one on (`recorded`, a pen event,
/// `tick`) does, and a command may find the world changed when it resumes: it re-checks, and a
/// stop, a fault or another client's arm always wins.
public struct SupervisorCore: Sendable {
    public struct Settings: Sendable {
        public var limits: SafetyLimits
        /// What an engineer's reset returns to.
        public var configuredLimits: SafetyLimits
        /// The arming client must hold its event stream open and ping at least this often.
        public var presenceTimeout: Duration = .seconds(1)
        /// How long a command waits for the pen's ACK (real time).
        public var ackTimeout: Duration = .seconds(2)
        /// How long clearing a fault waits for a telemetry frame newer than the pen's answer.
        public var freshTelemetryWait: Duration = .milliseconds(300)
        /// How long after a pen gave up answering a new handshake starts (session time).
        public var linkRestartDelay: Duration = .seconds(1)

        public init(limits: SafetyLimits, configuredLimits: SafetyLimits? = nil) {
            self.limits = limits
            self.configuredLimits = configuredLimits ?? limits
        }
    }

    /// The time of one input, read by the shell.
    public struct Now: Sendable, Equatable {
        /// The session clock's reading for this input (simulated under an accelerated simulator).
        public var reading: MonotonicInstant
        /// What the session clock reads at the moment the input is handled: below `reading`'s
        /// predecessor only if the clock itself stepped back.
        public var clockNow: MonotonicInstant
        /// The real monotonic clock: presence leases and acknowledgement deadlines.
        public var real: MonotonicInstant
        public var wall: WallTime

        public init(reading: MonotonicInstant, clockNow: MonotonicInstant? = nil, real: MonotonicInstant, wall: WallTime) {
            self.reading = reading
            self.clockNow = clockNow ?? reading
            self.real = real
            self.wall = wall
        }
    }

    /// Names one command in flight, chosen by the shell; its answer carries it back.
    public struct CommandID: Hashable, Sendable {
        public var value: UInt64
        public init(_ value: UInt64) { self.value = value }
    }

    /// Names one record append; its outcome (`recorded`) carries it back.
    public struct RecordID: Hashable, Sendable, Comparable {
        public var value: UInt64
        public init(_ value: UInt64) { self.value = value }
        public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
    }

    /// What a command answers when it succeeds (the shell adds the status it reads then).
    public enum Answer: Sendable, Equatable {
        case done
        case stopped(unrecorded: StopUnrecorded?)
        case limits(SafetyLimits)
        /// A bring-up exchange: the pen's ACK (nil: none) and the round trip in real time.
        case exchanged(status: AckStatus?, detail: UInt8, roundTrip: Duration?)
    }

    /// A line for the log: the shell hands it to swift-log.
    public struct LogLine: Sendable, Equatable {
        public enum Level: Sendable, Equatable { case debug, info, notice, warning, error, critical }
        public var level: Level
        public var message: String
        public var metadata: [String: String]
    }

    /// What the shell must do, in order.
    public enum Effect: Sendable {
        /// A command for the pen, queued on (serial) or carried out by (GPIO) the link.
        case send(Message)
        /// Write what the link has to send now. `stops`: this write carries a decision's stops
        /// (the stop path's latency is measured up to it).
        case flush(stops: Bool)
        /// Start a new link on the open transport (its HELLO follows as a `send`).
        case newLink
        /// Append to the records; report the outcome with `recorded(_:_:)`.
        case record(RecordID, RecordRequest)
        case publish(DaemonEvent)
        case log(LogLine)
        /// The answer to command `id`.
        case answer(CommandID, Result<Answer, CommandError>)
    }

    /// The API's commands.
    public enum Command: Sendable {
        case openSession(SessionRequest, actor: String)
        case setSetpoint(Setpoint, actor: String)
        case setCartridge(CartridgeEntry, actor: String)
        /// `recordsUnwritable`: why the records do not take writes now, if they do not.
        case arm(PresenceTable.Holder, actor: String, recordsUnwritable: String?)
        case stop(StopKind, actor: String)
        case clearFault(actor: String, recordsUnwritable: String?)
        case closeSession(actor: String)
        case changeLimits(SafetyLimits, actor: String)
        case resetLimits(reason: String, actor: String)
        /// A bring-up command: send `message`, answer with the pen's ACK.
        case exchange(Message)
        /// An audit entry, answered once durable (bring-up calls).
        case audit(kind: String, actor: String, payload: [String: String])
    }

    // MARK: - State

    public let settings: Settings
    public internal(set) var safety: SafetyCore
    public internal(set) var pen = PenView()
    public internal(set) var presence: PresenceTable
    /// Why the records cannot be trusted (arming refused), if they cannot.
    public let recordsProblems: [String]
    /// What the tables lost that the audit chain shows (arming refused: `records_inconsistent`).
    public let recordsInconsistencies: [String]
    /// Whether the records could be opened at all.
    public let recordsOpen: Bool
    /// Whether a transport to a pen is open (a link runs on it).
    public internal(set) var linkOpen = false
    /// A limits change is being recorded: no session may open until it is in force.
    public internal(set) var limitsChanging = false
    /// The cartridge a technician typed for a pen without a reader.
    public internal(set) var manualCartridge: CartridgeInfo?
    /// The core's time (never backwards), and the clock reading it was last advanced from.
    public internal(set) var lastNow = MonotonicInstant.zero
    public internal(set) var lastReading = MonotonicInstant.zero
    var linkRestartDue: MonotonicInstant?
    var nextRecord: UInt64 = 1
    /// The earliest real-time deadline of a waiting command (the pen's ACK; fresh telemetry after
    /// a clear), kept up to date by every input. The shell wakes the core then with
    /// `realTimePassed`, so a command never waits on a pen that neither answers nor sends frames,
    /// whatever drives the ticks. Stored, not computed: the shell reads it after every pen frame,
    /// and a computed property would copy the whole core to answer.
    public internal(set) var nextRealDeadline: MonotonicInstant?
    /// Faults latched so far, and everything that latches one or would again (FAULT frames, stops,
    /// a lost link, a pen reset — a repeat of a latched reason adds none to the core's set, yet
    /// happened): a clear in flight compares before and after, and gives way.
    public internal(set) var latches = 0
    /// Record outcomes seen so far that failed: a command compares before and after.
    public internal(set) var recordFailures = 0
    /// The newest record failure, in words.
    public internal(set) var lastRecordFailure: String?
    /// This boot's id: a session restored across a reboot counts its downtime (SessionClock).
    let bootID: String
    /// Commands waiting for something, by id, and the pen answers they wait for, in order.
    var pending: [CommandID: Pending] = [:]
    var ackWaits: [AckWait] = []
    /// The decision restoring the last session made, carried out by `start`.
    var restored: Decision?


    /// `restore`: the session the records left open and the history it lands in (the shell reads
    /// them; a failure to read them is one of `recordsProblems`).
    public init(settings: Settings, history: SafetyHistory, restore: SessionSnapshot?, recordsOpen: Bool,
                recordsProblems: [String], recordsInconsistencies: [String], bootID: String, at now: Now) throws {
        self.settings = settings
        self.recordsOpen = recordsOpen
        self.recordsProblems = recordsProblems
        self.recordsInconsistencies = recordsInconsistencies
        self.bootID = bootID
        presence = PresenceTable(window: settings.presenceTimeout)
        lastNow = now.reading
        lastReading = now.reading
        if let restore {
            let (core, decision) = try SafetyCore.restoring(restore, limits: settings.limits, history: history,
                                                            at: now.reading, wall: now.wall, bootID: bootID)
            safety = core
            restored = decision
        } else {
            safety = try SafetyCore(limits: settings.limits, history: history)
        }
    }

    /// How many commands wait for something (tests: none is left waiting).
    public var commandsInFlight: Int { pending.count }

    /// The time of an input that carries none (an API command, a status): with the simulator's
    /// accelerated clock the latest time the simulation reached, never ahead of it — otherwise a
    /// status request would make the pen look silent for simulated time it has not yet run.
    ///
    /// Static, given the core's `lastReading`: a method on the actor's stored core would copy the
    /// whole core to answer.
    public static func inputReading(clockNow: MonotonicInstant, lastReading: MonotonicInstant, accelerated: Bool) -> MonotonicInstant {
        accelerated ? lastReading : clockNow
    }

    // MARK: - Time

    /// The core's time from a reading. It never runs backwards, and it is the sum of the clock's
    /// forward steps (issue 15 item 17): a reading behind the latest while the clock itself reads
    /// behind too is a step back — it counts zero and later readings count from it; a reading
    /// behind the latest while the clock is not is an input that waited its turn: it counts zero.
    mutating func stamp(_ now: Now, _ effects: inout [Effect]) -> MonotonicInstant {
        let time = now.reading
        if time >= lastReading {
            lastNow = lastNow + (time - lastReading)
            lastReading = time
        } else if now.clockNow < lastReading {
            effects.append(.log(LogLine(level: .warning, message: "the monotonic clock stepped back: counting on from the new reading",
                                        metadata: ["step_ms": "\((lastReading - time).milliseconds)"])))
            lastReading = time
        }
        return lastNow
    }

    /// Advances the core's time to `now` (before a link decodes a read at that time; a status).
    public mutating func advance(_ now: Now) -> (MonotonicInstant, [Effect]) {
        var effects: [Effect] = []
        let time = stamp(now, &effects)
        return (time, effects)
    }

    /// The metadata every session line carries.
    public var sessionMetadata: [String: String] {
        var metadata = ["phase": safety.phase.rawValue]
        if let session = safety.session { metadata["session_id"] = session.request.sessionID }
        if let serial = pen.identity?.serial { metadata["pen_serial"] = serial }
        return metadata
    }

    func log(_ level: LogLine.Level, _ message: String, _ metadata: [String: String] = [:], session: Bool = false,
             _ effects: inout [Effect]) {
        var all = metadata
        if session { all.merge(sessionMetadata) { mine, _ in mine } }
        effects.append(.log(LogLine(level: level, message: message, metadata: all)))
    }

    mutating func record(_ request: RecordRequest, _ effects: inout [Effect]) -> RecordID {
        let id = RecordID(nextRecord)
        nextRecord += 1
        effects.append(.record(id, request))
        return id
    }

    /// A barrier: its outcome comes once every record before it is durable.
    mutating func barrier(_ effects: inout [Effect]) -> RecordID { record(.barrier, &effects) }

    /// Stops first, always: what one input produced, with every write to the pen (and the flushes
    /// and link starts among them, in their own order) ahead of every record, event, log and
    /// answer. One input may run several decisions (a tick's session-time warning, then a lost
    /// lease); without this the second decision's stop would wait behind the first's records.
    /// Nothing that lets the needle do more is ever in the same list as the record it waits for —
    /// the core sends it only once that record's outcome has come in — so moving writes ahead of
    /// records never lets a pen write overtake its record.
    /// The end of every input: the deadlines brought up to date, the pen's writes first.
    mutating func finish(_ effects: [Effect]) -> [Effect] {
        nextRealDeadline = earliestRealDeadline()
        return Self.linkFirst(effects)
    }

    static func linkFirst(_ effects: [Effect]) -> [Effect] {
        var ordered: [Effect] = []
        ordered.reserveCapacity(effects.count)
        var linkEnd = 0
        for effect in effects {
            switch effect {
            case .send, .flush, .newLink:
                ordered.insert(effect, at: linkEnd)
                linkEnd += 1
            case .record, .publish, .log, .answer:
                ordered.append(effect)
            }
        }
        return ordered
    }

    // MARK: - Start

    /// Carries out what restoring the last session decided, and a records failure known at start.
    public mutating func start(recordsUnwritable: String?, at now: Now) -> [Effect] {
        var effects: [Effect] = []
        let time = stamp(now, &effects)
        for inconsistency in recordsInconsistencies {
            log(.critical, "the records disagree with the audit log: arming is refused", ["problem": inconsistency], &effects)
        }
        if let decision = restored {
            restored = nil
            log(.notice, "restored session", session: true, &effects)
            apply(decision, phaseBefore: nil, at: time, wall: now.wall, &effects)
        }
        // A disk that refused the start's probe write: faulted from the start, never armable
        // until writes land again (issue 15 item 16).
        let unwritable = recordsOpen ? recordsUnwritable : "the records cannot be opened: \(recordsProblems.joined(separator: "; "))"
        if let why = unwritable {
            decide(.recordsUnavailable(why), at: time, wall: now.wall, &effects)
        }
        return finish(effects)
    }

    // MARK: - Carrying out the safety core's decisions

    /// Runs one event through the safety core and turns its decision into effects.
    @discardableResult
    mutating func decide(_ event: SafetyEvent, at time: MonotonicInstant, wall: WallTime, actor: String = "stippled",
                         _ effects: inout [Effect]) -> Decision {
        let before = safety.phase
        let decision = safety.handle(event, at: time)
        apply(decision, phaseBefore: before, at: time, wall: wall, actor: actor, &effects)
        return decision
    }

    /// A decision as effects: its stops first, written out at once; then records, events and logs.
    /// The state is persisted whenever the phase changed.
    mutating func apply(_ decision: Decision, phaseBefore: SessionPhase?, at time: MonotonicInstant, wall: WallTime,
                        actor: String = "stippled", _ effects: inout [Effect]) {
        // A DISARM alone is a stop too (a pen that reports itself armed while faulted).
        var flushed = false
        var sentStop = false
        for action in decision.actions {
            switch action {
            case .stopNeedle:
                sentStop = true
                effects.append(.send(.motorStop(.init())))
            case .emergencyStopPen:
                sentStop = true
                effects.append(.send(.estop(.init())))
            case .disarmPen:
                sentStop = true
                effects.append(.send(.disarm(.init())))
            default:
                if !flushed {
                    flushed = true
                    if sentStop { effects.append(.flush(stops: true)) }
                }
                carryOut(action, at: time, wall: wall, actor: actor, &effects)
            }
        }
        if !flushed && sentStop { effects.append(.flush(stops: true)) }
        if let phaseBefore, phaseBefore != safety.phase {
            if let snapshot = safety.snapshot, !decision.actions.contains(where: { if case .persist = $0 { true } else { false } }) {
                _ = record(.persist(snapshot, wall: wall.secondsSince1970, actor: actor), &effects)
            }
            effects.append(.publish(DaemonEvent(.state, ["phase": .string(safety.phase.rawValue), "from": .string(phaseBefore.rawValue)])))
            log(.info, "session state", session: true, &effects)
        }
        if !safety.isArmedPhase { presence.release() }
        abandonOvertakenArms(&effects)
    }

    mutating func carryOut(_ action: SafetyAction, at time: MonotonicInstant, wall: WallTime, actor: String, _ effects: inout [Effect]) {
        let sessionID = safety.session?.request.sessionID
        let seconds = wall.secondsSince1970
        switch action {
        case .stopNeedle, .emergencyStopPen, .disarmPen:
            break  // sent by `apply`
        case .pushLimits(let limits):
            pen.readBackLimitsCRC = nil
            effects.append(.send(.setLimits(limits.message)))
        case .applySetpoint(let setpoint):
            effects.append(.send(.setSetpoints(.init(setpoint))))
        case .armPen, .recordCartridgeUse:
            break  // only arming produces these; `arm` carries them out in order (durable first)
        case .clearPenFault:
            effects.append(.send(.clearFault(.init())))
        case .warn(let warning):
            let (kind, detail) = Self.describe(warning)
            effects.append(.publish(DaemonEvent(.warning, ["kind": .string(kind), "detail": .string(detail)])))
            log(.warning, "session warning", ["kind": kind, "detail": detail], session: true, &effects)
            _ = record(.warning(kind: kind, detail: detail, sessionID: sessionID, wall: seconds), &effects)
        case .faultLatched(let reason, let detail):
            latches += 1
            effects.append(.publish(DaemonEvent(.fault, ["reason": .string(reason.rawValue), "detail": .string(detail)])))
            log(.error, "fault latched: \(detail)", ["fault_code": reason.rawValue], session: true, &effects)
            _ = record(.fault(reason: reason.rawValue, detail: detail, sessionID: sessionID, wall: seconds), &effects)
        case .sessionClosed(let reason):
            if let snapshot = safety.snapshot {
                // A session closed by its time limit closed as of that limit in the record, even
                // when the daemon noticed late (it was down at 4:00).
                let clock = snapshot.session.clock
                let closedAt = reason == .timeLimit
                    ? min(seconds, clock.startedWall.secondsSince1970 + Int64(clock.elapsedAtCheckpoint.components.seconds))
                    : seconds
                _ = record(.closeSession(snapshot, reason: reason, closedAt: closedAt, actor: actor), &effects)
            }
            effects.append(.publish(DaemonEvent(.session, ["state": "closed", "reason": .string(reason.rawValue), "session_id": .optional(sessionID)])))
            log(.notice, "session closed", ["reason": reason.rawValue], session: true, &effects)
        case .persist(let snapshot):
            _ = record(.persist(snapshot, wall: seconds, actor: actor), &effects)
        }
    }

    static func describe(_ warning: SessionWarning) -> (String, String) {
        switch warning {
        case .sessionTime(let elapsed, let remaining):
            ("session_time", "session time \(elapsed.clockText), \(remaining.clockText) left")
        case .restoredSetpointRefused(let violations):
            ("restored_setpoint_refused", violations.map(\.description).joined(separator: "; "))
        case .sessionLocked(let reason):
            ("session_locked", reason)
        }
    }

    // MARK: - The link

    /// A transport to a pen is open: a new link starts with HELLO (PROTOCOL.md section 6).
    public mutating func linkOpened(at now: Now) -> [Effect] {
        var effects: [Effect] = []
        let time = stamp(now, &effects)
        linkOpen = true
        startLink(at: time, &effects)
        return finish(effects)
    }

    mutating func startLink(at time: MonotonicInstant, _ effects: inout [Effect]) {
        pen = PenView(cartridge: pen.identity == nil ? pen.cartridge : nil)
        linkRestartDue = nil
        effects.append(.newLink)
        effects.append(.send(.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor))))
        effects.append(.flush(stops: false))
        effects.append(.publish(DaemonEvent(.link, ["state": "handshake"])))
    }

    /// The transport failed or closed: the link is lost (H5/H6/H7). Stops, latches, records.
    public mutating func linkLost(reason: String, at now: Now) -> [Effect] {
        var effects: [Effect] = []
        let time = stamp(now, &effects)
        linkOpen = false
        latches += 1
        decide(.linkLost, at: time, wall: now.wall, &effects)
        failAckWaits(at: now, &effects)
        pen.identity = nil
        log(.error, "pen link lost", ["reason": reason], session: true, &effects)
        effects.append(.publish(DaemonEvent(.link, ["state": "lost", "reason": .string(reason)])))
        return finish(effects)
    }

    /// One event from the pen's link, at `now` (its frame's read time: the stop path).
    public mutating func penEvent(_ event: HostLink.Event, at now: Now) -> [Effect] {
        var effects: [Effect] = []
        let time = stamp(now, &effects)
        handle(event, at: time, now: now, &effects)
        return finish(effects)
    }

    /// Several events of one read, at one time.
    public mutating func penEvents(_ events: [HostLink.Event], at now: Now) -> [Effect] {
        var effects: [Effect] = []
        let time = stamp(now, &effects)
        for event in events { handle(event, at: time, now: now, &effects) }
        return finish(effects)
    }

    mutating func handle(_ event: HostLink.Event, at time: MonotonicInstant, now: Now, _ effects: inout [Effect]) {
        let wall = now.wall
        switch event {
        case .telemetry(let telemetry):
            pen.telemetry = telemetry
            pen.telemetryAt = time
            decide(.telemetry(TelemetrySample(telemetry)), at: time, wall: wall, &effects)
            resumeClearsWaitingForTelemetry(at: now, &effects)
        case .fault(let fault):
            if fault.code == .reset {
                penRebooted("the pen sent FAULT reset (cause \(fault.detail))", at: time, now: now, &effects)
                return
            }
            latches += 1  // even one of a reason already latched: it happened again
            decide(.penFault(fault.code), at: time, wall: wall, &effects)
            log(.warning, "pen fault", ["fault_code": "\(fault.code)", "detail": "\(fault.detail)", "value": "\(fault.value)"], &effects)
        case .status(let status):
            pen.status = status
            if status.state == .boot && pen.identity != nil && pen.versionRefusal == nil {
                penRebooted("the pen's STATUS says boot after the handshake", at: time, now: now, &effects)
                return
            }
            if status.fault != .none { decide(.penFault(status.fault), at: time, wall: wall, &effects) }
        case .helloReply(let reply):
            handshake(reply, at: time, wall: wall, &effects)
        case .limits(let limits):
            pen.readBackLimitsCRC = limits.limitsCRC
        case .cartridge(let message):
            if message.event == .removed {
                pen.cartridge = nil
                decide(.cartridgeRemoved, at: time, wall: wall, &effects)
            } else {
                let cartridge = CartridgeInfo(message)
                pen.cartridge = cartridge
                // Another cartridge while armed stops (H10), with or without a removal first.
                if let cartridge { decide(.cartridgeReported(cartridge), at: time, wall: wall, &effects) }
            }
            effects.append(.publish(DaemonEvent(.pen, ["cartridge": .optional(pen.cartridge?.id), "event": .string(message.event.description)])))
        case .acknowledged(let message, let status, let detail):
            if status != .ok { log(.notice, "pen refused a command", ["command": "\(message.id)", "status": "\(status)", "detail": "\(detail)"], &effects) }
            if case .setLimits = message, status != .ok { pen.readBackLimitsCRC = nil }
            answerAck(message.id, .answered(status, detail: detail), at: now, &effects)
        case .log(let level, let text):
            log(.info, "pen log", ["level": "\(level)", "text": text], &effects)
        case .rejected(let rejection):
            log(.debug, "rejected frame", ["reason": "\(rejection.reason)"], &effects)
        case .gaveUp(let message):
            // The pen stopped answering: the link counts as lost (the core stops and latches if
            // armed); a new handshake follows, and stops keep being retransmitted meanwhile.
            latches += 1
            decide(.linkLost, at: time, wall: wall, &effects)
            answerAck(message.id, .noAnswer, at: now, &effects)
            if !HostLink.isStop(message) { linkRestartDue = time + settings.linkRestartDelay }
            log(.error, "pen stopped answering", ["command": "\(message.id)"], &effects)
            effects.append(.publish(DaemonEvent(.link, ["state": "not_answering", "command": .string("\(message.id)")])))
        }
    }

    /// The pen rebooted (PROTOCOL.md rule 1): it forgot its limits, setpoint and arm. Before this
    /// link's handshake that is just the pen starting. After it, an armed session latches
    /// `pen_reset`, the reset is recorded, and the handshake and limits push are repeated.
    mutating func penRebooted(_ why: String, at time: MonotonicInstant, now: Now, _ effects: inout [Effect]) {
        let handshakeDone = pen.identity != nil
        pen.readBackLimitsCRC = nil
        let before = safety.phase
        latches += 1
        decide(.penFault(.reset), at: time, wall: now.wall, &effects)
        guard handshakeDone else {
            log(.info, "pen booted", ["why": why], &effects)
            return
        }
        log(.warning, "pen reset during the link: repeating the handshake and pushing the limits", ["why": why], session: true, &effects)
        let wall = now.wall.secondsSince1970
        _ = record(.audit(kind: "pen_reset", actor: "stippled", sessionID: safety.session?.request.sessionID,
                          payload: ["why": why, "pen_serial": pen.identity?.serial ?? "", "phase_before": before.rawValue], wall: wall), &effects)
        if let sessionID = safety.session?.request.sessionID, safety.closeReason == nil {
            _ = record(.warning(kind: "pen_reset", detail: "the pen reset (\(why)); the handshake was repeated and the limits pushed again",
                                sessionID: sessionID, wall: wall), &effects)
        }
        effects.append(.publish(DaemonEvent(.pen, ["state": "reset", "reason": .string(why)])))
        failAckWaits(at: now, &effects)
        startLink(at: time, &effects)
    }

    /// HELLO_REPLY: the version rule, the identity, then the core pushes limits and setpoint again.
    mutating func handshake(_ reply: Message.HelloReply, at time: MonotonicInstant, wall: WallTime, _ effects: inout [Effect]) {
        let identity = PenIdentity(reply)
        pen.identity = identity
        pen.capabilities = reply.capabilities
        let firmware = "\(reply.fwMajor).\(reply.fwMinor).\(reply.fwPatch)"
        pen.firmware = firmware
        guard reply.protoMajor == ProtocolVersion.major else {
            let refusal = "pen speaks protocol \(reply.protoMajor).\(reply.protoMinor), stippled speaks \(ProtocolVersion.major).\(ProtocolVersion.minor)"
            pen.versionRefusal = refusal
            log(.error, "pen refused: protocol mismatch", ["pen_serial": identity.serial, "detail": refusal], &effects)
            effects.append(.publish(DaemonEvent(.pen, ["state": "refused", "reason": .string(refusal)])))
            return
        }
        pen.versionRefusal = nil
        _ = record(.pen(serial: identity.serial, firmware: firmware, protocolVersion: "\(reply.protoMajor).\(reply.protoMinor)",
                        wall: wall.secondsSince1970), &effects)
        if !reply.capabilities.contains(.cartridgeReader) { pen.cartridge = manualCartridge }
        decide(.penConnected(identity), at: time, wall: wall, &effects)
        effects.append(.send(.getStatus(.init())))
        if reply.capabilities.contains(.cartridgeReader) { effects.append(.send(.readCartridge(.init()))) }
        log(.notice, "pen identified", ["firmware": firmware], session: true, &effects)
        if let bound = safety.session?.request.penSerial, safety.closeReason == nil, !Identifier.same(bound, identity.serial) {
            log(.error, "wrong pen: the session is bound to another serial", ["pen_serial": identity.serial, "bound": bound], &effects)
            effects.append(.publish(DaemonEvent(.warning, ["kind": "wrong_pen", "detail": .string("session bound to \(bound); connected pen is \(identity.serial)")])))
        }
        effects.append(.publish(DaemonEvent(.pen, ["state": "identified", "serial": .string(identity.serial), "firmware": .string(firmware)])))
    }

    // MARK: - Time passing

    /// The timer: the safety core's silence and session-time checks, operator presence, a link
    /// restart after the pen stopped answering, and the deadlines of commands that wait.
    public mutating func tick(at now: Now) -> [Effect] {
        var effects: [Effect] = []
        let time = stamp(now, &effects)
        decide(.tick(wall: now.wall), at: time, wall: now.wall, &effects)
        checkPresence(at: now, &effects)
        if let due = linkRestartDue, time >= due, linkOpen { startLink(at: time, &effects) }
        expireAckWaits(at: now, &effects)
        resumeClearsWaitingForTelemetry(at: now, &effects)
        return finish(effects)
    }

    /// The earliest real-time deadline of a waiting command, worked out after each input.
    func earliestRealDeadline() -> MonotonicInstant? {
        let clears = pending.values.compactMap { command -> MonotonicInstant? in
            guard case .clearFault(let progress) = command, case .awaitingTelemetry(_, let deadline) = progress.step else { return nil }
            return deadline
        }
        return (ackWaits.map(\.deadline) + clears).min()
    }

    /// Real time passed with no tick: the deadlines of waiting commands.
    public mutating func realTimePassed(at now: Now) -> [Effect] {
        var effects: [Effect] = []
        _ = stamp(now, &effects)
        expireAckWaits(at: now, &effects)
        resumeClearsWaitingForTelemetry(at: now, &effects)
        return finish(effects)
    }

    // MARK: - Operator presence

    /// An event stream opened by `holder`: its id, which the stream hands back when it closes.
    public mutating func presenceOpened(_ holder: PresenceTable.Holder, at now: Now) -> ConnectionID {
        presence.open(holder, at: now.real)
    }

    /// An event stream closed. If it held the lease, the lease is lost now: the needle stops.
    public mutating func presenceClosed(_ id: ConnectionID, at now: Now) -> [Effect] {
        guard let lost = presence.close(id) else { return [] }
        return finish(clientLost(lost, why: "its event stream closed", at: now))
    }

    /// A sign of life from `holder`. False when the holder has no event stream.
    public mutating func ping(_ holder: PresenceTable.Holder, at now: Now) -> Bool {
        presence.sign(holder, at: now.real) > 0
    }

    mutating func clientLost(_ id: ConnectionID, why: String, at now: Now) -> [Effect] {
        var effects: [Effect] = []
        let time = stamp(now, &effects)
        log(.warning, "operator presence lost", ["connection": "\(id.value)", "why": why], &effects)
        decide(.clientDisconnected(id), at: time, wall: now.wall, &effects)
        return effects
    }

    /// A lease holder silent past the window loses the lease; a lease binds only while armed.
    mutating func checkPresence(at now: Now, _ effects: inout [Effect]) {
        guard safety.isArmedPhase else {
            presence.release()
            return
        }
        if let lost = presence.expire(at: now.real) {
            effects += clientLost(lost, why: "no sign of life within \(presence.window.clockText)", at: now)
        }
    }

    // MARK: - Shutdown

    /// SIGTERM: the needle stops and the pen is disarmed; the state is persisted. (The shell then
    /// lets the link drain and makes every record durable.)
    public mutating func shutdown(at now: Now) -> [Effect] {
        var effects: [Effect] = []
        let time = stamp(now, &effects)
        decide(.disarm, at: time, wall: now.wall, &effects)
        if let snapshot = safety.snapshot { _ = record(.persist(snapshot, wall: now.wall.secondsSince1970, actor: "stippled"), &effects) }
        return finish(effects)
    }
}
