import ArgumentParser
import Foundation
import Logging
import Metrics
import PostgresNIO
import Prometheus
import ServiceLifecycle
import StippleClinic
import StippleClinicDatabase
import StippleDaemon
import StippleRecords
import StippleSafety
import StippleSimBackend
import StippleTransport

/// Builds and runs the services of one daemon.
struct Daemon {
    let configuration: DaemonConfiguration

    func run() async throws {
        // Under systemd, logs go to the journal with priorities and structured fields.
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = JournalLogHandler.isAvailable ? JournalLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "stippled")
        logger.logLevel = configuration.logLevel
        let notifier = SystemdNotifier()
        // Metrics go to a Prometheus registry, served at /metrics (docs/deploy.md).
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(10), .microseconds(20), .microseconds(50), .microseconds(100), .microseconds(200), .microseconds(500), .milliseconds(1),
            .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(250),
        ]
        MetricsSystem.bootstrap(factory)
        let exportMetrics: @Sendable () -> [UInt8] = { registry.emitToBuffer() }
        try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o750])
        try FileManager.default.createDirectory(atPath: (configuration.socketPath as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])

        // A state directory others may write to could have its records replaced: refused.
        try StartupChecks.stateDirectoryIsPrivate(configuration.stateDirectory)

        // One daemon per state directory: two would each keep their own copy of the history and
        // defeat the gap rule and the cartridge ledger between them.
        let lock = try StateDirectoryLock(directory: configuration.stateDirectory)

        let clock: any DaemonClock = switch configuration.clock {
        case .real: SystemClock()
        case .accelerated(let factor): try AcceleratedClock(factor: factor, stateFile: "\(configuration.stateDirectory)/virtual-clock")
        }

        // The records: a file that cannot be opened or fails its checks is reported, never
        // replaced; the daemon still runs (it can report and stop) but refuses to arm.
        var problems: [String] = []
        var records: RecordStore?
        // Once records exist in this state directory, a missing database is an alarm, never a
        // fresh start (the marker says records were made here).
        let marker = configuration.stateDirectory + "/.records-created"
        // The newest audit head a witness outside the database saw: the chain must contain it
        // (a truncated tail, an old copy, a lost -wal are caught here; `AuditWitness`).
        let witnessed = AuditWitness.witnessed(stateDirectory: configuration.stateDirectory)
        var inconsistencies: [String] = []
        do {
            let mayCreate = !FileManager.default.fileExists(atPath: marker) && witnessed == nil
            let store = try RecordStore(path: configuration.databasePath, mayCreate: mayCreate)
            if case .damaged(let damage) = store.health { problems += damage }
            if let witnessed {
                store.expect(witnessed)
                do {
                    if let problem = try store.missing(witnessed) { inconsistencies.append(problem) }
                } catch {
                    inconsistencies.append("the audit log cannot be compared with its witness: \(error)")
                }
            }
            records = store
            StartupChecks.makePrivate(configuration.databasePath)
            if !FileManager.default.fileExists(atPath: marker) {
                _ = FileManager.default.createFile(atPath: marker, contents: Data("records created here; if stipple.db is missing, restore it\n".utf8))
            }
        } catch {
            problems.append("\(error)")
        }
        for problem in problems { logger.critical("records cannot be trusted: arming is refused", metadata: ["problem": "\(problem)"]) }
        let witness = AuditWitness(stateDirectory: configuration.stateDirectory, logger: logger)

        // Limits an engineer tightened at run time stay in force across restarts, even in the
        // middle of a session: the tightest of those (kept in the records) and the configuration's.
        // Stored limits that cannot be read or verified refuse the start (exit 78): never looser.
        let limits = try StartupChecks.limitsInForce(configuration: configuration, records: records, logger: logger)
        let settings = Supervisor.Settings(limits: limits, configuredLimits: configuration.limits)

        // The stop path's thread: real-time when allowed — never on the simulated clock, whose
        // simulator runs flat out on this thread and would hold a core at real-time priority.
        let loop = SupervisorLoop(realtimePriority: clock.isAccelerated ? 0 : configuration.realtimePriority)
        switch loop.scheduling {
        case .refused: logger.warning("the supervisor's thread runs at normal priority", metadata: ["scheduling": "\(loop.scheduling)"])
        default: logger.info("the supervisor's thread", metadata: ["scheduling": "\(loop.scheduling)"])
        }
        var realtime = 0
        if case .realtime(let priority) = loop.scheduling { realtime = priority }
        Gauge(label: "stipple_supervisor_realtime_priority").record(realtime)

        let hub = EventHub()
        let writerPriority = clock.isAccelerated ? 0 : max(0, configuration.realtimePriority - 1)
        let writer = records.map { RecordWriter(store: $0, witness: witness, realtimePriority: writerPriority) }
        // A disk that takes no writes now (full): the daemon starts faulted, never armable, and
        // arms again once writes land (the supervisor retries about once a second).
        if let records {
            do { try records.probeWrite(at: clock.wallNow().secondsSince1970) } catch {
                logger.critical("the records cannot be written: starting faulted", metadata: ["error": "\(error)"])
                writer?.startedUnwritable("the probe write at start failed: \(error)")
            }
        }
        let supervisor = try Supervisor(
            clock: clock, settings: settings, records: writer,
            recordsProblems: problems, recordsInconsistencies: inconsistencies, hub: hub, logger: logger, notifier: notifier, loop: loop)
        await supervisor.start()

        let penService: any Service
        var simulator: (any SimulatedPenControl)?
        switch configuration.pen {
        case .serial(let path):
            penService = PenLinkService(supervisor: supervisor, clock: clock, logger: logger) {
                // Tapped for `stipplectl trace`; releasable to `stipplectl selftest`.
                supervisor.bringUp.tapped(try SerialPort(path: path), releasable: true)
            }
        case .sim(let scenario):
            let sim = try SimPenService(supervisor: supervisor, clock: clock, scenarioPath: scenario, logger: logger)
            penService = sim
            simulator = sim
        case .auto:
            penService = DiscoveryPenService(
                supervisor: supervisor, clock: clock, logger: logger, matcher: configuration.discovery.matcher,
                open: { path in supervisor.bringUp.tapped(try SerialPort(path: path), releasable: true) })
        case .gpio:
            // validate() refused `--pen gpio` without the `gpio` section.
            guard let gpio = configuration.gpio else {
                StartupRefusal.note("pen gpio needs the configuration's gpio section")
                throw ExitCode(78)
            }
            penService = GPIOPenService(supervisor: supervisor, clock: clock, settings: gpio, logger: logger)
        }

        let policy = RolePolicy(technicianGroup: configuration.technicianGroup, engineerGroup: configuration.engineerGroup)
        let socket = configuration.socketPath
        let readyLogger = logger
        var server = APIServer(socketPath: socket, policy: policy, supervisor: supervisor, records: records, logger: logger)
        server.metrics = exportMetrics
        server.simulator = simulator
        do {
            server.console = try ConsoleFiles.locate(configured: configuration.consoleDirectory, executable: "/proc/self/exe")
            if let directory = server.console.directory {
                logger.info("serving the console at /console/", metadata: ["directory": "\(directory)"])
            } else {
                logger.notice("no console files found: /console/ answers 404 (make install, or console_dir)")
            }
        } catch {
            // A console named in the configuration that cannot be served is a configuration error.
            logger.critical("the console cannot be served", metadata: ["error": "\(error)"])
            StartupRefusal.note("the console cannot be served: \(error)")
            throw ExitCode(78)
        }
        let simulatorPresent = simulator != nil
        let api = try server.application {
                StartupRefusal.clear(besideSocket: socket)
                readyLogger.notice("stippled ready", metadata: [
                    "socket": "\(socket)", "pen": "\(configuration.pen)", "clock": "\(clock.description)",
                    "records": "\(configuration.databasePath)",
                ])
                notifier.notify("READY=1\nSTATUS=listening on \(socket), pen \(configuration.pen)")
                if !notifier.isActive {
                    print("""
                        stippled: listening on \(socket) (pen \(configuration.pen), clock \(clock.description))
                        try:  curl --unix-socket \(socket) http://localhost/v1/status
                        the technician's console in a browser:  stipplectl console --socket \(socket)
                        """)
                    if simulatorPresent {
                        print("the simulated pen's pedal and faults: stipplectl sim pedal on | sim fault over_depth (README: a session on the simulated pen)")
                    }
                }
            }

        // Services shut down in reverse order: the guard (last) stops the needle, disarms and
        // flushes the records before the API and the pen link go down.
        // Stops have a socket of their own beside the API's, with capacity no API load can take.
        let stopSocket = StopSocket(path: StopSocket.path(besideAPISocket: socket), policy: policy, supervisor: supervisor, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: penService), .init(service: StopSocketService(socket: stopSocket, group: configuration.technicianGroup)), .init(service: api),
        ]
        if let port = configuration.metricsPort {
            services.append(.init(service: LoopbackMetricsServer.application(port: port, metrics: exportMetrics, logger: logger)))
        }
        if let path = configuration.metricsTextfile {
            services.append(.init(service: MetricsTextfileService(path: path, metrics: exportMetrics, logger: logger)))
        }
        services += try await clinicServices(supervisor: supervisor, records: records, clock: clock, logger: logger)
        services.append(.init(service: ShutdownGuard(supervisor: supervisor)))
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        withExtendedLifetime(lock) {}
    }
}

