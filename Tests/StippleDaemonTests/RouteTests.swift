import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import StippleAPI
@testable import StippleDaemon
import StippleSafety
import Testing

/// The routes in process (HummingbirdTesting, no socket): for each, an answer that works, the
/// problem codes it gives for bad input or the wrong state, and its role refusals. The caller's
/// role comes from a test header through `APIServer.peerForTesting` — on the socket it comes from
/// SO_PEERCRED, which the end-to-end tests cover.
@Suite("API routes, in process")
struct RouteTests {
    static let role = HTTPField.Name("X-Test-Role")!
    static let json: HTTPFields = [.contentType: "application/json"]

    /// An application over a real supervisor, records and simulated pen (`DaemonRig`).
    /// `simulated`: the rig's simulated pen answers `/v1/sim`, as with `--pen sim`; otherwise the
    /// daemon behaves as with a real pen there.
    static func application(_ rig: DaemonRig, simulated: Bool = false, console: ConsoleFiles = .none) throws -> some ApplicationProtocol {
        var logger = Logger(label: "route-test")
        logger.logLevel = .critical
        var server = APIServer(socketPath: rig.directory + "/api.sock", policy: RolePolicy(), supervisor: rig.supervisor,
                               records: rig.store, logger: logger)
        if simulated { server.simulator = rig.simulation }
        server.console = console
        server.answerObserverForTesting = { request, response in DeclaredStatuses.check(request, response) }
        server.peerForTesting = { request in
            let header = request.headers[Self.role]
            if header == "absent" { return nil }
            let role: Role = switch header {
            case "engineer": .engineer
            case "none": .none
            default: .technician
            }
            return Peer(pid: 4242, uid: 1000, gid: 1000, userName: "ana", role: role)
        }
        return try server.application()
    }

    static func headers(_ role: String, json: Bool = false, client: String? = nil) -> HTTPFields {
        var fields: HTTPFields = json ? Self.json : [:]
        fields[Self.role] = role
        if let client { fields[.init("X-Stipple-Client")!] = client }
        return fields
    }

