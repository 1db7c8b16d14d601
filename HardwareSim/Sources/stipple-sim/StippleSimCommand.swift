import ArgumentParser
import Foundation
import StippleConformance
import StippleSim
import StippleTransport
import StippleWire

@main
struct StippleSimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stipple-sim",
        abstract: "A firmware-faithful simulated SMP pen, with fault injection and scenarios.",
        discussion: """
            The simulated pen implements the pen side of Firmware-protocol/PROTOCOL.md: the handshake, \
            acknowledgements and duplicate suppression, limits with checksum, and every pen-side safety \
            rule (depth trip, stroke-rate window, host-heartbeat deadman, boot disarmed, arm plus pedal, \
            latching e-stop). Faults are described by `stipple-sim list-faults`; scenario files by \
            HardwareSim/README.md.
            """,
        subcommands: [Serve.self, Run.self, ListFaults.self, ListScenarios.self, Conformance.self],
        defaultSubcommand: nil
    )
}

struct ListFaults: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the faults that can be injected, with their parameters.")

    func run() {
        for entry in FaultCatalogue.entries {
            print(entry.name)
            print("    \(entry.summary)")
            if !entry.parameters.isEmpty { print("    parameters: \(entry.parameters)") }
        }
    }
}

struct ListScenarios: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the scenarios in a folder with the hazards they cover.")

    @Option(help: "Folder of scenario files.")
    var dir: String = ScenarioFiles.defaultDirectory

    func run() throws {
        for path in try ScenarioFiles.list(dir) {
            let scenario = try Scenario.load(path: path)
            let hazards = scenario.hazards.isEmpty ? "-" : scenario.hazards.joined(separator: ",")
            print("\(scenario.name) [\(hazards)] \(scenario.duration.milliseconds) ms")
            print("    \(scenario.description)")
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run scenarios on the in-process simulator (virtual time) and check their expectations.",
        discussion: "Exits with status 1 if any expectation fails. With no file, runs every scenario in --dir."
    )

    @Option(help: "Folder of scenario files, used when no file is given.")
    var dir: String = ScenarioFiles.defaultDirectory

    @Flag(help: "Print the pen-output hash of each run (equal seeds and scripts give equal hashes).")
    var hash = false

    @Argument(help: "Scenario files.")
    var files: [String] = []

    func run() throws {
        let paths = files.isEmpty ? try ScenarioFiles.list(dir) : files
        var failed = 0
        for path in paths {
            let scenario: Scenario
            do { scenario = try Scenario.load(path: path) } catch {
                print("FAIL \(error)")
                failed += 1
                continue
            }
            let report = ScenarioRunner.run(scenario)
            print(report)
            if hash { print(String(format: "  pen output hash %016llx", report.penOutputHash)) }
            if !report.passed { failed += 1 }
        }
        print("\(paths.count - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }
}

enum ScenarioFiles {
    /// HardwareSim/scenarios next to the sources, when run from the repository.
    static var defaultDirectory: String {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scenarios").path
    }

    static func list(_ dir: String) throws -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            throw ValidationError("cannot read the scenario folder '\(dir)'")
        }
        return names.filter { $0.hasSuffix(".json") }.sorted().map { dir + "/" + $0 }
    }
}

/// Writes a line to standard output at once (no buffering), so that scripts reading the pty
/// path or command replies see them immediately.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

struct Conformance: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the protocol conformance suite against the in-process simulator or a serial device.",
        discussion: """
            Without --port the suite runs against the in-process simulator on its virtual clock. With \
            --port it talks to a serial device in real time: a pty served by `stipple-sim serve --pty`, \
            or a real pen (cartridge inserted, pedal released). Exits with status 1 if a check fails.
            """
    )

    @Option(help: "Serial device of the pen under test (e.g. /dev/ttyACM0).")
    var port: String?

    func run() throws {
        var suite = if let port { ConformanceSuite(transport: try SerialPort(path: port)) } else { ConformanceSuite(simulated: VirtualTimePenTransport()) }
        try suite.run()
        for check in suite.checks { say(check.description) }
        let failed = suite.checks.filter { !$0.passed }.count
        say("\(suite.checks.count - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }
}
