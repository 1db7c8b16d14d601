import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import StippleAPI
import StippleRecords
import StippleRequests
import StippleSafety
import StippleSupervision

/// Every route of docs/openapi.yaml. Handlers parse strictly, call the supervisor, and answer
/// JSON or a problem; the supervisor answers only once what changed is durable.
///
/// Written by hand rather than generated (swift-openapi-hummingbird). Weighed route by route:
/// - a generated handler gets its body decoded by Foundation's `JSONDecoder`, which keeps one of
///   a key given twice and reports a coding path, where the API must refuse the duplicate and
///   name the field, its value and the allowed range (`JSONBody`); a middleware running the
///   strict reader first would read every body twice, by two readers that could disagree;
/// - the generated conformance is all or nothing: `APIProtocol` (generated once, in StippleAPI,
///   for the daemon and every client) has all the operations, so the body-less reads alone
///   cannot be generated against the shared types — only by generating a second copy of them;
/// - the event stream (SSE, open exactly as long as the lease it carries), the arm that belongs
///   to that stream's connection, and 405 with `Allow` for every path are outside what the
///   generator expresses; the caller's role (`SO_PEERCRED`) could reach a generated handler
///   through a task-local, but only as a second way beside the router's.
/// The spec holds these routes instead through `table` (equal to its paths), `ProblemCode` (a
/// code it lacks does not compile), `DeclaredStatuses` (every answer of the in-process tests has
/// a status the spec declares for it), and `GeneratedClientTests`, where the generated client
/// must decode every answer as the spec's type.
struct Routes: Sendable {
    let supervisor: Supervisor
    let records: RecordStore?
    let logger: Logger
    /// The Prometheus text of every metric (the composition root chooses the backend).
    let metrics: (@Sendable () -> [UInt8])?
    /// The simulated pen's controls (`/v1/sim`), with `--pen sim` only.
    let simulator: (any SimulatedPenControl)?
    /// The console's files (`/console/`), read at start-up.
    var console: ConsoleFiles = .none

    /// Every (method, path) this server answers: a test holds it equal to docs/openapi.yaml.
    static let table: [(method: String, path: String)] = [
        ("GET", "/v1/status"), ("GET", "/v1/me"), ("GET", "/v1/pen"),
        ("POST", "/v1/sessions"), ("GET", "/v1/sessions"), ("GET", "/v1/sessions/{id}"),
        ("POST", "/v1/sessions/{id}/close"), ("GET", "/v1/sessions/{id}/report"),
        ("PUT", "/v1/sessions/{id}/cartridge"), ("PUT", "/v1/sessions/{id}/setpoint"),
        ("POST", "/v1/arm"), ("GET", "/v1/arming-checks"), ("POST", "/v1/disarm"), ("POST", "/v1/stop"), ("POST", "/v1/estop"), ("POST", "/v1/clear-fault"),
        ("POST", "/v1/presence"), ("GET", "/v1/events"),
        ("GET", "/v1/limits"), ("PUT", "/v1/limits"), ("POST", "/v1/limits/reset"),
        ("GET", "/v1/audit"), ("GET", "/v1/audit/verify"), ("GET", "/metrics"),
        ("GET", "/console"), ("GET", "/console/{file}"),
    ] + BringUpRoutes.table + SimRoutes.table

    /// The methods a path answers to (the table's templates, `{id}` matching one segment):
    /// empty for a path no route has, so that an unknown path is 404 and a known path asked with
    /// another method is 405 with `Allow` (RFC 9110 section 15.5.6).
    static func allowedMethods(for path: String) -> [String] {
        // Segments as the router sees them: empty ones (`//`, a trailing `/`) do not count.
        let segments = path.split(separator: "/")
        // HEAD is not answered (the router's automatic HEAD is off, as the spec lists none): a
        // HEAD is 405 like any other method a path lacks.
        let methods = Set(table.filter { route in
            let template = route.path.split(separator: "/")
            return template.count == segments.count && zip(template, segments).allSatisfy { pattern, segment in
                pattern.hasPrefix("{") || pattern == segment
            }
        }.map(\.method))
        return methods.sorted()
    }

