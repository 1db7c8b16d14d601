import ArgumentParser
import Foundation
import StippleAPI
import StippleClient
import StippleReport

/// `stipplectl sim …`: the simulated pen driven from outside (`/v1/sim`, engineers only, with
/// `stippled --pen sim` only) — the pedal, the pen's e-stop button, the cartridge slot, and any
/// fault the simulator knows. For demos, CI rigs and the console's tests; a real pen answers
/// "not simulated".
struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drive the simulated pen from outside: pedal, e-stop button, cartridge, faults (engineers; --pen sim only).",
        discussion: """
            Acts on the simulated pen as a hand or a foot would; what the needle then does is decided by the \
            pen's rules and the daemon's, as with a real pen. A session, for instance: \
            stipplectl session open …, stipplectl setpoint …, stipplectl arm (holds the lease), then in another \
            terminal stipplectl sim pedal on.
            """,
        subcommands: [SimStatus.self, SimPedal.self, SimEstopButton.self, SimFaultCommand.self, SimCartridgeCommand.self])

    /// `on`/`off` and their usual spellings.
    enum Switch: String, ExpressibleByArgument, CaseIterable {
        case on, off
        var pressed: Bool { self == .on }
    }

    /// The simulated pen in one line.
    static func line(_ pen: JSON) -> String {
        var parts = [
            "pedal \(pen["pedal_pressed"].bool == true ? "down" : "up")",
            "e-stop button \(pen["estop_button"].bool == true ? "pressed" : "released")",
            "motor \(pen["motor_on"].bool == true ? "on" : "off")",
            pen["armed"].bool == true ? "armed" : "not armed",
            "pen state \(pen["pen_state"].text)",
            "fault \(pen["latched_fault"].text)",
            "\(pen["strokes"].text) strokes at \(Text.rate(pen["rate_hz"].double))",
        ]
        let cartridge = pen["cartridge"]
        parts.append(cartridge.isNull ? "no cartridge" : "cartridge \(cartridge["id"].text) (lot \(cartridge["lot"].text))")
        return parts.joined(separator: ", ")
    }

    static func send(_ options: GlobalOptions, _ method: String, _ path: String, _ body: (some Encodable)?) throws {
        let client = options.client()
        let reply = try client.call(method, path, body: body.map { $0.jsonData() })
        options.print(reply) { line($0) }
    }
}

struct SimStatus: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "The simulated pen's switches and state.")
    @OptionGroup var options: GlobalOptions
    func run() throws { try Sim.send(options, "GET", "/v1/sim", Optional<Components.Schemas.SimSwitch>.none) }
}

struct SimPedal: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pedal", abstract: "Press (on) or release (off) the foot pedal.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "on or off") var state: Sim.Switch
    func run() throws { try Sim.send(options, "POST", "/v1/sim/pedal", Components.Schemas.SimSwitch(pressed: state.pressed)) }
}

struct SimEstopButton: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "estop", abstract: "Press (on) or release (off) the pen's own e-stop button.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "on or off") var state: Sim.Switch
    func run() throws { try Sim.send(options, "POST", "/v1/sim/estop-button", Components.Schemas.SimSwitch(pressed: state.pressed)) }
}

struct SimFaultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fault", abstract: "Inject a fault the simulator knows, with its parameters.",
        discussion: "Names and parameters: `stipple-sim list-faults`. Example: stipplectl sim fault over_depth extra_um=500")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The fault's name (stipple-sim list-faults).") var name: String
    @Argument(help: "Its parameters, key=value (a value that reads as a number is one).") var parameters: [String] = []

    func validate() throws {
        for parameter in parameters where !parameter.contains("=") || parameter.hasPrefix("=") {
            throw ValidationError("'\(parameter)' is not key=value (example: extra_um=500)")
        }
        if let named = parameters.first(where: { $0.hasPrefix("fault=") }) {
            throw ValidationError("'\(named)': the fault's name is the first argument, not a parameter")
        }
    }

    func run() throws {
        var extra: [String: Components.Schemas.SimFault.AdditionalPropertiesPayload] = [:]
        for parameter in parameters {
            let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]), value = String(parts[1])
            extra[key] = Double(value).map { $0.isFinite ? .case1($0) : .case2(value) } ?? .case2(value)
        }
        try Sim.send(options, "POST", "/v1/sim/fault", Components.Schemas.SimFault(fault: name, additionalProperties: extra))
    }
}

struct SimCartridgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cartridge", abstract: "Put a cartridge in the slot, or take it out.",
        subcommands: [SimCartridgeInsert.self, SimCartridgeRemove.self])
}

struct SimCartridgeInsert: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "insert", abstract: "Put a cartridge in the slot, as its chip describes it.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The cartridge's id (1 to 16 printable ASCII characters).") var id: String
    @Option(help: "Needles (default 3).") var needles: Int?
    @Option(name: .customLong("diameter-um"), help: "Needle diameter in µm (default 250).") var diameterUm: Int?
    @Option(help: "The lot (default L2026-11).") var lot: String?
    @Option(help: "Expiry date, YYYY-MM-DD.") var expiry: String?

    func validate() throws {
        if let expiry, Text.days(fromDate: expiry) == nil { throw ValidationError("--expiry: '\(expiry)' is not a date YYYY-MM-DD") }
    }

    func run() throws {
        try Sim.send(options, "PUT", "/v1/sim/cartridge", Components.Schemas.SimCartridge(
            id: id, needleCount: needles, needleDiameterUm: diameterUm, lot: lot, expiryDays: expiry.flatMap(Text.days(fromDate:))))
    }
}

struct SimCartridgeRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Take the cartridge out of the slot.")
    @OptionGroup var options: GlobalOptions
    func run() throws { try Sim.send(options, "DELETE", "/v1/sim/cartridge", Optional<Components.Schemas.SimSwitch>.none) }
}
