import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
@testable import StippleDaemon
import StippleSafety
import Testing

/// The problem codes `RouteTests` does not reach, each where a client meets it: every route with
/// a session id refused to strangers, the rules that span sessions (the 5-day gap, single-use
/// cartridges, session ids never reused), the event stream's and presence's own checks, and the
/// bring-up routes' refusals. Every answer is also held to the statuses docs/openapi.yaml
/// declares (`DeclaredStatuses`, through `RouteTests.application`).
@Suite("API routes, the rest of the codes")
struct RouteCodesTests {
    typealias R = RouteTests

    static func expect(_ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, role: String = "technician",
                       clientID: String? = nil, body: String? = nil, _ status: HTTPResponse.Status, _ code: String,
                       sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await client.execute(uri: uri, method: method, headers: R.headers(role, json: body != nil, client: clientID),
                                 body: body.map(R.body)) { response in
            #expect(response.status == status && R.code(response) == code, "\(method) \(uri): \(String(buffer: response.body))",
                    sourceLocation: sourceLocation)
        }
    }

    @Test("every route with a session id refuses a caller without credentials or group, before the id is looked at")
    func rolesOnSessionRoutes() async throws {
        let rig = try await DaemonRig()
        try await R.application(rig).test(.router) { client in
            for (method, path) in Routes.table where path.contains("{id}") {
                let uri = path.replacingOccurrences(of: "{id}", with: "S-ANY")
                try await Self.expect(client, HTTPRequest.Method(method)!, uri, role: "absent", .forbidden, "no_credentials")
                try await Self.expect(client, HTTPRequest.Method(method)!, uri, role: "none", .forbidden, "not_a_member")
            }
        }
        await rig.supervisor.shutdown()
    }

    @Test("sessions: an id is never reused, a client waits out the gap, a cartridge armed once is used")
    func rulesAcrossSessions() async throws {
        let rig = try await DaemonRig()
        // Client C-1's session with cartridge SIM-CART-0001, armed and running: the cartridge is used.
        try await rig.startRunning()
        let id = try #require(await rig.supervisor.status().session?.id)
        try await R.application(rig).test(.router) { client in
            // While it is open: a limits reset waits for it to close.
            try await Self.expect(client, .post, "/v1/limits/reset", role: "engineer", body: #"{"reason": "policy"}"#, .conflict, "session_open")
            for path in ["/v1/stop", "/v1/sessions/\(id)/close"] {
                try await client.execute(uri: path, method: .post, headers: R.headers("technician")) { response in
                    #expect(response.status == .ok, "\(path): \(String(buffer: response.body))")
                }
            }
            try await Self.expect(client, .post, "/v1/clear-fault", .conflict, "illegal_transition")
            try await Self.expect(client, .post, "/v1/sessions",
                                  body: #"{"session_id": "\#(id)", "client_id": "C-OTHER", "zone": "crown", "cartridge_id": "SIM-CART-0009", "pigment_lots": ["P"]}"#,
                                  .conflict, "session_id_reused")
            try await Self.expect(client, .post, "/v1/sessions",
                                  body: #"{"client_id": "C-1", "zone": "crown", "cartridge_id": "SIM-CART-0009", "pigment_lots": ["P"]}"#,
                                  .conflict, "session_gap")
            try await Self.expect(client, .post, "/v1/sessions",
                                  body: #"{"client_id": "C-OTHER", "zone": "crown", "cartridge_id": "SIM-CART-0001", "pigment_lots": ["P"]}"#,
                                  .conflict, "cartridge_reused")
            for (method, path) in [(HTTPRequest.Method.post, "/v1/sessions/S-NOPE/close"), (.get, "/v1/sessions/S-NOPE/report")] {
                try await Self.expect(client, method, path, .notFound, "no_such_session")
            }
            try await Self.expect(client, .put, "/v1/sessions/S-NOPE/cartridge", body: #"{"cartridge_id": "C-1"}"#, .notFound, "no_such_session")
            let large = #"{"client_id": ""# + String(repeating: "x", count: 70 * 1024) + #""}"#
            try await Self.expect(client, .post, "/v1/sessions", body: large, .contentTooLarge, "body_too_large")
        }
        await rig.supervisor.shutdown()
    }

    @Test("the event stream's and presence's own checks")
    func streamAndPresence() async throws {
        let rig = try await DaemonRig()
        try await R.application(rig).test(.router) { client in
            try await Self.expect(client, .get, "/v1/events?telemetry=bogus", .badRequest, "bad_field")
            try await Self.expect(client, .get, "/v1/events", clientID: "bad id!", .badRequest, "bad_field")
            try await Self.expect(client, .post, "/v1/presence", .badRequest, "client_id_missing")
        }
        await rig.supervisor.shutdown()
    }

    @Test("bring-up: frames that would move the needle are refused, an unknown message named, an in-process pen not releasable")
    func bringUpRefusals() async throws {
        let rig = try await DaemonRig()
        try await R.application(rig).test(.router) { client in
            try await Self.expect(client, .post, "/v1/bringup/raw", role: "engineer", body: #"{"message": "motor_run"}"#, .conflict, "raw_refused")
            try await Self.expect(client, .post, "/v1/bringup/raw", role: "engineer", body: #"{"message": "teleport"}"#, .unprocessableContent, "bad_message")
            try await Self.expect(client, .post, "/v1/bringup/raw", role: "engineer", body: #"{"message": "ping", "speed": 1}"#, .badRequest, "unknown_field")
            try await Self.expect(client, .post, "/v1/bringup/ping", role: "engineer", body: #"{"count": 0}"#, .unprocessableContent, "bad_field")
            try await Self.expect(client, .post, "/v1/bringup/release", role: "engineer", body: #"{"seconds": 60}"#, .conflict, "not_releasable")
        }
        await rig.supervisor.shutdown()
    }
}

@Suite("API routes, arming through the route")
struct RouteArmTests {
    typealias R = RouteTests

    @Test("an arm through the route: no session without an identified pen; armed once the pen acknowledges; another console refused; disarm answers the state after it")
    func armThroughTheRoute() async throws {
        let offline = try await DaemonRig(attach: false)
        try await R.application(offline).test(.router) { client in
            try await RouteCodesTests.expect(client, .post, "/v1/sessions",
                                             body: #"{"client_id": "C-1", "zone": "crown", "cartridge_id": "SIM-CART-0001", "pigment_lots": ["P"]}"#,
                                             .conflict, "pen_not_identified")
            // Given the pen's serial, the session opens; the stops still answer, with no pen to stop.
            try await client.execute(uri: "/v1/sessions", method: .post, headers: R.headers("technician", json: true),
                                     body: R.body(#"{"client_id": "C-1", "zone": "crown", "cartridge_id": "SIM-CART-0001", "pigment_lots": ["P"], "pen_serial": "SIM-0001"}"#)) { response in
                #expect(response.status == .created, "\(String(buffer: response.body))")
            }
            try await client.execute(uri: "/v1/stop", method: .post, headers: R.headers("technician")) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
            }
        }
        await offline.supervisor.shutdown()

        let rig = try await DaemonRig()
        _ = try await rig.supervisor.openSession(
            SessionRequest(sessionID: "", clientID: "C-1", technician: "ana", zone: .crown, cartridgeID: "SIM-CART-0001",
                           pigmentLots: ["P-1"], penSerial: "", gapOverrideReason: nil), actor: "test")
        _ = try await rig.supervisor.setSetpoint(Setpoint(layer: .upperDermis, depthUm: 800, rateHz: 120), actor: "test")
        await rig.run(for: .milliseconds(200))
        // The console's stream: the same client id and credentials the route's test peer has.
        _ = await rig.supervisor.presenceOpened(DaemonRig.holder)
        try await R.application(rig).test(.router) { client in
            // The arm waits for the pen's two acknowledgements: the rig steps the pen meanwhile.
            let stepping = Task {
                for _ in 0..<2_000 where !Task.isCancelled {
                    await rig.run(for: DaemonRig.step)
                    try? await Task.sleep(for: .microseconds(200))
                }
            }
            try await client.execute(uri: "/v1/arm", method: .post, headers: R.headers("technician", client: DaemonRig.client)) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                #expect(String(buffer: response.body).contains(#""phase":"armed""#))
            }
            stepping.cancel()
            _ = await stepping.value
            #expect(rig.pen.withPen { $0.armed })
            // A second console's arm while this one holds the lease is refused by name.
            try await client.execute(uri: "/v1/arm", method: .post, headers: R.headers("technician", client: "gui-other")) { response in
                #expect(response.status == .conflict, "\(String(buffer: response.body))")
            }
            try await client.execute(uri: "/v1/disarm", method: .post, headers: R.headers("technician")) { response in
                #expect(response.status == .ok && String(buffer: response.body).contains(#""phase":"open""#), "\(String(buffer: response.body))")
            }
        }
        await rig.supervisor.shutdown()
    }
}
