import Logging
import StippleAPI
import StippleLink
import StippleRecords
import StippleSafety
import StippleSupervision
import StippleTransport
import StippleWire
import Synchronization

/// The shell around `SupervisorCore`: the one owner of the link, the transport and the records'
/// writer. Every input — pen bytes, link events, API commands, client presence, timer ticks,
/// record outcomes — arrives here, one at a time (an actor on its own thread), is stamped with the
/// clocks' readings and handed to the core; the effects it returns are carried out in order (stops
/// first: the core puts them first).
///
/// **The stop path** (docs/architecture.md): `received(_:at:)` → `HostLink.receive` →
/// `SupervisorCore.penEvent` → `SafetyCore.handle(.telemetry)` → effects `[.send(.motorStop),
/// .flush(stops: true), …]` → `HostLink.send` → `flush` → `PenTransport.write`. All synchronous
/// inside one actor call: no await, no disk I/O between the frame and the stop frame.
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

        var core: SupervisorCore.Settings {
            var settings = SupervisorCore.Settings(limits: limits, configuredLimits: configuredLimits)
            settings.presenceTimeout = presenceTimeout
            settings.ackTimeout = ackTimeout
            return settings
        }
    }

    typealias Effect = SupervisorCore.Effect
    typealias CommandID = SupervisorCore.CommandID
    /// Called with a command's answer and the status read at that moment.
    typealias Waiter = @Sendable (Result<SupervisorCore.Answer, CommandError>, StatusView) -> Void

    let clock: any DaemonClock
    let settings: Settings
    let records: RecordWriter?
    public nonisolated let hub: EventHub
    /// The engineers' tap on the link and the serial port's release gate (Supervisor+BringUp).
    public nonisolated let bringUp = BringUp()
    let logger: Logger
    /// systemd's watchdog is fed from `step`: a hung supervisor stops feeding it.
    public nonisolated let notifier: SystemdNotifier
    /// The supervisor's own thread (its executor), which also reads a serial pen.
    public nonisolated let loop: SupervisorLoop
    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    /// Every decision.
    var machine: SupervisorCore
    /// The link to the pen: `HostLink` for a serial pen, `GPIOPenLink` for a GPIO pen.
    var link: (any PenLink)?
    /// Makes the link for each new connection (set by `attach`).
    var makeLink: @Sendable () -> any PenLink = { HostLink() }
    var transport: (any PenTransport)?
    var aggregate: (sessionID: String, data: TelemetryAggregate)?
    var shuttingDown = false
    /// When the records were last retried while unwritable (real time).
    var lastRecordsRetry = MonotonicInstant.zero
    var metrics = DaemonMetrics()
    /// Stops written to the pen so far, and when the last one was (the stop path's latency is
    /// measured per pen read, up to the write).
    var stopsWritten = 0
    var lastStopWrittenAt = MonotonicInstant.zero
    var waiters: [CommandID: Waiter] = [:]
    /// When the real-time wake-up for a waiting command is due, if one is scheduled.
    var realTimeWake: MonotonicInstant?
    var nextCommand: UInt64 = 1
    /// The clinic's claims (docs/fleet.md), when this workstation is one of a clinic's.
    var clinic: (any ClinicClaims)?
    /// Stop answers leave the supervisor's thread here: writing one to a slow socket may wait.
    nonisolated let answers = SerialWorker(name: "stipple-answers")

    /// The safety core as the supervisor's core holds it (status, tests).
    var core: SafetyCore { machine.safety }
    var pen: PenView { machine.pen }
    var recordsProblems: [String] { machine.recordsProblems }
    var recordsInconsistencies: [String] { machine.recordsInconsistencies }

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
        let reading = clock.now()
        machine = try SupervisorCore(
            settings: settings.core, history: history, restore: restore, recordsOpen: records != nil,
            recordsProblems: problems, recordsInconsistencies: inconsistencies, bootID: clock.bootID,
            at: .init(reading: reading, real: SystemClock.monotonicNow(), wall: clock.wallNow()))
    }

    /// Carries out what restoring the last session decided (records, events), and faults a
    /// start whose records cannot be written.
    public func start() {
        let unwritable = records?.unwritableReason
        run(machine.start(recordsUnwritable: unwritable, at: now()))
    }

    // MARK: - Time and effects

    /// The clocks' readings for an input at `reading` (a pen frame's read time, a tick), or, for an
    /// input that carries none, now — under the simulator's accelerated clock the latest time the
    /// simulation reached (`SupervisorCore.inputReading`).
    func now(reading: MonotonicInstant? = nil) -> SupervisorCore.Now {
        let clockNow = clock.now()
        return .init(reading: reading ?? SupervisorCore.inputReading(clockNow: clockNow, lastReading: machine.lastReading,
                                                               accelerated: clock.isAccelerated),
                     clockNow: clockNow, real: SystemClock.monotonicNow(), wall: clock.wallNow())
    }

    /// The core's time, advanced to now (status, link polls).
    func stamp() -> MonotonicInstant {
        let (time, effects) = machine.advance(now())
        run(effects)
        return time
    }

    /// Carries out the core's effects, in order.
    func run(_ effects: [Effect]) {
        for effect in effects {
            switch effect {
            case .send(let message):
                link?.send(message)
            case .flush(let stops):
                flush()
                if stops {
                    stopsWritten += 1
                    lastStopWrittenAt = SystemClock.monotonicNow()
                }
            case .newLink:
                link = makeLink()
                metrics.linksOpened.increment()
            case .record(let id, let request):
                submit(id, request)
            case .publish(let event):
                hub.publish(event)
            case .log(let line):
                log(line)
            case .answer(let id, let result):
                if let waiter = waiters.removeValue(forKey: id) { waiter(result, status()) }
            }
        }
        wakeForRealTimeDeadline()
    }

    /// A command waiting on the pen in real time (an ACK, fresh telemetry) is woken at its
    /// deadline even when nothing else comes: a pen that went quiet, a rig that does not tick.
    func wakeForRealTimeDeadline() {
        guard let deadline = machine.nextRealDeadline else { return }
        if let scheduled = realTimeWake, scheduled <= deadline { return }
        realTimeWake = deadline
        let delay = max(deadline - SystemClock.monotonicNow(), .milliseconds(1))
        // Default priority: high-priority jobs take the loop's urgent lane, which is the stops'.
        Task {
            try? await Task.sleep(for: delay)
            self.realTimeDue()
        }
    }

    func realTimeDue() {
        realTimeWake = nil
        run(machine.realTimePassed(at: now()))
    }

    func log(_ line: SupervisorCore.LogLine) {
        let level: Logger.Level = switch line.level {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
        logger.log(level: level, "\(line.message)", metadata: line.metadata.mapValues { .string($0) })
    }

    /// Runs `command` in the core and returns its answer with the status read when it came.
    func perform(_ command: SupervisorCore.Command) async -> (Result<SupervisorCore.Answer, CommandError>, StatusView) {
        await withCheckedContinuation { continuation in
            perform(command) { result, status in continuation.resume(returning: (result, status)) }
        }
    }

    func perform(_ command: SupervisorCore.Command, then waiter: @escaping Waiter) {
        let id = CommandID(nextCommand)
        nextCommand += 1
        waiters[id] = waiter
        run(machine.command(id, command, at: now()))
    }

    var sessionMetadata: Logger.Metadata { machine.sessionMetadata.mapValues { .string($0) } }

    // MARK: - Operator presence

    /// An event stream opened by `holder` (client id and the peer credentials of its connection):
    /// its id, which the stream hands back when it closes.
    public func presenceOpened(_ holder: PresenceTable.Holder) -> ConnectionID {
        machine.presenceOpened(holder, at: now())
    }

    /// An event stream closed. If it held the lease, the lease is lost now: the needle stops.
    public func presenceClosed(_ id: ConnectionID) {
        run(machine.presenceClosed(id, at: now()))
    }

    /// A sign of life from `holder` (`POST /v1/presence`). False when the holder has no event
    /// stream: a ping alone keeps nothing alive.
    @discardableResult
    public func ping(_ holder: PresenceTable.Holder) -> Bool {
        machine.ping(holder, at: now())
    }

    // MARK: - Shutdown

    /// SIGTERM: stop the needle and disarm (waiting briefly for the pen to acknowledge), then
    /// make every record durable.
    public func shutdown() async {
        guard !shuttingDown else { return }
        shuttingDown = true
        notifier.notify("STOPPING=1\nSTATUS=stopping the needle, disarming, flushing the records")
        run(machine.shutdown(at: now()))
        if link != nil {
            for _ in 0..<20 where !(link?.isIdle ?? true) {
                try? await Task.sleep(for: .milliseconds(10))
                _ = stamp()
                flush()
            }
        }
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
