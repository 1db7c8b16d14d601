import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import StippleClinicDatabase
import StippleDaemon
import StippleRecords
import StippleRequests
import StippleSim
import StippleTransport

/// `stippled`: the Stipple daemon. A thin composition root: it reads the configuration, opens the
/// records, builds the supervisor, picks the pen backend (serial, or the simulator as its `sim`
/// backend), and runs the pen link, the API and the shutdown guard as services.
@main
struct Stippled: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stippled",
        abstract: "The Stipple daemon: drives an SMP pen safely and serves the local API.",
        subcommands: [Run.self, VerifyAudit.self, Backup.self, Restore.self],
        defaultSubcommand: Run.self)
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "The configuration file (default /etc/stipple/stippled.json if it exists).")
    var config: String?

    @Option(help: "The state directory holding stipple.db (overrides the configuration).")
    var stateDir: String?

    /// The configuration from the file and flags, or exit 78 listing every problem.
    func load(extra: (inout DaemonConfiguration, inout [DaemonConfiguration.Problem]) -> Void = { _, _ in }) throws -> DaemonConfiguration {
        var configuration = DaemonConfiguration()
        var problems: [DaemonConfiguration.Problem] = []
        let path = config ?? (FileManager.default.fileExists(atPath: DaemonConfiguration.systemConfigPath) ? DaemonConfiguration.systemConfigPath : nil)
        if let path {
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                if let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] {
                    // A setting given twice would be read as one of the two: refused, named.
                    switch DuplicateKeys.find(in: data) {
                    case .duplicate(let field): problems.append(.init(field: field, value: "given twice", allowed: "each setting once"))
                    case .tooDeep(let field): problems.append(.init(field: field, value: "nested too deep", allowed: "at most \(DuplicateKeys.maximumDepth) levels"))
                    case nil: break
                    }
                    configuration.apply(file: object, source: path, problems: &problems)
                } else {
                    problems.append(.init(field: "(file)", value: path, allowed: "a JSON object"))
                }
            } catch {
                problems.append(.init(field: "(file)", value: path, allowed: "a readable JSON file (\(error.localizedDescription))"))
            }
        }
        if let stateDir { configuration.stateDirectory = stateDir }
        extra(&configuration, &problems)
        problems += configuration.validate()
        // A scenario file is the simulator's business: it must decode, like the rest.
        if case .sim(let scenario?) = configuration.pen, FileManager.default.fileExists(atPath: scenario) {
            do { _ = try Scenario.load(path: scenario) } catch {
                problems.append(.init(field: "pen", value: "sim:\(scenario)", allowed: "a scenario file that decodes (\(error))"))
            }
        }
        // The clinic's connection file holds a password: it must exist, parse, and be the
        // daemon's own (docs/fleet.md).
        if let clinic = configuration.clinic, clinic.connectionFile.hasPrefix("/"),
           case .failure(let error) = ClinicConnection.load(path: clinic.connectionFile, owner: geteuid()) {
            problems += error.problems.map { .init(field: "clinic.connection_file \($0.field)", value: $0.value, allowed: $0.allowed) }
        }
        guard problems.isEmpty else {
            var stderr = FileHandle.standardError
            print("stippled: the configuration is invalid; nothing was started:", to: &stderr)
            for problem in problems { print("  - \(problem)", to: &stderr) }
            StartupRefusal.note("the configuration is invalid: " + problems.map(\.description).joined(separator: "; "))
            throw ExitCode(78)  // EX_CONFIG
        }
        return configuration
    }
}

extension FileHandle: @retroactive TextOutputStream {
    public func write(_ string: String) { write(Data(string.utf8)) }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon in the foreground (the default).")

    @OptionGroup var common: CommonOptions

    @Option(help: "The pen: sim, sim:SCENARIO.json, or serial:/dev/serial/by-id/... (or a pty).")
    var pen: String?

    @Option(help: "The API socket path.")
    var socket: String?

    @Option(help: "real, or accelerated=N (N times real time; only with --pen sim).")
    var clock: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Option(help: "The technician's console files to serve at /console/ (default: the installed copy, PREFIX/share/stipple/console).")
    var consoleDir: String?

    @Option(help: "SCHED_FIFO priority of the supervisor's thread, 0...99 (0: normal scheduling; default 10).")
    var realtimePriority: Int?

    func run() async throws {
        do { try await start() } catch let exit as ExitCode where exit == ExitCode(78) {
            // Where the console's bridge looks when it cannot reach the daemon.
            StartupRefusal.record(besideSocket: socket ?? DaemonConfiguration().socketPath)
            throw exit
        }
    }

    func start() async throws {
        let configuration = try common.load { configuration, problems in
            if let realtimePriority { configuration.realtimePriority = realtimePriority }
            if let pen { configuration.applyPen(pen, problems: &problems) }
            if let socket { configuration.socketPath = socket }
            if let clock { configuration.applyClock(clock, problems: &problems) }
            if let logLevel { configuration.applyLogLevel(logLevel, problems: &problems) }
            if let consoleDir { configuration.consoleDirectory = consoleDir }
        }
        try await Daemon(configuration: configuration).run()
    }
}
