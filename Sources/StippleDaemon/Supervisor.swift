import Logging
import StippleAPI
import StippleLink
import StippleRecords
import StippleSafety
import StippleTransport
import StippleWire
import Synchronization

/// What the daemon knows of the pen on the current link.
public struct PenView: Sendable {
    public var identity: PenIdentity?
    public var firmware: String?
    public var capabilities: Capabilities?
    /// Set when the pen speaks another protocol major: the link goes no further (H17).
    public var versionRefusal: String?
    /// The limits checksum the pen read back (LIMITS after SET_LIMITS).
    public var readBackLimitsCRC: UInt32?
    /// The cartridge the pen's reader reports, or the one the technician typed (GPIO pens,
    /// pens without a reader).
    public var cartridge: CartridgeInfo?
    public var status: Message.Status?
    public var telemetry: Message.Telemetry?
    public var telemetryAt: MonotonicInstant?
}

/// A refusal for the API: what kind, a stable code, a sentence, and the details that name the
/// fields and checks. Never a 5xx for bad input.
public struct CommandError: Error, Sendable {
    public enum Kind: Sendable { case badRequest, forbidden, notFound, conflict, unavailable, unprocessable }
    public var kind: Kind
    /// One of docs/openapi.yaml's `ProblemCode`s (generated): a code the spec does not list
    /// does not compile.
    public var code: ProblemCode
    public var message: String
    public var state: String?
    public var violations: [LimitViolation] = []
    public var armingFailures: [ArmingFailure] = []

    public init(_ kind: Kind, _ code: ProblemCode, _ message: String, state: String? = nil,
                violations: [LimitViolation] = [], armingFailures: [ArmingFailure] = []) {
        self.kind = kind
        self.code = code
        self.message = message
        self.state = state
        self.violations = violations
        self.armingFailures = armingFailures
    }
}

