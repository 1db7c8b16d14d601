import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StippleAPI
import StippleRequests
import StippleSupervision
import StippleWire

/// The engineers' bring-up routes (docs/openapi.yaml, tag bring-up): identify, ping, raw,
/// trace, and releasing the serial port to a tool that talks to the pen directly. Engineers
/// only (group stipple-eng, the daemon's own user, root).
struct BringUpRoutes: Sendable {
    let supervisor: Supervisor

    static let table: [(method: String, path: String)] = [
        ("POST", "/v1/bringup/identify"), ("POST", "/v1/bringup/ping"), ("POST", "/v1/bringup/raw"),
        ("GET", "/v1/bringup/trace"), ("POST", "/v1/bringup/release"), ("POST", "/v1/bringup/reclaim"),
    ]

    func register(on v1: RouterGroup<APIContext>) {
        v1.post("bringup/identify") { request, context in try await identify(request, context) }
        v1.post("bringup/ping") { request, context in try await ping(request, context) }
        v1.post("bringup/raw") { request, context in try await raw(request, context) }
        v1.get("bringup/trace") { _, context in try await trace(context) }
        v1.post("bringup/release") { request, context in try await release(request, context) }
        v1.post("bringup/reclaim") { _, context in
            let actor = try engineer(context)
            do { try await supervisor.reclaimPort(actor: actor) } catch let error as CommandError { throw Problem(error) }
            return try json(["port": .optional(supervisor.bringUp.releasablePath), "state": "held"])
        }
    }

    func engineer(_ context: APIContext) throws(Problem) -> String {
        guard let peer = context.peer, peer.role == .engineer else {
            throw Problem(403, .engineersOnly, "bring-up calls need group stipple-eng (you are a technician)")
        }
        return peer.description
    }

    /// An optional body: empty means every default.
    /// The same strict reader as every route: 413 past 64 KiB, 415 for a body that is not JSON.
    func body(_ request: Request) async throws -> JSONBody {
        try await JSONBody.read(request, allowEmpty: true)
    }

    func answer(_ answer: Supervisor.BringUpAnswer, message: String) -> [String: JSONValue] {
        [
            "message": .string(message),
            "status": answer.status.map { .string("\($0)") } ?? .null,
            "detail": .int(Int64(answer.detail)),
            "round_trip_us": answer.roundTrip.map { .int($0.totalNanoseconds / 1000) } ?? .null,
        ]
    }

    func identify(_ request: Request, _ context: APIContext) async throws -> Response {
        let actor = try engineer(context)
        let body = try await body(request)
        try body.refuseUnknown(["duration_ms"])
        let duration = try body.integer("duration_ms", required: false, range: 0...10_000) ?? 3000
        do {
            return try json(answer(try await supervisor.identify(durationMs: duration, actor: actor), message: "identify"))
        } catch let error as CommandError { throw Problem(error) }
    }

    func ping(_ request: Request, _ context: APIContext) async throws -> Response {
        let actor = try engineer(context)
        let body = try await body(request)
        try body.refuseUnknown(["count"])
        let count = try body.integer("count", required: false, range: 1...1000) ?? 20
        let answers: [Supervisor.BringUpAnswer]
        do { answers = try await supervisor.ping(count: count, actor: actor) } catch { throw Problem(error) }
        let times = answers.compactMap(\.roundTrip).map { $0.totalNanoseconds / 1000 }.sorted()
        func percentile(_ p: Double) -> JSONValue {
            guard !times.isEmpty else { return .null }
            return .int(times[min(times.count - 1, Int((Double(times.count) * p).rounded(.up)) - 1)])
        }
        return try json([
            "count": .int(Int64(count)), "answered": .int(Int64(times.count)), "lost": .int(Int64(count - times.count)),
            "round_trips_us": .array(answers.map { $0.roundTrip.map { .int($0.totalNanoseconds / 1000) } ?? .null }),
            "p50_us": percentile(0.5), "p99_us": percentile(0.99),
            "min_us": times.first.map { .int($0) } ?? .null, "max_us": times.last.map { .int($0) } ?? .null,
        ] as [String: JSONValue])
    }

