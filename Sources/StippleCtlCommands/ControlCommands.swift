import ArgumentParser
import Foundation
import StippleAPI
import StippleClient
import StippleSafety
import StippleReport

struct CartridgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cartridge",
        abstract: "Record the session's needle cartridge.",
        subcommands: [CartridgeSet.self])
}

struct CartridgeSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Record the cartridge: its id, and for pens without a reader (GPIO pens) its lot, expiry and needles as typed.",
        discussion: "Arming checks a typed cartridge like a read one: 3 needles of 180–300 µm, not expired, never used before.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The cartridge's id.")
    var id: String

    @Option(help: "Lot (batch) number.")
    var lot: String?

    @Option(help: ArgumentHelp("Expiry date.", valueName: "YYYY-MM-DD"))
    var expiry: String?

    @Option(help: "Needles in the cartridge (SMP: 3).")
    var needles: Int?

    @Option(name: .customLong("diameter-um"), help: "Needle diameter in µm (SMP: 180–300).")
    var diameterUm: Int?

    @Option(help: "The session (default: the current one).")
    var session: String?

    func validate() throws {
        if let expiry, Text.days(fromDate: expiry) == nil { throw ValidationError("--expiry: '\(expiry)' is not a date YYYY-MM-DD") }
    }

    func run() throws {
        let client = options.client()
        let id = try currentSessionID(session, client: client)
        let body = Components.Schemas.CartridgeInput(
            cartridgeId: self.id, lot: lot, expiryDay: expiry.flatMap(Text.days(fromDate:)), needleCount: needles, needleDiameterUm: diameterUm)
        let reply = try client.put("/v1/sessions/\(pathSegment(id))/cartridge", body: body.jsonData())
        options.print(reply) { status in
            "cartridge recorded for session \(id): " + (StatusText.cartridge(status["pen"]["cartridge"]) ?? self.id)
        }
    }
}

struct SetpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setpoint",
        abstract: "Set the layer, needle protrusion and stroke rate.",
        discussion: """
            The daemon checks the depth against the layer's band (epidermis 200–400 µm, upper dermis \
            400–1000 µm by default), the zone's maximum and the site ceiling, and the rate against the \
            stroke-rate window; a refusal names the value and the allowed range. Depth is protrusion, \
            not tissue depth. Example: stipplectl setpoint --layer upper_dermis --depth-um 800 --rate-hz 120
            """)

    @OptionGroup var options: GlobalOptions

    @Option(help: "The skin layer the pigment is meant for.")
    var layer: Components.Schemas.SetpointInput.LayerPayload

    @Option(name: .customLong("depth-um"), help: "Needle protrusion in µm.")
    var depthUm: Int

    @Option(name: .customLong("rate-hz"), help: "Stroke rate in Hz (strokes per second).")
    var rateHz: Double

    @Option(help: "The session (default: the current one).")
    var session: String?

    func run() throws {
        let client = options.client()
        let id = try currentSessionID(session, client: client)
        let reply = try client.put("/v1/sessions/\(pathSegment(id))/setpoint",
                                   body: Components.Schemas.SetpointInput(layer: layer, depthUm: depthUm, rateHz: rateHz).jsonData())
        options.print(reply) { "setpoint: \(StatusText.setpoint($0["session"]))" }
    }
}

/// The commands that stop or clear: one POST, the state it left.
protocol SimpleControl: ParsableCommand {
    static var path: String { get }
    static var done: String { get }
    var options: GlobalOptions { get }
}

extension SimpleControl {
    func run() throws {
        let reply = try Self.send(options)
        options.print(reply) { "\(Self.done): \(StatusText.brief($0))" }
        // A stop always acts; if its record could not be written, say so (the daemon keeps it).
        if let detail = reply.json["unrecorded"]["detail"].string {
            FileHandle.standardError.write(Data("warning: \(detail)\n".utf8))
        }
    }
}

extension SimpleControl {
    /// Stops go to the daemon's stop socket, which no API load can delay; to the API socket when
    /// there is none (an older daemon). Clearing a fault is not a stop: it uses the API socket.
    static func send(_ options: GlobalOptions) throws(CtlError) -> DaemonClient.Reply {
        let api = options.client()
        guard path != "/v1/clear-fault" else { return try api.post(path) }
        var stopLocation = api.location
        stopLocation.path = api.location.stopPath
        guard FileManager.default.fileExists(atPath: stopLocation.path) else { return try api.post(path) }
        do {
            return try DaemonClient(location: stopLocation).post(path)
        } catch let error where error.status == .unreachable {
            return try api.post(path)
        }
    }
}

