import ArgumentParser
import Foundation
import StippleAPI
import StippleClient
import StippleSafety
import StippleReport

// The choices are the spec's own enums (docs/openapi.yaml, generated into StippleAPI): a zone or
// layer the daemon does not take cannot be offered, nor one it takes left out.
extension Components.Schemas.OpenSession.ZonePayload: ExpressibleByArgument {}
extension Components.Schemas.SetpointInput.LayerPayload: ExpressibleByArgument {}

struct Session: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open, close, show, list sessions, and write a session's report.",
        subcommands: [SessionOpen.self, SessionClose.self, SessionShow.self, SessionList.self, SessionReport.self])
}

/// The id a command acts on: the one given, or the daemon's current session.
func currentSessionID(_ given: String?, client: DaemonClient) throws -> String {
    if let given { return given }
    let status = try client.get("/v1/status").json
    guard let id = status["session"]["id"].string else {
        throw CtlError(.refused, code: "no_session", "no session is open (`stipplectl session open --help`); or name one by its id (`stipplectl session list` shows them)")
    }
    return id
}

/// Path segments are sent percent-encoded: a session id is the technician's text.
func pathSegment(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~"))) ?? text
}

struct SessionOpen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open",
        abstract: "Open a session for a client, bound to the connected pen.",
        discussion: """
            The client id is pseudonymous (never a name). Within 5 days of the client's last session \
            the daemon refuses unless --gap-override-reason says why (it is recorded). \
            Example: stipplectl session open --client C-0042 --zone crown --cartridge CART-1 --pigment-lot PIG-7
            """)

    @OptionGroup var options: GlobalOptions

    @Option(name: .customLong("client"), help: "The client's pseudonymous id.")
    var clientID: String

    @Option(help: "Scalp zone (sets the zone's depth maximum).")
    var zone: Components.Schemas.OpenSession.ZonePayload

    @Option(name: .customLong("cartridge"), help: "The needle cartridge's id (single-use).")
    var cartridgeID: String

    @Option(name: .customLong("pigment-lot"), help: "A pigment batch number (repeat for several).")
    var pigmentLots: [String] = []

    @Option(name: .customLong("session-id"), help: "The session's id (generated when absent; never reused).")
    var sessionID: String?

    @Option(help: "Who works (default: your user name).")
    var technician: String?

    @Option(name: .customLong("pen-serial"), help: "The pen's serial (default: the connected pen's).")
    var penSerial: String?

    @Option(name: .customLong("gap-override-reason"), help: "Why this client is treated within 5 days of the last session (recorded).")
    var gapOverrideReason: String?

    @Option(name: .customLong("clinic-offline-reason"),
            help: "Engineers: open while the clinic's database cannot be reached (offline policy allow-with-override); recorded, claimed when it is back.")
    var clinicOfflineReason: String?

    func validate() throws {
        if pigmentLots.isEmpty { throw ValidationError("give at least one --pigment-lot (pigment batch numbers are required records)") }
    }

    func run() throws {
        let body = Components.Schemas.OpenSession(
            sessionId: sessionID, clientId: clientID, technician: technician, zone: zone, cartridgeId: cartridgeID,
            pigmentLots: pigmentLots, penSerial: penSerial, gapOverrideReason: gapOverrideReason, clinicOfflineReason: clinicOfflineReason)
        let reply = try options.client().post("/v1/sessions", body: body.jsonData())
        options.print(reply) { status in
            "opened session \(status["session"]["id"].text)\n" + StatusText.screen(status)
        }
    }
}

struct SessionClose: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "close",
        abstract: "Close the current session (stops the needle first; a latched fault stays latched).")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The session (default: the current one).")
    var id: String?

    func run() throws {
        let client = options.client()
        let id = try currentSessionID(id, client: client)
        let reply = try client.post("/v1/sessions/\(pathSegment(id))/close")
        options.print(reply) { "closed session \(id): \(StatusText.brief($0))" }
    }
}

struct SessionShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One session from the records.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The session (default: the current one).")
    var id: String?

    func run() throws {
        let client = options.client()
        let id = try currentSessionID(id, client: client)
        let reply = try client.get("/v1/sessions/\(pathSegment(id))")
        options.print(reply) { Self.text($0) }
    }

    static func text(_ session: JSON) -> String {
        var pairs: [(String, String)] = [
            ("session", session["id"].text), ("client", session["client_id"].text), ("technician", session["technician"].text),
            ("zone", session["zone"].text), ("pen", session["pen_serial"].text), ("cartridge", session["cartridge_id"].text),
            ("pigment lots", session["pigment_lots"].text), ("opened", Text.date(session["opened_at"].int)),
        ]
        if let closed = session["closed_at"].int { pairs.append(("closed", "\(Text.date(closed)) (\(session["close_reason"].text))")) }
        pairs.append(("state", session["phase"].text))
        pairs.append(("session time", Text.clock(ms: session["session_time_ms"].int)))
        if !session["setpoint"].isNull {
            pairs.append(("setpoint", "\(session["setpoint"]["layer"].text) \(session["setpoint"]["depth_um"].text) µm at \(Text.rate(session["setpoint"]["rate_hz"].double))"))
        }
        pairs.append(("faults", faultsText(session)))
        if let reason = session["gap_override_reason"].string { pairs.append(("gap override", reason)) }
        return Text.fields(pairs)
    }
}

/// Every fault the session recorded, with counts, and what is latched now: "faults none" for a
/// session that tripped three times and lost its link cost a user's trust (issue 16).
func faultsText(_ session: JSON) -> String {
    let latched = session["faults"].array.map(\.text)
    let counts = session["fault_counts"].object.sorted { $0.key < $1.key }.map { code, count in
        count.int == 1 ? code : "\(count.int ?? 0) × \(code)"
    }
    if counts.isEmpty && latched.isEmpty { return "none" }
    let recorded = counts.isEmpty ? latched.joined(separator: ", ") : counts.joined(separator: ", ")
    return recorded + (latched.isEmpty ? " (none latched now)" : " (latched now: \(latched.joined(separator: ", ")))")
}

struct SessionList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Sessions, newest first.")

    @OptionGroup var options: GlobalOptions

    @Option(name: .customLong("client"), help: "Only this client's sessions.")
    var clientID: String?

    @Option(help: "At most this many (1...1000).")
    var limit: Int = 50

    func run() throws {
        var query = "?limit=\(limit)"
        if let clientID { query += "&client_id=\(pathSegment(clientID))" }
        let reply = try options.client().get("/v1/sessions\(query)")
        options.print(reply) { sessions in
            guard !sessions.array.isEmpty else { return "no sessions" }
            return Text.table(["SESSION", "CLIENT", "ZONE", "OPENED", "TIME", "STATE", "CLOSED BECAUSE"], sessions.array.map { session in
                [session["id"].text, session["client_id"].text, session["zone"].text, Text.date(session["opened_at"].int),
                 Text.clock(ms: session["session_time_ms"].int), session["phase"].text, session["close_reason"].string ?? "-"]
            })
        }
    }
}