    func register(on router: Router<APIContext>) {
        let v1 = router.group("v1")
        BringUpRoutes(supervisor: supervisor).register(on: v1)
        SimRoutes(simulator: simulator).register(on: v1)
        console.register(on: router)
        v1.get("status") { _, _ in try await json(supervisor.status()) }
        v1.get("pen") { _, _ in try await json(supervisor.status().pen) }
        v1.get("me") { _, context in
            guard let peer = context.peer else { throw Problem(403, .noCredentials, "the caller's credentials cannot be read") }
            return try json(CallerView(user: peer.userName, uid: peer.uid, role: peer.role >= .engineer ? "engineer" : "technician"))
        }
        v1.post("sessions") { request, context in try await openSession(request, context) }
        v1.get("sessions") { request, _ in try listSessions(request) }
        v1.get("sessions/:id") { _, context in try getSession(context) }
        v1.post("sessions/:id/close") { request, context in
            try await perform(context, current: context.parameters.get("id")) { actor in try await supervisor.closeSession(actor: actor) }
        }
        v1.get("sessions/:id/report") { request, context in try await report(request, context) }
        v1.put("sessions/:id/cartridge") { request, context in try await setCartridge(request, context) }
        v1.put("sessions/:id/setpoint") { request, context in try await setSetpoint(request, context) }
        v1.post("arm") { request, context in
            let holder = try holder(request, context)
            return try await perform(context) { actor in try await supervisor.arm(holder, actor: actor) }
        }
        v1.get("arming-checks") { request, context in
            let holder: PresenceTable.Holder? = request.headers[.stippleClient] == nil ? nil : try holder(request, context)
            let (blocked, failures) = await supervisor.armingChecklist(holder)
            return try json(ArmingChecklistView(
                ready: blocked == nil && failures.isEmpty,
                blocked: blocked.map { ArmingChecklistView.Blocked(code: $0.code.rawValue, detail: $0.message) },
                failures: failures.map { .init(code: $0.code.rawValue, message: $0.message) }))
        }
        // Stops run urgently here too (ahead of queued work); the stop socket serves them with
        // capacity of its own (`StopSocket`).
        v1.post("disarm") { _, context in try await perform(context) { actor in try await supervisor.urgently(.disarm, actor: actor) } }
        v1.post("stop") { _, context in try await perform(context) { actor in try await supervisor.urgently(.stop, actor: actor) } }
        v1.post("estop") { _, context in try await perform(context) { actor in try await supervisor.urgently(.estop, actor: actor) } }
        v1.post("clear-fault") { _, context in try await perform(context) { actor in try await supervisor.clearFault(actor: actor) } }
        v1.post("presence") { request, context in
            let holder = try holder(request, context)
            guard await supervisor.ping(holder) else {
                throw Problem(409, .noEventStream,
                              "\(holder) holds no event stream: open GET /v1/events with the same X-Stipple-Client from this process, then ping")
            }
            return Response(status: .noContent)
        }
        v1.get("events") { request, context in try await events(request, context) }
        v1.get("limits") { _, _ in
            let limits = await supervisor.limits
            return try json(LimitsView(limits))
        }
        v1.put("limits") { request, context in try await changeLimits(request, context) }
        v1.post("limits/reset") { request, context in try await resetLimits(request, context) }
        v1.get("audit") { request, _ in try auditList(request) }
        router.get("metrics") { _, _ in
            guard let metrics else { throw Problem(404, .noMetrics, "metrics are not enabled") }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics())))
        }
        v1.get("audit/verify") { _, _ in
            guard let records else { throw Problem(503, .recordsUnavailable, "the records are not available") }
            do { return try json(try records.verifyAudit()) } catch let problem as Problem { throw problem } catch {
                throw Problem(503, .recordsUnavailable, "\(error)")
            }
        }
    }

    // MARK: - Handlers

    func openSession(_ request: Request, _ context: APIContext) async throws -> Response {
        let body = try await JSONBody.read(request)
        try body.refuseUnknown(["session_id", "client_id", "technician", "zone", "cartridge_id", "pigment_lots", "pen_serial", "gap_override_reason",
                                "clinic_offline_reason"])
        let peer = context.peer
        // Opening without the clinic's claim is an engineer's recorded decision, never a technician's.
        let offlineReason = try body.string("clinic_offline_reason", required: false, maxLength: 1000)
        if let offlineReason {
            guard peer?.role == .engineer else {
                throw Problem(403, .engineersOnly, "clinic_offline_reason needs group stipple-eng (you are a technician): an engineer decides to open without the clinic's claim")
            }
            if offlineReason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw Problem(CommandError(.badRequest, .reasonMissing, "clinic_offline_reason is empty",
                                           violations: [LimitViolation(field: "clinic_offline_reason", value: "\"\"", allowed: "a reason of 1...1000 characters, which is recorded")]))
            }
        }
        // Absent, the daemon chooses the session id and binds the identified pen; given, it must
        // not be empty (an empty string never means "choose").
        let sessionID = try body.string("session_id", required: false, maxLength: 64)
        let penSerial = try body.string("pen_serial", required: false, maxLength: 64)
        let empty = [("session_id", sessionID), ("pen_serial", penSerial)].filter { $0.1 == "" }.map {
            LimitViolation(field: $0.0, value: "\"\"", allowed: "1...\(Identifier.maxLength) printable ASCII characters, or leave it out")
        }
        if !empty.isEmpty {
            throw Problem(CommandError(.unprocessable, .badRequest, "the session request is incomplete or malformed", violations: empty))
        }
        let command = SessionRequest(
            sessionID: sessionID ?? "",
            clientID: try body.string("client_id", maxLength: 64) ?? "",
            technician: try body.string("technician", required: false, maxLength: 128) ?? peer?.userName ?? "",
            zone: try body.choice("zone", Zone.self) ?? .crown,
            cartridgeID: try body.string("cartridge_id", maxLength: 64) ?? "",
            pigmentLots: try body.strings("pigment_lots"),
            penSerial: penSerial ?? "",
            gapOverrideReason: try body.string("gap_override_reason", required: false, maxLength: 1000),
            clinicOfflineReason: offlineReason)
        let response = try await perform(context, status: .created) { actor in try await supervisor.openSession(command, actor: actor) }
        await recordLimitsInForce(actor: context.peer?.description ?? "unknown")
        return response
    }

    func setCartridge(_ request: Request, _ context: APIContext) async throws -> Response {
        let body = try await JSONBody.read(request)
        try body.refuseUnknown(["cartridge_id", "lot", "expiry_day", "needle_count", "needle_diameter_um"])
        let id = try body.string("cartridge_id", maxLength: 64) ?? ""
        let lot = try body.string("lot", required: false, maxLength: 64)
        let expiry = try body.integer("expiry_day", required: false, range: 0...100_000)
        let needles = try body.integer("needle_count", required: false, range: 0...64)
        let diameter = try body.integer("needle_diameter_um", required: false, range: 0...1000)
        return try await perform(context, current: context.parameters.get("id")) { actor in
            try await supervisor.setCartridge(id: id, lot: lot, expiryDay: expiry, needleCount: needles, needleDiameterUm: diameter, actor: actor)
        }
    }

    func setSetpoint(_ request: Request, _ context: APIContext) async throws -> Response {
        let body = try await JSONBody.read(request)
        try body.refuseUnknown(["layer", "depth_um", "rate_hz"])
        // One range in every refusal of a rate: the window in force (which never reaches past the
        // firmware's stall and runaway rates), named as such.
        let limits = await supervisor.limits
        let setpoint = Setpoint(
            layer: try body.choice("layer", Layer.self) ?? .upperDermis,
            depthUm: try body.integer("depth_um", range: 0...AbsoluteLimits.depthCeilingUm) ?? 0,
            rateHz: try body.number("rate_hz", range: limits.rateMinHz...limits.rateMaxHz,
                                    note: SafetyLimits.rateWindowNote) ?? 0)
        return try await perform(context, current: context.parameters.get("id")) { actor in try await supervisor.setSetpoint(setpoint, actor: actor) }
    }

    func changeLimits(_ request: Request, _ context: APIContext) async throws -> Response {
        guard context.peer?.role == .engineer else {
            throw Problem(403, .engineersOnly, "changing limits needs group stipple-eng (you are a technician)")
        }
        let body = try await JSONBody.read(request)
        let limits = try LimitsView.apply(body.object, over: await supervisor.limits)
        return try await perform(context) { actor in LimitsView(try await supervisor.changeLimits(limits, actor: actor)) }
    }

    func resetLimits(_ request: Request, _ context: APIContext) async throws -> Response {
        guard context.peer?.role == .engineer else {
            throw Problem(403, .engineersOnly, "resetting limits needs group stipple-eng (you are a technician)")
        }
        let body = try await JSONBody.read(request)
        try body.refuseUnknown(["reason"])
        let reason = try body.string("reason", maxLength: 1000) ?? ""
        return try await perform(context) { actor in LimitsView(try await supervisor.resetLimits(reason: reason, actor: actor)) }
    }

    func listSessions(_ request: Request) throws -> Response {
        guard let records else { throw Problem(503, .recordsUnavailable, "the records are not available") }
        let query = request.uri.queryParameters
        let limit = try query.get("limit").map { raw throws(Problem) -> Int in
            guard let value = Int(raw), (1...1000).contains(value) else { throw Problem.field("limit", raw, "1...1000", status: 400) }
            return value
        } ?? 50
        let client = query.get("client_id")
        return try json(try records.sessions(limit: limit, clientID: client).map(SessionSummary.init))
    }

    func getSession(_ context: APIContext) throws -> Response {
        guard let records else { throw Problem(503, .recordsUnavailable, "the records are not available") }
        let id = try context.parameters.require("id")
        guard let session = try records.session(id) else { throw Problem(404, .noSuchSession, "no session \(id)") }
        return try json(SessionSummary(session))
    }

    func auditList(_ request: Request) throws -> Response {
        guard let records else { throw Problem(503, .recordsUnavailable, "the records are not available") }
        let query = request.uri.queryParameters
        let after = try query.get("after").map { raw throws(Problem) -> Int64 in
            guard let value = Int64(raw), value >= 0 else { throw Problem.field("after", raw, "0 or more", status: 400) }
            return value
        } ?? 0
        let limit = try query.get("limit").map { raw throws(Problem) -> Int in
            guard let value = Int(raw), (1...10_000).contains(value) else { throw Problem.field("limit", raw, "1...10000", status: 400) }
            return value
        } ?? 100
        return try json(try records.auditEntries(after: after, limit: limit))
    }

    /// Server-Sent Events: state changes, faults and warnings at once; telemetry at ≤ 10 Hz, or
    /// every frame with `?telemetry=full`. An open stream is the client's presence lease.
    func events(_ request: Request, _ context: APIContext) async throws -> Response {
        let query = request.uri.queryParameters
        let full = query.get("telemetry") == "full"
        if let telemetry = query.get("telemetry"), !["full", "decimated"].contains(telemetry) {
            throw Problem.field("telemetry", telemetry, "full or decimated", status: 400)
        }
        let client = request.headers[.stippleClient] ?? query.get("client")
        if let client { try Self.checkClientID(client) }
        let supervisor = supervisor
        // The stream's presence belongs to this connection and the credentials read from it.
        let presence: ConnectionID? = if let client, let peer = context.peer {
            await supervisor.presenceOpened(PresenceTable.Holder(uid: peer.uid, pid: peer.pid, client: client))
        } else { nil }
        let stream = supervisor.hub.subscribe(fullRate: full) {
            if let presence { Task { await supervisor.presenceClosed(presence) } }
        }
        // The connection closing is the lease ending, at once — not at the stream's next write.
        if let presence {
            context.channel.closeFuture.whenComplete { _ in Task { await supervisor.presenceClosed(presence) } }
        }
        // The first event is the whole status, carrying `type` like every other event.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let status = try encoder.encode(StatusEvent(status: await supervisor.status()))
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "event: status\ndata: \(String(decoding: status, as: UTF8.self))\n\n"))
            for await line in stream {
                try await writer.write(ByteBuffer(string: line))
            }
            try await writer.finish(nil)
        })
    }

    /// The status as the first event: its fields, and `type` as every event carries.
    struct StatusEvent: Encodable {
        var status: StatusView
        enum Key: String, CodingKey { case type }

        func encode(to encoder: any Encoder) throws {
            try status.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode("status", forKey: .type)
        }
    }

    // MARK: - Helpers

    static func checkClientID(_ client: String) throws(Problem) {
        guard (1...64).contains(client.count), client.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw Problem.field("X-Stipple-Client", "\"\(client.prefix(80))\"", "1...64 letters, digits, - or _", status: 400)
        }
    }

    /// Who asks: the client id the caller chose, scoped by the peer credentials of its socket.
    func holder(_ request: Request, _ context: APIContext) throws(Problem) -> PresenceTable.Holder {
        let client = try clientID(request)
        guard let peer = context.peer else { throw Problem(403, .noCredentials, "the caller's credentials cannot be read") }
        return PresenceTable.Holder(uid: peer.uid, pid: peer.pid, client: client)
    }

    func clientID(_ request: Request) throws(Problem) -> String {
        guard let client = request.headers[.stippleClient] else {
            throw Problem(400, .clientIdMissing,
                          "send the header X-Stipple-Client with your client's id, and keep GET /v1/events open (or POST /v1/presence every second) while armed")
        }
        try Self.checkClientID(client)
        return client
    }

    /// Runs a command as the calling peer, mapping refusals to problems.
    func perform<T: Encodable & Sendable>(
        _ context: APIContext, current: String? = nil, status: HTTPResponse.Status = .ok,
        _ body: @Sendable (String) async throws -> T
    ) async throws -> Response {
        let actor = context.peer?.description ?? "unknown"
        if let current {
            let session = await supervisor.status().session
            guard let session, Identifier.same(session.id, current) || session.id == current else {
                throw Problem(404, .noSuchSession, "session \(current) is not the daemon's current session", state: await supervisor.status().phase)
            }
        }
        do {
            return try json(try await body(actor), status: status)
        } catch let error as CommandError {
            throw Problem(error)
        }
    }

    func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Names in the API are snake_case everywhere (docs/openapi.yaml).
        encoder.keyEncodingStrategy = .convertToSnakeCase
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}

