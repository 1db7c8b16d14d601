import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import OpenAPIRuntime
import StippleAPI
import StippleClient
@testable import StippleDaemon
import StippleRequests
import StippleSafety
import Testing

/// The generated client of docs/openapi.yaml (`StippleClient`, the one stipplectl and the
/// benchmarks use) against the daemon's own routes, in process: each answer must decode as the
/// spec's type for its status, so a daemon that answers a shape its spec does not describe fails
/// here, in Swift, before any end-to-end test runs.
@Suite("the generated client against the routes")
struct GeneratedClientTests {
    /// The generated client's requests through HummingbirdTesting's client instead of a socket,
    /// each with the role header the test application reads in place of SO_PEERCRED.
    struct RouterTransport: ClientTransport {
        let client: any TestClientProtocol
        let role: String

        func send(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String) async throws -> (HTTPResponse, HTTPBody?) {
            var headers = request.headerFields
            headers[RouteTests.role] = role
            let bytes: ByteBuffer? = if let body { ByteBuffer(bytes: try await [UInt8](collecting: body, upTo: 1 << 20)) } else { nil }
            let response = try await client.executeRequest(uri: request.path ?? "/", method: request.method, headers: headers, body: bytes)
            let answer = [UInt8](response.body.readableBytesView)
            return (HTTPResponse(status: response.status, headerFields: response.headers), answer.isEmpty ? nil : HTTPBody(answer))
        }
    }

    static func client(_ test: any TestClientProtocol, role: String = "technician") -> Client {
        Client(serverURL: URL(string: "http://localhost")!, transport: RouterTransport(client: test, role: role),
               middlewares: [StrictAnswerMiddleware()])
    }

    @Test("a session from opening to its report, every answer the spec's type")
    func session() async throws {
        let rig = try await DaemonRig()
        try await RouteTests.application(rig).test(.router) { test in
            let api = Self.client(test)
            let before = try await api.getStatus().ok.body.json
            #expect(before.session == nil && before.pen.connected)

            let opened = try await api.openSession(body: .json(.init(
                clientId: "C-GEN", zone: .crown, cartridgeId: "SIM-CART-0001", pigmentLots: ["P-1"]))).created.body.json
            let id = try #require(opened.session?.id)
            #expect(opened.session?.clientId == "C-GEN" && opened.phase == .open)

            let set = try await api.setSetpoint(path: .init(id: id), body: .json(.init(layer: .upperDermis, depthUm: 800, rateHz: 120))).ok.body.json
            #expect(set.session?.setpoint?.depthUm == 800)

            let session = try await api.getSession(path: .init(id: id)).ok.body.json
            #expect(session.id == id && session.pigmentLots == ["P-1"] && session.technician == "ana")
            let listed = try await api.listSessions(query: .init(clientId: "C-GEN")).ok.body.json
            #expect(listed.map(\.id) == [id])
            let limits = try await api.getLimits().ok.body.json
            #expect((limits.upperDermis?.maxUm ?? 0) >= 800)

            let closed = try await api.closeSession(path: .init(id: id)).ok.body.json
            #expect(closed.session?.closeReason != nil && closed.phase == .closed)
            let report = try await api.getReport(path: .init(id: id), headers: .init(accept: [.init(contentType: .json)])).ok.body.json
            #expect(report.session.id == id && report.audit.ok)
            let audit = try await api.verifyAudit().ok.body.json
            #expect(audit.ok)
        }
        await rig.supervisor.shutdown()
    }

    @Test("the controls, the pen, the audit and the limits: every answer the spec's type")
    func controls() async throws {
        let rig = try await DaemonRig()
        try await RouteTests.application(rig).test(.router) { test in
            let api = Self.client(test)
            // Before any stop: an engineer tightens a limit and resets them: answered as the spec's `Limits`.
            let engineer = Self.client(test, role: "engineer")
            var limits = try await engineer.getLimits().ok.body.json
            limits.effectiveWarningsS = nil
            limits.upperDermis?.maxUm = 900
            let changed = try await engineer.changeLimits(body: .json(limits)).ok.body.json
            #expect(changed.upperDermis?.maxUm == 900)
            let reset = try await engineer.resetLimits(body: .json(.init(reason: "back to the site's defaults"))).ok.body.json
            #expect(reset.upperDermis?.maxUm == SafetyLimits.defaults.upperDermis.maxUm)

            let pen = try await api.getPen().ok.body.json
            #expect(pen.connected && pen.serial != nil && pen.link != nil)
            // Stops act in every state and answer the status after them (`StopResult`).
            let stopped = try await api.stop().ok.body.json
            #expect(stopped.value1.mayMove == false && stopped.value2.unrecorded == nil)
            #expect(try await api.disarm().ok.body.json.value1.mayMove == false)
            let estopped = try await api.emergencyStop().ok.body.json
            #expect(!estopped.value1.faults.isEmpty)
            // Latched with no session open: a limits change says so, by the latch's own code.
            let latched = try await engineer.changeLimits(body: .json(limits))
            #expect(try latched.conflict.body.applicationProblemJson.code == .faultLatched)
            let entries = try await api.listAudit(query: .init(after: 0, limit: 100)).ok.body.json
            #expect(!entries.isEmpty && entries.map(\.seq) == entries.map(\.seq).sorted())

        }
        await rig.supervisor.shutdown()
    }