/// The one owner of the safety core and the link. Every input — pen bytes, link events, API
/// commands, client presence, timer ticks — arrives here, one at a time (an actor), and goes
/// through `SafetyCore.handle`; the decision's actions are carried out in order, stops first,
/// before anything is recorded or answered.
///
/// **The stop path** (docs/architecture.md): `received(_:at:)` → `HostLink.receive` →
/// `handle(_:at:)` → `SafetyCore.handle(.telemetry)` → `apply(_:at:)` → `HostLink.send(.motorStop)`
/// → `flush(at:)` → `PenTransport.write`. All synchronous inside one actor call: no await, no
/// allocation-heavy work and no disk I/O between the frame and the stop frame.
public actor Supervisor {
    public struct Settings: Sendable {
        public var limits: SafetyLimits
        /// The arming client must hold its event stream open and ping at least this often.
        public var presenceTimeout: Duration = .seconds(1)
        /// How long an API command waits for the pen's ACK.
        public var ackTimeout: Duration = .seconds(2)
        /// The configuration's own limits: what an engineer's reset returns to (`limits` is the
        /// tightest of these and the run-time tightening kept in the records).
        public var configuredLimits: SafetyLimits

        public init(limits: SafetyLimits, configuredLimits: SafetyLimits? = nil) {
            self.limits = limits
            self.configuredLimits = configuredLimits ?? limits
        }
    }

    let clock: any DaemonClock
    let settings: Settings
    let records: RecordWriter?
    /// Why the records cannot be trusted (arming refused), if they cannot.
    var recordsProblems: [String]
    /// What the tables lost that the audit chain shows (arming refused: `records_inconsistent`).
    var recordsInconsistencies: [String]
    public nonisolated let hub: EventHub
    /// The engineers' tap on the link and the serial port's release gate (Supervisor+BringUp).
    public nonisolated let bringUp = BringUp()
    let logger: Logger
    /// systemd's watchdog is fed from `step`: a hung supervisor stops feeding it.
    public nonisolated let notifier: SystemdNotifier
    /// The supervisor's own thread (its executor), which also reads a serial pen.
    public nonisolated let loop: SupervisorLoop
    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    var core: SafetyCore
    /// The link to the pen: `HostLink` for a serial pen, `GPIOPenLink` for a GPIO pen.
    var link: (any PenLink)?
    /// Makes the link for each new connection (set by `attach`).
    var makeLink: @Sendable () -> any PenLink = { HostLink() }
    var transport: (any PenTransport)?
    var pen = PenView()
    /// The core's time (`stamp`), and the clock reading it was last advanced from.
    var lastNow = MonotonicInstant.zero
    var lastReading = MonotonicInstant.zero
    var ackTickets: [AckTicket] = []
    /// Who holds the operator-presence lease (`PresenceTable`).
    var presence: PresenceTable
    var aggregate: (sessionID: String, data: TelemetryAggregate)?
    var linkRestartDue: MonotonicInstant?
    var shuttingDown = false
    /// A limits change is being recorded: no session may open until it is in force.
    var limitsChanging = false
    /// When the records were last retried while unwritable (real time).
    var lastRecordsRetry = MonotonicInstant.zero
    /// Counters for status and metrics.
    var counters = Counters()
    var metrics = DaemonMetrics()
    /// Stops written to the pen so far, and when the last one was (the stop path's latency is
    /// measured per pen read, up to the write).
    var stopsWritten = 0
    var lastStopWrittenAt = MonotonicInstant.zero

    struct Counters {
        var telemetryFrames = 0
        var faults: [String: Int] = [:]
        var linksOpened = 0
        var recordFailures = 0
    }

    /// What the pen answered to a command, or that it did not.
    enum AckOutcome: Sendable, Equatable {
        case answered(AckStatus, detail: UInt8)
        case noAnswer
    }

    /// A supervisor with the records' history; restores the session the records left open.
    ///
    /// The audit chain is the authority (issue 15 item 13): the history the core gets is the
    /// tables' with everything the chain shows added, a restored session's time is never less
    /// than the chain recorded, and whatever the tables lost that the chain shows (and anything
    /// `recordsInconsistencies` names, such as a truncated chain) refuses arming with
    /// `records_inconsistent` while the API keeps serving, so people can see why.
    public init(clock: any DaemonClock, settings: Settings, records: RecordWriter?, recordsProblems: [String],
                recordsInconsistencies: [String] = [], hub: EventHub, logger: Logger,
                notifier: SystemdNotifier = SystemdNotifier(), loop: SupervisorLoop = SupervisorLoop()) throws {
        self.clock = clock
        self.notifier = notifier
        self.loop = loop
        self.settings = settings
        self.records = records
        self.hub = hub
        self.logger = logger
        presence = PresenceTable(window: settings.presenceTimeout)
        var problems = recordsProblems
        var inconsistencies = recordsInconsistencies
        var history = SafetyHistory()
        var restore: SessionSnapshot?
        if let records {
            do {
                let facts = try records.store.chainFacts()
                history = try records.store.history(merging: facts)
                inconsistencies += try records.store.inconsistencies(with: facts)
                switch try records.store.sessionToRestore() {
                case .success(var snapshot):
                    // The larger session time wins: a checkpoint behind the chain gives nothing back.
                    if let chain = facts.sessions[snapshot.session.request.sessionID], snapshot.closeReason != .timeLimit {
                        snapshot.session.clock.raise(atLeast: .milliseconds(chain.maxSessionTimeMs))
                    }
                    restore = snapshot
                case .failure(let error): problems.append(error.description)
                case nil: break
                }
            } catch {
                problems.append("reading the records failed: \(error)")
            }
        }
        self.recordsProblems = problems
        self.recordsInconsistencies = inconsistencies
        for inconsistency in inconsistencies {
            logger.critical("the records disagree with the audit log: arming is refused", metadata: ["problem": "\(inconsistency)"])
        }
        let now = clock.now()
        if let restore {
            let (core, decision) = try SafetyCore.restoring(
                restore, limits: settings.limits, history: history, at: now, wall: clock.wallNow(), bootID: clock.bootID)
            self.core = core
            lastNow = now
            lastReading = now
            // Records of the restore itself (faults latched, locks) go out as any decision does.
            restoredDecision = decision
        } else {
            core = try SafetyCore(limits: settings.limits, history: history)
            lastNow = now
            lastReading = now
        }
    }

    /// The decision `restoring` made, carried out by `start()`.
    var restoredDecision: Decision?

    /// Carries out what restoring the last session decided (records, events).
    public func start() {
        if let decision = restoredDecision {
            restoredDecision = nil
            logger.notice("restored session", metadata: sessionMetadata)
            apply(decision, phaseBefore: nil, at: stamp(inputNow()))
        }
        // A disk that refused the start's probe write: faulted from the start, never armable
        // until writes land again (issue 15 item 16).
        // (Records that could not be opened at all are no better: they stay so until a restart.)
        let unwritable = records == nil ? "the records cannot be opened: \(recordsProblems.joined(separator: "; "))" : records?.unwritableReason
        if let why = unwritable {
            let now = stamp(inputNow())
            let before = core.phase
            apply(core.handle(.recordsUnavailable(why), at: now), phaseBefore: before, at: now)
        }
    }

    var sessionMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = ["phase": "\(core.phase.rawValue)"]
        if let session = core.session { metadata["session_id"] = "\(session.request.sessionID)" }
        if let serial = pen.identity?.serial { metadata["pen_serial"] = "\(serial)" }
        return metadata
    }

    /// The time of an input that carries none (an API command, a status, a shutdown). With a real
    /// clock: now. With the simulator's accelerated clock, the simulator drives time in steps
    /// (`step`, `received`) and may run behind the clock when the machine is busy: an input then
    /// happens at the latest time the simulation reached, never ahead of it — otherwise a status
    /// request would make the pen look silent for the simulated time it has not yet run.
    func inputNow() -> MonotonicInstant {
        clock.isAccelerated ? lastReading : clock.now()
    }

    /// The core's time from a clock reading. It never runs backwards, whatever order inputs
    /// arrive in, and it is the sum of the clock's forward steps (issue 15 item 17): when the
    /// clock itself reads behind its latest reading (a step back, which CLOCK_MONOTONIC should
    /// never do), the reading counts zero and later readings count from it, so time keeps its real
    /// rate instead of standing still until the clock catches up. A reading behind the latest
    /// while the clock is not is an input that waited its turn (stamped when read, handled after
    /// a tick): it counts zero and moves nothing.
    func stamp(_ time: MonotonicInstant) -> MonotonicInstant {
        if time >= lastReading {
            lastNow = lastNow + (time - lastReading)
            lastReading = time
        } else if clock.now() < lastReading {
            // The clock itself reads behind what it read before: a step back, not an input that
            // waited (one read long ago and handled late must not count its wait twice).
            logger.warning("the monotonic clock stepped back: counting on from the new reading",
                           metadata: ["step_ms": "\((lastReading - time).milliseconds)"])
            lastReading = time
        }
        return lastNow
    }


    // MARK: - The link

    /// A transport to a pen is open: start a new link with HELLO (PROTOCOL.md section 6).
    /// A GPIO pen passes its own link; a serial pen (the default) gets a `HostLink`.
    public func attach(_ transport: any PenTransport, link makeLink: @escaping @Sendable () -> any PenLink = { HostLink() }) {
        let now = stamp(inputNow())
        self.transport = transport
        self.makeLink = makeLink
        startLink(at: now)
        logger.info("pen link opened", metadata: ["transport": "\(transport.description)"])
    }

    func startLink(at now: MonotonicInstant) {
        link = makeLink()
        pen = PenView(cartridge: pen.identity == nil ? pen.cartridge : nil)
        counters.linksOpened += 1
        metrics.linksOpened.increment()
        linkRestartDue = nil
        link?.send(.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor)))
        flush(at: now)
        hub.publish(DaemonEvent(.link, ["state": "handshake"]))
    }

    /// The transport failed or closed: the link is lost (H5/H6/H7). Stops, latches, records.
    public func detach(reason: String) {
        let now = stamp(inputNow())
        transport?.close()
        transport = nil
        link = nil
        let before = core.phase
        apply(core.handle(.linkLost, at: now), phaseBefore: before, at: now)
        failAckWaiters()
        pen.identity = nil
        logger.error("pen link lost", metadata: ["reason": "\(reason)"].merging(sessionMetadata) { a, _ in a })
        hub.publish(DaemonEvent(.link, ["state": "lost", "reason": .string(reason)]))
    }

    /// Bytes from the pen, read at `time`: the start of the stop path.
    /// Runs `body` on the supervisor's thread in one hop: the in-process simulator feeds a
    /// batch of pen steps at a time instead of hopping threads twice a step.
    public func isolated<T: Sendable>(_ body: @Sendable (isolated Supervisor) throws -> T) rethrows -> T {
        try body(self)
    }

    public func received(_ bytes: [UInt8], at time: MonotonicInstant) {
        let entered = SystemClock.monotonicNow()
        let stopsBefore = stopsWritten
        let now = stamp(time)
        guard var link else { return }
        let events = link.receive(bytes, at: now)
        self.link = link
        for event in events { handle(event, at: now) }
        flush(at: now)
        if stopsWritten != stopsBefore {
            // From the read, when its time is a CLOCK_MONOTONIC reading; otherwise from entry (a
            // simulated pen's times are virtual, and may be ahead of the real clock).
            let start = clock.isAccelerated || time > entered ? entered : time
            metrics.recordStopReaction(lastStopWrittenAt - start)
        }
    }

    /// The timer: retransmissions and heartbeats, the core's silence and session-time checks,
    /// client presence, and a link restart after the pen stopped answering.
    public func step(at time: MonotonicInstant) {
        let now = stamp(time)
        let before = core.phase
        apply(core.handle(.tick(wall: clock.wallNow()), at: now), phaseBefore: before, at: now)
        checkPresence()
        retryRecordsIfDue()
        if let due = linkRestartDue, now >= due, transport != nil { startLink(at: now) }
        flush(at: now)
        metrics.sessionTime.record(Double(core.sessionElapsed(at: now).milliseconds) / 1000)
        metrics.mayMove.record(core.mayMove ? 1 : 0)
        notifier.petWatchdog()
        hub.tick()
    }

    /// While the records cannot be written, about once a second (real time): the kept records
    /// again, then a probe. Arming works again once they land, without a restart.
    func retryRecordsIfDue() {
        guard let records, !records.isWritable else { return }
        let real = SystemClock.monotonicNow()
        guard real - lastRecordsRetry >= .seconds(1) else { return }
        lastRecordsRetry = real
        records.retryPending(at: clock.wallNow().secondsSince1970)
    }

    /// Writes whatever the link has to send now.
    func flush(at now: MonotonicInstant) {
        guard var link, let transport else { return }
        let (bytes, events) = link.poll(at: now)
        self.link = link
        if !bytes.isEmpty {
            do { try transport.write(bytes) } catch {
                detach(reason: "\(error)")
                return
            }
        }
        metrics.link(link.statistics)
        for event in events { handle(event, at: now) }
    }

    /// One event from the link.
    func handle(_ event: HostLink.Event, at now: MonotonicInstant) {
        switch event {
        case .telemetry(let telemetry):
            pen.telemetry = telemetry
            pen.telemetryAt = now
            counters.telemetryFrames += 1
            let sample = TelemetrySample(telemetry)
            let before = core.phase
            apply(core.handle(.telemetry(sample), at: now), phaseBefore: before, at: now)
            aggregateTelemetry(telemetry, sample: sample, at: now)
            publishTelemetry(telemetry, sample: sample, at: now)
        case .fault(let fault):
            if fault.code == .reset {
                penRebooted("the pen sent FAULT reset (cause \(fault.detail))", at: now)
                return
            }
            let before = core.phase
            apply(core.handle(.penFault(fault.code), at: now), phaseBefore: before, at: now)
            logger.warning("pen fault", metadata: ["fault_code": "\(fault.code)", "detail": "\(fault.detail)", "value": "\(fault.value)"])
        case .status(let status):
            pen.status = status
            if status.state == .boot && pen.identity != nil && pen.versionRefusal == nil {
                penRebooted("the pen's STATUS says boot after the handshake", at: now)
                return
            }
            if status.fault != .none {
                let before = core.phase
                apply(core.handle(.penFault(status.fault), at: now), phaseBefore: before, at: now)
            }
        case .helloReply(let reply):
            handshake(reply, at: now)
        case .limits(let limits):
            pen.readBackLimitsCRC = limits.limitsCRC
        case .cartridge(let message):
            if message.event == .removed {
                pen.cartridge = nil
                let before = core.phase
                apply(core.handle(.cartridgeRemoved, at: now), phaseBefore: before, at: now)
            } else {
                let cartridge = CartridgeInfo(message)
                pen.cartridge = cartridge
                // Another cartridge while armed stops (H10), with or without a removal first.
                if let cartridge {
                    let before = core.phase
                    apply(core.handle(.cartridgeReported(cartridge), at: now), phaseBefore: before, at: now)
                }
            }
            hub.publish(DaemonEvent(.pen, ["cartridge": .optional(pen.cartridge?.id), "event": .string(message.event.description)]))
        case .acknowledged(let message, let status, let detail):
            if status != .ok { logger.notice("pen refused a command", metadata: ["command": "\(message.id)", "status": "\(status)", "detail": "\(detail)"]) }
            if case .setLimits = message, status != .ok { pen.readBackLimitsCRC = nil }
            resumeAckWaiters(message.id, .answered(status, detail: detail))
        case .log(let level, let text):
            logger.info("pen log", metadata: ["level": "\(level)", "text": "\(text)"])
        case .rejected(let rejection):
            metrics.rejected(reason: "\(rejection.reason)")
            logger.debug("rejected frame", metadata: ["reason": "\(rejection.reason)"])
        case .gaveUp(let message):
            // The pen stopped answering: the link counts as lost (the core stops and latches if
            // armed); a new handshake follows, and stops keep being retransmitted meanwhile.
            let before = core.phase
            apply(core.handle(.linkLost, at: now), phaseBefore: before, at: now)
            resumeAckWaiters(message.id, .noAnswer)
            if !HostLink.isStop(message) { linkRestartDue = now + .seconds(1) }
            logger.error("pen stopped answering", metadata: ["command": "\(message.id)"])
            hub.publish(DaemonEvent(.link, ["state": "not_answering", "command": .string("\(message.id)")]))
        }
    }

    /// The pen rebooted (PROTOCOL.md rule 1: FAULT `reset` once at boot, STATUS `boot`): it forgot
    /// its limits, setpoint and arm. Before this link's handshake that is just the pen starting.
    /// After it, mid-session (a brown-out, a watchdog, a power cycle, a firmware update that
    /// may speak another protocol): an armed session latches `pen_reset` (a fresh arm is needed),
    /// the reset is recorded (audit log, and the session report), and the daemon repeats the
    /// handshake and pushes the limits again by itself — the version rule (H17) runs again too.
    func penRebooted(_ why: String, at now: MonotonicInstant) {
        let handshakeDone = pen.identity != nil
        pen.readBackLimitsCRC = nil
        let before = core.phase
        apply(core.handle(.penFault(.reset), at: now), phaseBefore: before, at: now)
        guard handshakeDone else {
            logger.info("pen booted", metadata: ["why": "\(why)"])
            return
        }
        var metadata = sessionMetadata
        metadata["why"] = "\(why)"
        logger.warning("pen reset during the link: repeating the handshake and pushing the limits", metadata: metadata)
        audit("pen_reset", actor: "stippled", ["why": why, "pen_serial": pen.identity?.serial ?? "", "phase_before": before.rawValue])
        if let sessionID = core.session?.request.sessionID, core.closeReason == nil {
            let wall = clock.wallNow().secondsSince1970
            records?.submit("warning") { try $0.recordWarning("pen_reset", detail: "the pen reset (\(why)); the handshake was repeated and the limits pushed again", sessionID: sessionID, at: wall) }
        }
        hub.publish(DaemonEvent(.pen, ["state": "reset", "reason": .string(why)]))
        failAckWaiters()
        startLink(at: now)
    }

    /// HELLO_REPLY: version rule, identity, then the core pushes limits and setpoint again.
    func handshake(_ reply: Message.HelloReply, at now: MonotonicInstant) {
        let identity = PenIdentity(reply)
        pen.identity = identity
        pen.capabilities = reply.capabilities
        pen.firmware = "\(reply.fwMajor).\(reply.fwMinor).\(reply.fwPatch)"
        guard reply.protoMajor == ProtocolVersion.major else {
            let refusal = "pen speaks protocol \(reply.protoMajor).\(reply.protoMinor), stippled speaks \(ProtocolVersion.major).\(ProtocolVersion.minor)"
            pen.versionRefusal = refusal
            logger.error("pen refused: protocol mismatch", metadata: ["pen_serial": "\(identity.serial)", "detail": "\(refusal)"])
            hub.publish(DaemonEvent(.pen, ["state": "refused", "reason": .string(refusal)]))
            return
        }
        pen.versionRefusal = nil
        let wall = clock.wallNow().secondsSince1970
        let firmware = pen.firmware ?? "?"
        records?.submit("pen \(identity.serial)") { store in
            try store.recordPen(serial: identity.serial, firmware: firmware,
                                protocolVersion: "\(reply.protoMajor).\(reply.protoMinor)", at: wall)
        }
        if !reply.capabilities.contains(.cartridgeReader) { pen.cartridge = manualCartridge }
        let before = core.phase
        apply(core.handle(.penConnected(identity), at: now), phaseBefore: before, at: now)
        link?.send(.getStatus(.init()))
        if reply.capabilities.contains(.cartridgeReader) { link?.send(.readCartridge(.init())) }
        var metadata = sessionMetadata
        metadata["firmware"] = "\(firmware)"
        logger.notice("pen identified", metadata: metadata)
        if let bound = core.session?.request.penSerial, core.closeReason == nil, !Identifier.same(bound, identity.serial) {
            logger.error("wrong pen: the session is bound to another serial", metadata: ["pen_serial": "\(identity.serial)", "bound": "\(bound)"])
            hub.publish(DaemonEvent(.warning, ["kind": "wrong_pen", "detail": .string("session bound to \(bound); connected pen is \(identity.serial)")]))
        }
        hub.publish(DaemonEvent(.pen, ["state": "identified", "serial": .string(identity.serial), "firmware": .string(firmware)]))
    }

    /// The cartridge a technician typed for a pen without a reader.
    var manualCartridge: CartridgeInfo?

    // MARK: - Carrying out decisions

    /// Carries out a decision: link commands first (stops lead every decision), written out at
    /// once; then events and records. The state is persisted whenever the phase changed.
    func apply(_ decision: Decision, phaseBefore: SessionPhase?, at now: MonotonicInstant, actor: String = "stippled") {
        var wroteStops = false
        for action in decision.actions {
            switch action {
            case .stopNeedle: link?.send(.motorStop(.init()))
            case .emergencyStopPen: link?.send(.estop(.init()))
            case .disarmPen: link?.send(.disarm(.init()))
            default:
                if !wroteStops {
                    // Stops are on the wire before anything else happens.
                    wroteStops = true
                    if decision.stopsNeedle { flushStops(at: now) }
                }
                carryOut(action, at: now, actor: actor)
            }
        }
        if !wroteStops && decision.stopsNeedle { flushStops(at: now) }
        if let phaseBefore, phaseBefore != core.phase, let snapshot = core.snapshot,
           !decision.actions.contains(where: { if case .persist = $0 { true } else { false } }) {
            persist(snapshot, actor: actor)
        }
        if let phaseBefore, phaseBefore != core.phase {
            hub.publish(DaemonEvent(.state, ["phase": .string(core.phase.rawValue), "from": .string(phaseBefore.rawValue)]))
            logger.info("session state", metadata: sessionMetadata)
        }
    }

    /// The stops of a decision go on the wire now, before anything else is done about it.
    func flushStops(at now: MonotonicInstant) {
        flush(at: now)
        stopsWritten += 1
        lastStopWrittenAt = SystemClock.monotonicNow()
    }

    func carryOut(_ action: SafetyAction, at now: MonotonicInstant, actor: String) {
        let sessionID = core.session?.request.sessionID
        let wall = clock.wallNow().secondsSince1970
        switch action {
        case .stopNeedle, .emergencyStopPen, .disarmPen:
            break  // sent by `apply`
        case .pushLimits(let limits):
            pen.readBackLimitsCRC = nil
            link?.send(.setLimits(limits.message))
        case .applySetpoint(let setpoint):
            link?.send(.setSetpoints(.init(setpoint)))
        case .armPen, .recordCartridgeUse:
            break  // only arming produces these; `arm` carries them out in order (durable first)
        case .clearPenFault:
            link?.send(.clearFault(.init()))
        case .warn(let warning):
            let (kind, detail) = Self.describe(warning)
            hub.publish(DaemonEvent(.warning, ["kind": .string(kind), "detail": .string(detail)]))
            logger.warning("session warning", metadata: ["kind": "\(kind)", "detail": "\(detail)"].merging(sessionMetadata) { a, _ in a })
            records?.submit("warning") { try $0.recordWarning(kind, detail: detail, sessionID: sessionID, at: wall) }
        case .faultLatched(let reason, let detail):
            counters.faults[reason.rawValue, default: 0] += 1
            metrics.fault(reason.rawValue)
            hub.publish(DaemonEvent(.fault, ["reason": .string(reason.rawValue), "detail": .string(detail)]))
            var metadata = sessionMetadata
            metadata["fault_code"] = "\(reason.rawValue)"
            logger.error("fault latched: \(detail)", metadata: metadata)
            records?.submit("fault") { try $0.recordFault(reason.rawValue, detail: detail, sessionID: sessionID, at: wall) }
        case .sessionClosed(let reason):
            if let snapshot = core.snapshot {
                flushAggregate()
                // A session closed by its time limit closed as of that limit in the record, even
                // when the daemon noticed late (it was down at 4:00).
                let clock = snapshot.session.clock
                let closedAt = reason == .timeLimit
                    ? min(wall, clock.startedWall.secondsSince1970 + Int64(clock.elapsedAtCheckpoint.components.seconds))
                    : wall
                records?.submit("close") { try $0.closeSession(snapshot, reason: reason, at: closedAt, actor: actor) }
            }
            hub.publish(DaemonEvent(.session, ["state": "closed", "reason": .string(reason.rawValue), "session_id": .optional(sessionID)]))
            logger.notice("session closed", metadata: ["reason": "\(reason.rawValue)"].merging(sessionMetadata) { a, _ in a })
        case .persist(let snapshot):
            persist(snapshot, actor: actor)
        }
    }

    func persist(_ snapshot: SessionSnapshot, actor: String) {
        let wall = clock.wallNow().secondsSince1970
        records?.submit("persist") { try $0.persist(snapshot, at: wall, actor: actor) }
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

    // MARK: - Waiting for the pen

    /// An answer expected from the pen, registered before the command goes out, so that an ACK
    /// arriving before the waiter resumes is never lost.
    final class AckTicket: Sendable {
        let id: MessageID
        private let state = Mutex<(outcome: AckOutcome?, waiter: CheckedContinuation<AckOutcome, Never>?)>((nil, nil))

        init(_ id: MessageID) { self.id = id }

        func complete(_ outcome: AckOutcome) {
            let waiter = state.withLock { state -> CheckedContinuation<AckOutcome, Never>? in
                guard state.outcome == nil else { return nil }
                state.outcome = outcome
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: outcome)
        }

        var isComplete: Bool { state.withLock { $0.outcome != nil } }

        func outcome() async -> AckOutcome {
            await withCheckedContinuation { continuation in
                let done = state.withLock { state -> AckOutcome? in
                    if let outcome = state.outcome { return outcome }
                    state.waiter = continuation
                    return nil
                }
                if let done { continuation.resume(returning: done) }
            }
        }
    }

    /// Registers for the pen's answer to the next `id` command; times out with `.noAnswer`.
    func expectAck(_ id: MessageID) -> AckTicket {
        let ticket = AckTicket(id)
        ackTickets.append(ticket)
        let timeout = settings.ackTimeout
        Task {
            try? await Task.sleep(for: timeout)
            ticket.complete(.noAnswer)
        }
        return ticket
    }

    func resumeAckWaiters(_ id: MessageID, _ outcome: AckOutcome) {
        ackTickets.removeAll { $0.isComplete }
        guard let index = ackTickets.firstIndex(where: { $0.id == id }) else { return }
        ackTickets.remove(at: index).complete(outcome)
    }

    func failAckWaiters() {
        let tickets = ackTickets
        ackTickets.removeAll()
        for ticket in tickets { ticket.complete(.noAnswer) }
    }

    /// Waits until every record submitted so far is on disk (tests, shutdown).
    public func flushRecords() async {
        try? await records?.barrier().durable()
    }

    // MARK: - Telemetry for people

    func aggregateTelemetry(_ telemetry: Message.Telemetry, sample: TelemetrySample, at now: MonotonicInstant) {
        guard let session = core.session, core.closeReason == nil else { return }
        let second = session.clock.elapsed(at: now).wholeSeconds
        let id = session.request.sessionID
        if let current = aggregate, current.sessionID != id || current.data.sessionSecond != Int64(second) { flushAggregate() }
        if aggregate == nil { aggregate = (id, TelemetryAggregate(sessionSecond: Int64(second))) }
        aggregate?.data.add(
            depthUm: sample.peakProtrusionUm, rateHz: sample.strokeRateHz,
            currentMa: telemetry.motorCurrentMa == 0xFFFF ? nil : Double(telemetry.motorCurrentMa),
            temperatureC: telemetry.temperatureDc == Int16.min ? nil : Double(telemetry.temperatureDc) / 10)
    }

    func flushAggregate() {
        guard let current = aggregate else { return }
        aggregate = nil
        // Per-second telemetry is not kept for a retry on a full disk (it would grow without
        // bound); faults, stops and the session's state are.
        records?.submit("telemetry", retry: false) { try $0.recordTelemetry(current.data, sessionID: current.sessionID) }
    }

    /// Built by hand, not through `JSONEncoder`: this runs for every frame a stream takes (1 kHz
    /// for an engineer's full-rate stream), on the supervisor's thread. Keys sorted, as every event.
    func publishTelemetry(_ telemetry: Message.Telemetry, sample: TelemetrySample, at now: MonotonicInstant) {
        hub.publishTelemetry {
            Self.telemetryJSON(sample: sample,
                               currentMa: telemetry.motorCurrentMa == 0xFFFF ? nil : Int(telemetry.motorCurrentMa),
                               temperatureC: telemetry.temperatureDc == Int16.min ? nil : Double(telemetry.temperatureDc) / 10,
                               sessionTimeMs: Int64(core.sessionElapsed(at: now).milliseconds))
        }
    }

    static func telemetryJSON(sample: TelemetrySample, currentMa: Int?, temperatureC: Double?, sessionTimeMs: Int64) -> String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return "\(value)"
        }
        let current = currentMa.map { "\($0)" } ?? "null"
        let depth = sample.peakProtrusionUm.map { "\($0)" } ?? "null"
        return #"{"current_ma":\#(current),"depth_um":\#(depth),"motor_on":\#(sample.motorOn),"pedal":\#(sample.pedalPressed),"#
            + #""rate_hz":\#(number(sample.strokeRateHz)),"session_time_ms":\#(sessionTimeMs),"#
            + #""temperature_c":\#(number(temperatureC)),"type":"telemetry"}"#
    }

    // MARK: - Operator presence

    /// The real monotonic clock: presence stays on real time under an accelerated simulator.
    func presenceNow() -> MonotonicInstant { SystemClock.monotonicNow() }

    /// An event stream opened by `holder` (client id and the peer credentials of its connection):
    /// its id, which the stream hands back when it closes.
    public func presenceOpened(_ holder: PresenceTable.Holder) -> ConnectionID {
        presence.open(holder, at: presenceNow())
    }

    /// An event stream closed. If it held the lease, the lease is lost now: the needle stops.
    public func presenceClosed(_ id: ConnectionID) {
        guard let lost = presence.close(id) else { return }
        clientLost(lost, why: "its event stream closed")
    }

    /// A sign of life from `holder` (`POST /v1/presence`). False when the holder has no event
    /// stream: a ping alone keeps nothing alive.
    @discardableResult
    public func ping(_ holder: PresenceTable.Holder) -> Bool {
        presence.sign(holder, at: presenceNow()) > 0
    }

    /// The lease holder is gone: the core stops the needle and latches `operator_lost`.
    func clientLost(_ id: ConnectionID, why: String) {
        let now = stamp(inputNow())
        let before = core.phase
        logger.warning("operator presence lost", metadata: ["connection": "\(id.value)", "why": "\(why)"])
        apply(core.handle(.clientDisconnected(id), at: now), phaseBefore: before, at: now)
    }

    /// Run on every tick: a lease holder silent past the window loses the lease; a lease binds
    /// only while the session is armed.
    func checkPresence() {
        if core.phase != .armed && core.phase != .running && core.phase != .paused {
            presence.release()
            return
        }
        if let lost = presence.expire(at: presenceNow()) {
            clientLost(lost, why: "no sign of life within \(presence.window.clockText)")
        }
    }

    // MARK: - Shutdown

    /// SIGTERM: stop the needle and disarm (waiting briefly for the pen to acknowledge), then
    /// make every record durable.
    public func shutdown() async {
        guard !shuttingDown else { return }
        shuttingDown = true
        notifier.notify("STOPPING=1\nSTATUS=stopping the needle, disarming, flushing the records")
        let now = stamp(inputNow())
        let before = core.phase
        apply(core.handle(.disarm, at: now), phaseBefore: before, at: now)
        if link != nil {
            for _ in 0..<20 where !(link?.isIdle ?? true) {
                try? await Task.sleep(for: .milliseconds(10))
                flush(at: stamp(inputNow()))
            }
        }
        if let snapshot = core.snapshot { persist(snapshot, actor: "stippled") }
        flushAggregate()
        try? await records?.barrier().durable()
        // A clean shutdown leaves nothing in the -wal: stipple.db alone is then whole (item 12).
        try? await records?.submit("checkpoint") { try $0.checkpoint() }.durable()
        transport?.close()
        transport = nil
        hub.finishAll()
        logger.notice("stopped: needle stopped, pen disarmed, records flushed")
    }
}
