import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import StippleDaemon
import StippleRecords
import StippleSafety
import StippleTransport

/// Builds and runs the services of one daemon.
struct Daemon {
    let configuration: DaemonConfiguration

    func run() async throws {
        var logger = Logger(label: "stippled")
        logger.logLevel = configuration.logLevel
        try FileManager.default.createDirectory(atPath: configuration.stateDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o750])
        try FileManager.default.createDirectory(atPath: (configuration.socketPath as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])

        let clock: any DaemonClock = switch configuration.clock {
        case .real: SystemClock()
        case .accelerated(let factor): try AcceleratedClock(factor: factor, stateFile: "\(configuration.stateDirectory)/virtual-clock")
        }

        // The records: a file that cannot be opened or fails its checks is reported, never
        // replaced; the daemon still runs (it can report and stop) but refuses to arm.
        var problems: [String] = []
        var records: RecordStore?
        do {
            let store = try RecordStore(path: configuration.databasePath)
            if case .damaged(let damage) = store.health { problems += damage }
            records = store
        } catch {
            problems.append("\(error)")
        }
        for problem in problems { logger.critical("records cannot be trusted: arming is refused", metadata: ["problem": "\(problem)"]) }

        let hub = EventHub()
        let supervisor = try Supervisor(
            clock: clock, settings: .init(limits: configuration.limits), records: records.map(RecordWriter.init),
            recordsProblems: problems, hub: hub, logger: logger)
        await supervisor.start()

        let penService: any Service
        switch configuration.pen {
        case .serial(let path):
            penService = PenLinkService(supervisor: supervisor, clock: clock, logger: logger) {
                // Tapped for `stipplectl trace`; releasable to `stipplectl selftest`.
                supervisor.bringUp.tapped(try SerialPort(path: path), releasable: true)
            }
        case .sim(let scenario):
            penService = try SimPenService(supervisor: supervisor, clock: clock, scenarioPath: scenario, logger: logger)
        case .auto:
            penService = DiscoveryPenService(
                supervisor: supervisor, clock: clock, logger: logger, matcher: configuration.discovery.matcher,
                open: { path in supervisor.bringUp.tapped(try SerialPort(path: path), releasable: true) })
        case .gpio:
            // validate() refused `--pen gpio` without the `gpio` section.
            guard let gpio = configuration.gpio else { throw ExitCode(78) }
            penService = GPIOPenService(supervisor: supervisor, clock: clock, settings: gpio, logger: logger)
        }

        let policy = RolePolicy(technicianGroup: configuration.technicianGroup, engineerGroup: configuration.engineerGroup)
        let socket = configuration.socketPath
        let readyLogger = logger
        let api = try APIServer(socketPath: socket, policy: policy, supervisor: supervisor, records: records, logger: logger)
            .application {
                readyLogger.notice("stippled ready", metadata: [
                    "socket": "\(socket)", "pen": "\(configuration.pen)", "clock": "\(clock.description)",
                    "records": "\(configuration.databasePath)",
                ])
                print("""
                    stippled: listening on \(socket) (pen \(configuration.pen), clock \(clock.description))
                    try:  curl --unix-socket \(socket) http://localhost/v1/status
                    """)
            }

        // Services shut down in reverse order: the guard (last) stops the needle, disarms and
        // flushes the records before the API and the pen link go down.
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: penService),
                .init(service: api),
                .init(service: ShutdownGuard(supervisor: supervisor)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
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