    func raw(_ request: Request, _ context: APIContext) async throws -> Response {
        let actor = try engineer(context)
        let body = try await body(request)
        try body.refuseUnknown(["message", "fields"])
        let name = try body.string("message", maxLength: 64) ?? ""
        var fields: [String: String] = [:]
        if let raw = body.object["fields"] {
            guard let object = raw as? [String: Any] else { throw Problem.field("fields", "\(raw)", "an object of field: value", status: 400) }
            for (key, value) in object.sorted(by: { $0.key < $1.key }) {
                switch value {
                case let text as String: fields[key] = text
                case let number as NSNumber where !JSONBody.isBoolean(number): fields[key] = "\(number)"
                default: throw Problem.field("fields.\(key)", "\(value is NSNull ? "null" : "\(value)")", "a string or a number", status: 400)
                }
            }
        }
        let message: Message
        do { message = try Message.make(name: name, fields: fields) } catch {
            throw Problem(422, .badMessage, "\(error)")
        }
        // Listen before sending: the answer may come back before the ACK is processed.
        let recording = supervisor.bringUp.record()
        let result: Supervisor.BringUpAnswer
        do { result = try await supervisor.raw(message, actor: actor) } catch {
            _ = recording.stop()
            throw Problem(error)
        }
        try? await Task.sleep(for: .milliseconds(100))
        let frames = Self.frames(in: recording.stop())
        var object = answer(result, message: name)
        object["sent"] = frames.first { $0.direction == .toPen && $0.frame.message.id == message.id }.map { Self.describe($0) } ?? .null
        object["frames"] = .array(frames.filter { $0.direction == .fromPen }.map { Self.describe($0) })
        return try json(object)
    }

    struct TracedFrame {
        var direction: BringUp.Chunk.Direction
        var at: MonotonicInstant
        var frame: Frame
    }

    /// Decodes what the tap collected, each direction with its own decoder.
    static func frames(in chunks: [BringUp.Chunk]) -> [TracedFrame] {
        var decoders: [BringUp.Chunk.Direction: FrameDecoder] = [.toPen: FrameDecoder(), .fromPen: FrameDecoder()]
        var frames: [TracedFrame] = []
        for chunk in chunks {
            for output in decoders[chunk.direction, default: FrameDecoder()].push(contentsOf: chunk.bytes) {
                if case .frame(let frame) = output { frames.append(TracedFrame(direction: chunk.direction, at: chunk.at, frame: frame)) }
            }
        }
        return frames
    }

    static func describe(_ traced: TracedFrame) -> JSONValue {
        .object([
            "direction": .string(traced.direction.rawValue),
            "text": .string("\(traced.frame)"),
            "hex": .string(Hex.format(FrameEncoder.encode(traced.frame), separator: " ")),
        ])
    }

    func trace(_ context: APIContext) async throws -> Response {
        _ = try engineer(context)
        let stream = supervisor.bringUp.subscribe()
        let transport = await supervisor.status().pen.transport
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let start = "{\"type\":\"trace\",\"transport\":\(transport.map { "\"\($0)\"" } ?? "null")}"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "event: trace\ndata: \(start)\n\n"))
            for await chunk in stream {
                let line = "{\"type\":\"bytes\",\"direction\":\"\(chunk.direction.rawValue)\",\"t_us\":\((chunk.at - .zero).totalNanoseconds / 1000),\"hex\":\"\(Hex.format(chunk.bytes, separator: " "))\"}"
                try await writer.write(ByteBuffer(string: "event: bytes\ndata: \(line)\n\n"))
            }
            try await writer.finish(nil)
        })
    }

    func release(_ request: Request, _ context: APIContext) async throws -> Response {
        let actor = try engineer(context)
        let body = try await body(request)
        try body.refuseUnknown(["seconds"])
        let seconds = try body.integer("seconds", required: false, range: 1...3600) ?? 300
        do {
            let port = try await supervisor.releasePort(for: .seconds(seconds), actor: actor)
            return try json(["port": .string(port), "seconds": .int(Int64(seconds)), "state": "released"])
        } catch let error as CommandError { throw Problem(error) }
    }

    func json(_ object: [String: JSONValue]) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(object))))
    }
}
