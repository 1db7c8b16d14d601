import ArgumentParser
import Foundation
import StippleClient
import StippleWire

/// `stipplectl`: the daemon's command-line client (technicians and engineers) and the bring-up
/// engineer's protocol tool. One file per command group; this one holds the root and the
/// options every command shares.
public struct StippleCtl: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stipplectl",
        abstract: "Control stippled, the Stipple SMP pen daemon, and bring up pens.",
        discussion: """
            Technicians: status, session, cartridge, setpoint, arm, disarm, stop, estop, clear-fault, \
            limits, watch, audit — through the daemon's socket (group stipple). Engineers: devices, \
            identify, ping, raw, trace, selftest, sim (the simulated pen's pedal and faults) — through the daemon when it runs (group stipple-eng), \
            directly to a serial port when it does not. Offline: decode, encode, messages, demo \
            (pen protocol v\(ProtocolVersion.major).\(ProtocolVersion.minor), Firmware-protocol/PROTOCOL.md).

            "Depth" is needle protrusion past the cartridge tip in micrometres, not tissue depth: \
            the skin compresses, so the needle reaches somewhat less deep than it protrudes.

            The socket: --socket, else $STIPPLE_SOCKET, else your own daemon's \
            ($XDG_RUNTIME_DIR/stipple/api.sock, from `make run`) if it exists, else /run/stipple/api.sock.

            Exit status:
            \(ExitStatus.table)
            """,
        version: "stipplectl for pen protocol \(ProtocolVersion.major).\(ProtocolVersion.minor)",
        subcommands: [
            Status.self, Session.self, CartridgeCommand.self, SetpointCommand.self,
            Arm.self, Disarm.self, Stop.self, EmergencyStop.self, ClearFault.self,
            Limits.self, Watch.self, Audit.self, Clinic.self, ConsoleCommand.self,
            Devices.self, Identify.self, Ping.self, Raw.self, Trace.self, Selftest.self, Sim.self,
            Decode.self, Encode.self, Messages.self, Demo.self,
        ]
    )

    public init() {}
}

/// What every command accepts: where the daemon is, and JSON for scripts.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The daemon's API socket (default: $STIPPLE_SOCKET, your own daemon's, /run/stipple/api.sock).", valueName: "path"),
            completion: .file())
    var socket: String?

    @Flag(name: .long, help: "Print JSON for scripts: the daemon's answer as it came (live views: one JSON object per line; failures: the problem object).")
    var json = false

    mutating func validate() throws {
        Output.json = json
    }

    var location: SocketLocation {
        SocketLocation.resolve(flag: socket, environment: ProcessInfo.processInfo.environment, uid: getuid())
    }

    func client() -> DaemonClient { DaemonClient(location: location) }

    /// Prints a reply: its JSON as it came with `--json`, otherwise what `text` makes of it.
    func print(_ reply: DaemonClient.Reply, _ text: (JSON) -> String) {
        if json {
            Output.line(reply.data.text.trimmingCharacters(in: .whitespacesAndNewlines))
        } else {
            let body = text(reply.json)
            if !body.isEmpty { Output.line(body) }
        }
    }
}
