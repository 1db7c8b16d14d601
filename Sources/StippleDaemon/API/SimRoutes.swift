import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StippleAPI
import StippleRequests

/// `/v1/sim` (docs/openapi.yaml, tag simulator): the simulated pen's pedal, e-stop button,
/// cartridge and faults, driven from outside so that the console's tests, CI rigs and a demo can
/// press the pedal without `make sim`'s console. Engineers only, and only with `--pen sim`: with
/// a real pen every one of these paths is 404 `not_simulated`, whoever asks.
struct SimRoutes: Sendable {
    let simulator: (any SimulatedPenControl)?

    static let table: [(method: String, path: String)] = [
        ("GET", "/v1/sim"), ("POST", "/v1/sim/pedal"), ("POST", "/v1/sim/estop-button"), ("POST", "/v1/sim/fault"),
        ("PUT", "/v1/sim/cartridge"), ("DELETE", "/v1/sim/cartridge"),
    ]

    func register(on v1: RouterGroup<APIContext>) {
        v1.get("sim") { _, context in try await acting(context) { _, _ in } }
        v1.post("sim/pedal") { request, context in
            try await acting(context) { simulator, actor in simulator.setPedal(try await pressed(request), actor: actor) }
        }
        v1.post("sim/estop-button") { request, context in
            try await acting(context) { simulator, actor in simulator.setEstopButton(try await pressed(request), actor: actor) }
        }
        v1.post("sim/fault") { request, context in
            try await acting(context) { simulator, actor in
                try simulator.inject(faultJSON: try await fault(request), actor: actor)
            }
        }
        v1.put("sim/cartridge") { request, context in
            try await acting(context) { simulator, actor in simulator.insertCartridge(try await cartridge(request), actor: actor) }
        }
        v1.delete("sim/cartridge") { _, context in
            try await acting(context) { simulator, actor in simulator.removeCartridge(actor: actor) }
        }
    }

    /// Every route's shape: who may ask (`engineer`), what it does, and the simulated pen's
    /// state after it as the answer.
    func acting(_ context: APIContext, _ action: (any SimulatedPenControl, String) async throws -> Void) async throws -> Response {
        let (simulator, actor) = try engineer(context)
        try await action(simulator, actor)
        return try json(simulator.state())
    }

    /// The fault's body as the simulator's reader takes it. The name is checked here for its type
    /// and length, and each parameter for being a number or text, named while the key is still
    /// known; which parameters a fault takes, and their ranges, the simulator's reader knows.
    func fault(_ request: Request) async throws -> Data {
        let body = try await JSONBody.read(request)
        _ = try body.string("fault", maxLength: 64)
        for key in body.object.keys.sorted() where key != "fault" {
            let raw = try body.present(key, "a number or text")
            if let number = raw as? NSNumber, !JSONBody.isBoolean(number) { continue }
            if raw is String { continue }
            throw Problem.field(key, "\(raw ?? "")", "a number or text (stipple-sim list-faults: the fault's parameters)", status: 400)
        }
        return try JSONSerialization.data(withJSONObject: body.object)
    }

    /// The simulator, and the engineer asking: 404 first (there is nothing to drive with a real
    /// pen, whoever asks), then 403 for anyone but an engineer.
    func engineer(_ context: APIContext) throws(Problem) -> (any SimulatedPenControl, String) {
        guard let simulator else {
            throw Problem(404, .notSimulated, "the daemon drives a real pen: /v1/sim exists only with --pen sim")
        }
        guard let peer = context.peer, peer.role == .engineer else {
            throw Problem(403, .engineersOnly, "the simulator's controls need group stipple-eng (you are a technician)")
        }
        return (simulator, peer.description)
    }

    func pressed(_ request: Request) async throws -> Bool {
        let body = try await JSONBody.read(request)
        try body.refuseUnknown(["pressed"])
        return try body.boolean("pressed") ?? false
    }

    func cartridge(_ request: Request) async throws -> Components.Schemas.SimCartridge {
        let body = try await JSONBody.read(request)
        try body.refuseUnknown(["id", "needle_count", "needle_diameter_um", "lot", "expiry_days"])
        guard let id = try body.string("id", maxLength: 16) else { throw Problem.field("id", "missing", "1 to 16 printable ASCII characters", status: 400) }
        for (field, text) in [("id", id), ("lot", try body.string("lot", required: false, maxLength: 12) ?? "")] {
            guard text.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
                throw Problem.field(field, "\"\(text)\"", "printable ASCII (the cartridge chip stores nothing else)")
            }
        }
        guard !id.isEmpty else { throw Problem.field("id", "\"\"", "1 to 16 printable ASCII characters") }
        return Components.Schemas.SimCartridge(
            id: id,
            needleCount: try body.integer("needle_count", required: false, range: 0...64),
            needleDiameterUm: try body.integer("needle_diameter_um", required: false, range: 0...1000),
            lot: try body.string("lot", required: false, maxLength: 12),
            expiryDays: try body.integer("expiry_days", required: false, range: 0...65535))
    }

    func json<T: Encodable>(_ value: T) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
