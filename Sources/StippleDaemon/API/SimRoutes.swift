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
        v1.get("sim") { _, context in
            let (simulator, _) = try engineer(context)
            return try json(simulator.state())
        }
        v1.post("sim/pedal") { request, context in
            let (simulator, actor) = try engineer(context)
            simulator.setPedal(try await pressed(request), actor: actor)
            return try json(simulator.state())
        }
        v1.post("sim/estop-button") { request, context in
            let (simulator, actor) = try engineer(context)
            simulator.setEstopButton(try await pressed(request), actor: actor)
            return try json(simulator.state())
        }
        v1.post("sim/fault") { request, context in
            let (simulator, actor) = try engineer(context)
            let body = try await JSONBody.read(request)
            // The name is checked here for its type and length; the fault's parameters by the
            // simulator's own reader, which knows what each fault takes.
            _ = try body.string("fault", maxLength: 64)
            // Each parameter is a number or text (`stipple-sim list-faults` says which); anything
            // else is named here, where the key is still known.
            for key in body.object.keys.sorted() where key != "fault" {
                let raw = try body.present(key, "a number or text")
                if let number = raw as? NSNumber, !JSONBody.isBoolean(number) { continue }
                if raw is String { continue }
                throw Problem.field(key, "\(raw ?? "")", "a number or text (stipple-sim list-faults: the fault's parameters)", status: 400)
            }
            try simulator.inject(faultJSON: try JSONSerialization.data(withJSONObject: body.object), actor: actor)
            return try json(simulator.state())
        }
        v1.put("sim/cartridge") { request, context in
            let (simulator, actor) = try engineer(context)
            simulator.insertCartridge(try await cartridge(request), actor: actor)
            return try json(simulator.state())
        }
        v1.delete("sim/cartridge") { _, context in
            let (simulator, actor) = try engineer(context)
            simulator.removeCartridge(actor: actor)
            return try json(simulator.state())
        }
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