struct Disarm: SimpleControl {
    static let configuration = CommandConfiguration(abstract: "Stop the needle and disarm. Never refused.")
    static let path = "/v1/disarm"
    static let done = "disarmed"
    @OptionGroup var options: GlobalOptions
}

struct Stop: SimpleControl {
    static let configuration = CommandConfiguration(abstract: "Stop the needle and disarm (the technician's stop button). Never refused.")
    static let path = "/v1/stop"
    static let done = "stopped"
    @OptionGroup var options: GlobalOptions
}

struct EmergencyStop: SimpleControl {
    static let configuration = CommandConfiguration(
        commandName: "estop",
        abstract: "Emergency stop in any state; latches until cleared (`stipplectl clear-fault`).")
    static let path = "/v1/estop"
    static let done = "EMERGENCY STOP latched"
    @OptionGroup var options: GlobalOptions
}

struct ClearFault: SimpleControl {
    static let configuration = CommandConfiguration(
        commandName: "clear-fault",
        abstract: "Clear the latched fault once its cause is gone. Never re-arms.")
    static let path = "/v1/clear-fault"
    static let done = "cleared"
    @OptionGroup var options: GlobalOptions
}

struct Limits: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The limits in force.", subcommands: [LimitsShow.self, LimitsReset.self], defaultSubcommand: LimitsShow.self)
}

struct LimitsReset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Drop the limits tightened at run time; the configuration's apply again (engineers; recorded with the reason).",
        discussion: "Limits tightened with PUT /v1/limits stay in force across restarts and configuration edits; this is the only way back. Refused while a session is open.")

    @OptionGroup var options: GlobalOptions
    @Option(help: "Why the limits are reset (recorded in the audit log).") var reason: String

    func run() throws {
        let body = try JSONSerialization.data(withJSONObject: ["reason": reason])
        let reply = try options.client().post("/v1/limits/reset", body: body)
        options.print(reply) { "limits reset (reason recorded)\n" + LimitsShow.text($0) }
    }
}

struct LimitsShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the limits in force (GET /v1/limits).")

    @OptionGroup var options: GlobalOptions

    func run() throws {
        let reply = try options.client().get("/v1/limits")
        options.print(reply) { Self.text($0) }
    }

    static func band(_ band: JSON) -> String { "\(band["min_um"].text)–\(band["max_um"].text) µm" }

    static func text(_ limits: JSON) -> String {
        let zones = limits["zone_max_um"]
        return Text.fields([
            ("epidermis band", band(limits["epidermis"])),
            ("upper dermis band", band(limits["upper_dermis"])),
            ("zone maximum", Zone.allCases.map { "\($0.rawValue) \(zones[$0.rawValue].text)" }.joined(separator: ", ") + " µm"),
            ("site ceiling", "\(limits["site_ceiling_um"].text) µm (compiled-in: 2000 µm)"),
            ("depth tolerance", "\(limits["depth_tolerance_um"].text) µm above the band stops the needle"),
            ("stroke rate", "\(limits["rate_min_hz"].text)–\(limits["rate_max_hz"].text) Hz (±\(Int((limits["rate_tolerance"].double ?? 0) * 100))% for \(limits["rate_violation_strokes"].text) strokes); stop above 160 Hz or below 40 Hz"),
            ("session length", "\(Text.clock(ms: (limits["session_length_s"].int ?? 0) * 1000)), warnings at " +
                limits["effective_warnings_s"].array.compactMap(\.int).map { Text.clock(ms: $0 * 1000) }.joined(separator: ", ")),
            ("gap between sessions", "\(limits["minimum_session_gap_days"].text) days"),
            ("telemetry silence", "\(limits["telemetry_silence_ms"].text) ms"),
            ("pen deadman", "\(limits["pen_deadman_ms"].text) ms (pen trips \(limits["pen_trip_margin_um"].text) µm past the daemon)"),
        ])
    }
}