extension Daemon {
    /// A workstation of a clinic (docs/fleet.md): the database's client, the claims the supervisor
    /// makes before a session opens, and the shipper of the audit chain. Nothing of it is on the
    /// stop path; a database away changes only whether new sessions open (the offline policy).
    func clinicServices(supervisor: Supervisor, records: RecordStore?, clock: any DaemonClock,
                        logger: Logger) async throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        guard let settings = configuration.clinic else { return [] }
        // Checked at start (exit 78); read again here, as the daemon runs with it.
        let connection = try ClinicConnection.load(path: settings.connectionFile, owner: geteuid()).get()
        var clinicLogger = logger
        clinicLogger[metadataKey: "clinic"] = "\(connection.user)@\(connection.host):\(connection.port)/\(connection.database)"
        var quiet = clinicLogger
        quiet.logLevel = .error
        let client = PostgresClient(configuration: try connection.clientConfiguration(), backgroundLogger: quiet)
        // What decides a release is whether this workstation's own records hold the session (or
        // the cartridge's use): never what was remembered of a call.
        let clinic = PostgresClinic(
            client: client, policy: settings.offline, timeout: .milliseconds(settings.claimTimeoutMs), logger: clinicLogger,
            // A read that fails counts as "held": a claim is never given back on a doubt.
            sessionRecorded: { id in records.map { (try? $0.hasSession(id)) ?? true } ?? true },
            cartridgeRecorded: { id in records.map { (try? $0.hasCartridgeUse(id)) ?? true } ?? true })
        await supervisor.useClinic(clinic)
        clinicLogger.info("this workstation is one of a clinic's: sessions and cartridges are claimed there first",
                          metadata: ["offline_policy": "\(settings.offline.rawValue)"])
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: client)]
        if let records {
            services.append(.init(service: AuditShipper(
                client: client, store: records, clinic: clinic, interval: .milliseconds(settings.shipIntervalMs),
                wallNow: { clock.wallNow().secondsSince1970 },
                gapSeconds: {
                    let limits = await supervisor.limits
                    return (Int64(limits.minimumSessionGap.wholeSeconds), Int64(limits.sessionLength.wholeSeconds))
                },
                logger: clinicLogger)))
        }
        return services
    }
}

/// Waits for SIGTERM/SIGINT, then stops the needle, disarms and flushes the records — first,
/// before anything else shuts down.
struct ShutdownGuard: Service {
    let supervisor: Supervisor

    func run() async throws {
        try? await gracefulShutdown()
        await supervisor.shutdown()
    }
}