    @Test("refusals come back as the spec's problem, with the spec's code")
    func refusals() async throws {
        let rig = try await DaemonRig()
        try await RouteTests.application(rig).test(.router) { test in
            let api = Self.client(test)
            // Above the window in force (the spec's 0...2000 lets it through; the limits do not).
            let opened = try await api.openSession(body: .json(.init(
                clientId: "C-GEN", zone: .crown, cartridgeId: "SIM-CART-0001", pigmentLots: ["P-1"]))).created.body.json
            let id = try #require(opened.session?.id)
            let deep = try await api.setSetpoint(path: .init(id: id), body: .json(.init(layer: .epidermis, depthUm: 1900, rateHz: 120)))
            let problem = try deep.unprocessableContent.body.applicationProblemJson
            #expect(problem.code == .setpointOutOfLimits)

            let again = try await api.openSession(body: .json(.init(
                clientId: "C-GEN", zone: .crown, cartridgeId: "SIM-CART-0002", pigmentLots: ["P-1"])))
            #expect(try again.conflict.body.applicationProblemJson.code == .sessionAlreadyOpen)

            // Arming with no setpoint: every failed check comes back as the spec's arming-check code.
            let arm = try await api.arm(headers: .init(xStippleClient: "gen-test"))
            let armProblem = try arm.conflict.body.applicationProblemJson
            #expect(armProblem.code == .armingChecksFailed)
            #expect(armProblem.armingFailures?.contains { $0.code == .setpointMissing } == true, "\(armProblem.armingFailures ?? [])")

            let missing = try await api.getSession(path: .init(id: "S-NOPE"))
            #expect(try missing.notFound.body.applicationProblemJson.code == .noSuchSession)

            // The engineers' routes, asked by a technician; any route, asked by a stranger.
            let limits = try await api.resetLimits(body: .json(.init(reason: "test")))
            #expect(try limits.forbidden.body.applicationProblemJson.code == .engineersOnly)
            let stranger = try await Self.client(test, role: "none").getStatus()
            #expect(try stranger.forbidden.body.applicationProblemJson.code == .notAMember)
        }
        await rig.supervisor.shutdown()
    }

    /// A stand-in for the daemon's answer, for the middleware alone.
    static func answer(_ text: String, type: String = "application/json") async throws -> (HTTPResponse, HTTPBody?) {
        try await StrictAnswerMiddleware().intercept(
            HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/v1/status"), body: nil,
            baseURL: URL(string: "http://localhost")!, operationID: "getStatus"
        ) { _, _, _ in
            (HTTPResponse(status: .ok, headerFields: [.contentType: type]), HTTPBody(text))
        }
    }

    @Test("an answer that gives a key twice is refused, named, before anything decodes it")
    func duplicateKeysRefused() async throws {
        await #expect { try await Self.answer(#"{"may_move": false, "may_move": true}"#) } throws: { error in
            (error as? StrictAnswerError)?.finding == .duplicate(path: "may_move")
        }
        await #expect { try await Self.answer(#"{"errors": [{"field": "a", "field": "b"}]}"#, type: "application/problem+json; charset=utf-8") } throws: { error in
            (error as? StrictAnswerError)?.finding == .duplicate(path: "errors[0].field")
        }
        // Not JSON: passed through untouched (the metrics' text).
        let (_, body) = try await Self.answer("a 1\na 2\n", type: "text/plain")
        #expect(try await String(collecting: #require(body), upTo: 100) == "a 1\na 2\n")
    }
}