    static func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    /// The problem's code, or nil when the answer is no problem document.
    static func code(_ response: TestResponse) -> String? {
        guard response.headers[.contentType] == "application/problem+json",
              let object = try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any] else { return nil }
        return object["code"] as? String
    }

    static let opening = #"{"client_id": "C-ROUTE", "zone": "crown", "cartridge_id": "SIM-CART-0001", "pigment_lots": ["P-1"]}"#

    @Test("no credentials, and no group: refused on every route, before anything runs")
    func roles() async throws {
        let rig = try await DaemonRig()
        try await Self.application(rig).test(.router) { client in
            for (method, path) in Routes.table where !path.contains("{id}") {
                let method = HTTPRequest.Method(method)!
                try await client.execute(uri: path, method: method, headers: Self.headers("absent")) { response in
                    #expect(response.status == .forbidden && Self.code(response) == "no_credentials", "\(method) \(path)")
                }
                try await client.execute(uri: path, method: method, headers: Self.headers("none")) { response in
                    #expect(response.status == .forbidden && Self.code(response) == "not_a_member", "\(method) \(path)")
                }
            }
        }
        await rig.supervisor.shutdown()
    }

    @Test("engineers' routes refuse a technician with engineers_only")
    func engineersOnly() async throws {
        let rig = try await DaemonRig()
        try await Self.application(rig).test(.router) { client in
            for (method, path) in [("PUT", "/v1/limits"), ("POST", "/v1/limits/reset"), ("POST", "/v1/bringup/identify"),
                                   ("POST", "/v1/bringup/ping"), ("POST", "/v1/bringup/raw"), ("GET", "/v1/bringup/trace"),
                                   ("POST", "/v1/bringup/release"), ("POST", "/v1/bringup/reclaim")] {
                try await client.execute(uri: path, method: HTTPRequest.Method(method)!, headers: Self.headers("technician", json: true),
                                         body: Self.body("{}")) { response in
                    #expect(response.status == .forbidden && Self.code(response) == "engineers_only", "\(method) \(path)")
                }
            }
        }
        await rig.supervisor.shutdown()
    }

    @Test("status, pen, limits, audit: what a screen reads")
    func reads() async throws {
        let rig = try await DaemonRig()
        try await Self.application(rig).test(.router) { client in
            for path in ["/v1/status", "/v1/pen", "/v1/limits", "/v1/audit", "/v1/audit/verify", "/v1/sessions"] {
                try await client.execute(uri: path, method: .get, headers: Self.headers("technician")) { response in
                    #expect(response.status == .ok && response.headers[.contentType] == "application/json", "\(path)")
                }
            }
            try await client.execute(uri: "/v1/status", method: .head, headers: Self.headers("technician")) { response in
                #expect(response.status == .methodNotAllowed && response.headers[.allow] == "GET")
            }
            try await client.execute(uri: "/metrics", method: .get, headers: Self.headers("technician")) { response in
                #expect(response.status == .notFound && Self.code(response) == "no_metrics")
            }
            for (query, field) in [("/v1/sessions?limit=0", "limit"), ("/v1/audit?after=-1", "after"), ("/v1/audit?limit=10001", "limit")] {
                try await client.execute(uri: query, method: .get, headers: Self.headers("technician")) { response in
                    #expect(response.status == .badRequest && Self.code(response) == "bad_field", "\(query)")
                    #expect(String(buffer: response.body).contains(field))
                }
            }
        }
        await rig.supervisor.shutdown()
    }

    @Test("a session: opened, its cartridge and setpoint, refused where the state or the values say no, closed")
    func sessionLifecycle() async throws {
        let rig = try await DaemonRig()
        try await Self.application(rig).test(.router) { client in
            let technician = Self.headers("technician", json: true)
            let opened = try await client.execute(uri: "/v1/sessions", method: .post, headers: technician, body: Self.body(Self.opening)) { response in
                #expect(response.status == .created, "\(String(buffer: response.body))")
                let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                return try #require((object?["session"] as? [String: Any])?["id"] as? String)
            }
            // An empty id is never "choose one for me": left out it is, given empty it is refused, named.
            for field in ["session_id", "pen_serial"] {
                let empty = #"{"client_id": "C-EMPTY", "zone": "crown", "cartridge_id": "SIM-CART-0002", "pigment_lots": ["P-1"], "\#(field)": ""}"#
                try await client.execute(uri: "/v1/sessions", method: .post, headers: technician, body: Self.body(empty)) { response in
                    #expect(response.status == .unprocessableContent && Self.code(response) == "bad_request", "\(field)")
                    #expect(String(buffer: response.body).contains(field), "\(field)")
                }
            }
            // A second opening while one is open; the same client again.
            try await client.execute(uri: "/v1/sessions", method: .post, headers: technician, body: Self.body(Self.opening)) { response in
                #expect(response.status == .conflict && Self.code(response) == "session_already_open")
            }
            try await client.execute(uri: "/v1/sessions/\(opened)", method: .get, headers: technician) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/sessions/S-NOPE", method: .get, headers: technician) { response in
                #expect(response.status == .notFound && Self.code(response) == "no_such_session")
            }
            try await client.execute(uri: "/v1/sessions/S-NOPE/setpoint", method: .put, headers: technician,
                                     body: Self.body(#"{"layer": "upper_dermis", "depth_um": 800, "rate_hz": 120}"#)) { response in
                #expect(response.status == .notFound && Self.code(response) == "no_such_session")
            }
            let cases: [(String, HTTPResponse.Status, String)] = [
                (#"{"layer": "upper_dermis", "depth_um": 800, "rate_hz": 145}"#, .ok, ""),
                (#"{"layer": "upper_dermis", "depth_um": 800, "rate_hz": 155}"#, .unprocessableContent, "bad_field"),
                (#"{"layer": "upper_dermis", "depth_um": 1400, "rate_hz": 120}"#, .unprocessableContent, "setpoint_out_of_limits"),
                (#"{"layer": "upper_dermis", "depth_um": 2001, "rate_hz": 120}"#, .unprocessableContent, "bad_field"),
                (#"{"layer": "dermis", "depth_um": 800, "rate_hz": 120}"#, .unprocessableContent, "bad_field"),
                (#"{"layer": "upper_dermis", "depth_um": "800", "rate_hz": 120}"#, .badRequest, "bad_field"),
                (#"{"layer": "upper_dermis", "depth_um": null, "rate_hz": 120}"#, .badRequest, "bad_field"),
                (#"{"layer": "upper_dermis", "depth_um": 800, "rate_hz": 120, "extra": 1}"#, .badRequest, "unknown_field"),
                (#"[1, 2]"#, .badRequest, "body_not_json"),
                ("", .badRequest, "body_missing"),
            ]
            for (body, status, code) in cases {
                try await client.execute(uri: "/v1/sessions/\(opened)/setpoint", method: .put, headers: technician, body: Self.body(body)) { response in
                    #expect(response.status == status, "\(body): \(String(buffer: response.body))")
                    if !code.isEmpty { #expect(Self.code(response) == code, "\(body)") }
                }
            }
            try await client.execute(uri: "/v1/sessions/\(opened)/setpoint", method: .put, headers: Self.headers("technician"),
                                     body: Self.body(#"{"layer": "upper_dermis", "depth_um": 800, "rate_hz": 120}"#)) { response in
                #expect(response.status == .unsupportedMediaType && Self.code(response) == "unsupported_media_type")
            }
            try await client.execute(uri: "/v1/sessions/\(opened)/cartridge", method: .put, headers: technician,
                                     body: Self.body(#"{"cartridge_id": "SIM-CART-0001", "needle_count": 65}"#)) { response in
                #expect(response.status == .unprocessableContent && Self.code(response) == "bad_field")
            }
            try await client.execute(uri: "/v1/sessions/\(opened)/cartridge", method: .put, headers: technician,
                                     body: Self.body(#"{"cartridge_id": "SIM-CART-0001", "lot": "L-ROUTE"}"#)) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
            }
            // Limits change only while no session is open, and only tighter.
            try await client.execute(uri: "/v1/limits", method: .put, headers: Self.headers("engineer", json: true),
                                     body: Self.body(#"{"depth_tolerance_um": 40}"#)) { response in
                #expect(response.status == .conflict && Self.code(response) == "session_open", "\(String(buffer: response.body))")
            }
            try await client.execute(uri: "/v1/sessions/\(opened)/close", method: .post, headers: technician) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/v1/sessions/\(opened)/report", method: .get, headers: technician) { response in
                #expect(response.status == .ok)
            }
        }
        await rig.supervisor.shutdown()
    }

    @Test("arming takes a client id and a held lease; stops are never refused; a fault whose cause cannot be seen gone stays")
    func armingAndStops() async throws {
        let rig = try await DaemonRig()
        try await Self.application(rig).test(.router) { client in
            try await client.execute(uri: "/v1/arm", method: .post, headers: Self.headers("technician")) { response in
                #expect(response.status == .badRequest && Self.code(response) == "client_id_missing")
            }
            try await client.execute(uri: "/v1/arm", method: .post, headers: Self.headers("technician", client: "bad id!")) { response in
                #expect(response.status == .badRequest && Self.code(response) == "bad_field")
            }
            try await client.execute(uri: "/v1/arm", method: .post, headers: Self.headers("technician", client: "gui-1")) { response in
                #expect(response.status == .conflict && Self.code(response) == "arming_checks_failed")
            }
            try await client.execute(uri: "/v1/presence", method: .post, headers: Self.headers("technician", client: "gui-1")) { response in
                #expect(response.status == .conflict && Self.code(response) == "no_event_stream")
            }
            for path in ["/v1/stop", "/v1/disarm", "/v1/estop"] {
                try await client.execute(uri: path, method: .post, headers: Self.headers("technician")) { response in
                    #expect(response.status == .ok, "\(path)")
                }
            }
            // The e-stop latched. The pen is not stepped in this test, so it never answers
            // CLEAR_FAULT: its cause cannot be seen to be gone, and the fault stays.
            try await client.execute(uri: "/v1/clear-fault", method: .post, headers: Self.headers("technician")) { response in
                #expect(response.status == .conflict && Self.code(response) == "fault_persists", "\(String(buffer: response.body))")
            }
        }
        await rig.supervisor.shutdown()
    }

    @Test("limits: an engineer tightens them; looser or invalid is refused naming the field; a reset needs a reason")
    func limits() async throws {
        let rig = try await DaemonRig()
        try await Self.application(rig).test(.router) { client in
            let engineer = Self.headers("engineer", json: true)
            try await client.execute(uri: "/v1/limits", method: .put, headers: engineer, body: Self.body(#"{"depth_tolerance_um": 40}"#)) { response in
                #expect(response.status == .ok, "\(String(buffer: response.body))")
            }
            try await client.execute(uri: "/v1/limits", method: .put, headers: engineer, body: Self.body(#"{"depth_tolerance_um": 60}"#)) { response in
                #expect(response.status == .unprocessableContent && Self.code(response) == "limits_refused")
            }
            try await client.execute(uri: "/v1/limits", method: .put, headers: engineer, body: Self.body(#"{"pen_deadman_ms": 5}"#)) { response in
                #expect(response.status == .unprocessableContent && Self.code(response) == "limits_refused")
                #expect(String(buffer: response.body).contains("pen_deadman_ms"))
            }
            try await client.execute(uri: "/v1/limits/reset", method: .post, headers: engineer, body: Self.body(#"{"reason": ""}"#)) { response in
                #expect(response.status == .badRequest && Self.code(response) == "reason_missing")
            }
            try await client.execute(uri: "/v1/limits/reset", method: .post, headers: engineer, body: Self.body(#"{"reason": "new site policy"}"#)) { response in
                #expect(response.status == .ok)
            }
        }
        await rig.supervisor.shutdown()
    }

    @Test("unknown paths are 404, known paths with another method 405 with Allow")
    func routing() async throws {
        let rig = try await DaemonRig()
        try await Self.application(rig).test(.router) { client in
            try await client.execute(uri: "/v1/nothing", method: .get, headers: Self.headers("technician")) { response in
                #expect(response.status == .notFound && Self.code(response) == "no_such_route")
            }
            try await client.execute(uri: "/v1/limits", method: .delete, headers: Self.headers("technician")) { response in
                #expect(response.status == .methodNotAllowed && Self.code(response) == "method_not_allowed")
                #expect(response.headers[.allow] == "GET, PUT")
            }
        }
        await rig.supervisor.shutdown()
    }
}