extension HTTPField.Name {
    static let stippleClient = HTTPField.Name("X-Stipple-Client")!
}

/// Turns every error into an RFC 9457 problem; unknown routes are 404 problems, not HTML, and an
/// unexpected error is logged and answered without internals.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = APIContext
    let logger: Logger

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        let response = await answer(request, context: context, next: next)
        APIMetrics.count(method: "\(request.method)", route: context.endpointPath ?? "unmatched", status: Int(response.status.code))
        return response
    }

    func answer(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return problem.response
        } catch let error as HTTPError {
            let status = Int(error.status.code)
            if status == 404 || status == 405 {
                let allowed = Routes.allowedMethods(for: request.uri.path)
                if allowed.isEmpty || allowed.contains("\(request.method)") {
                    return Problem(404, .noSuchRoute, "no route \(request.method) \(request.uri.path)").response
                }
                var response = Problem(405, .methodNotAllowed,
                                       "\(request.method) is not allowed on \(request.uri.path) (allowed: \(allowed.joined(separator: ", ")))").response
                response.headers[.allow] = allowed.joined(separator: ", ")
                return response
            }
            if status == 413 { return Problem(413, .bodyTooLarge, "the body exceeds \(JSONBody.maximumBytes) bytes").response }
            // What else the router refuses is a request it cannot parse (400); any other status
            // would be the server's own failure, answered as such and logged.
            if status == 400 { return Problem(400, .httpError, error.body ?? "\(error.status)").response }
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "status": "\(status)", "error": "\(error)"])
            return Problem(503, ._internal, "the request could not be completed; the daemon logged why").response
        } catch {
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return Problem(503, ._internal, "the request could not be completed; the daemon logged why").response
        }
    }
}
