import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StippleSafety

/// An RFC 9457 problem: every refusal the API gives, naming the field, the value and the
/// allowed range where there is one, and the current state for a 409.
public struct Problem: Error, Sendable, Encodable {
    public struct FieldError: Encodable, Sendable {
        public var field: String
        public var value: String
        public var allowed: String
    }
    public struct CheckFailure: Encodable, Sendable {
        public var code: String
        public var message: String
    }

    public var status: Int
    public var title: String
    public var detail: String
    public var code: String
    public var state: String?
    public var errors: [FieldError]
    public var armingFailures: [CheckFailure]

    enum CodingKeys: String, CodingKey {
        case type, status, title, detail, code, state, errors, armingFailures = "arming_failures"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("https://stipple.invalid/problems/\(code)", forKey: .type)
        try container.encode(status, forKey: .status)
        try container.encode(title, forKey: .title)
        try container.encode(detail, forKey: .detail)
        try container.encode(code, forKey: .code)
        try container.encodeIfPresent(state, forKey: .state)
        if !errors.isEmpty { try container.encode(errors, forKey: .errors) }
        if !armingFailures.isEmpty { try container.encode(armingFailures, forKey: .armingFailures) }
    }

    public init(_ status: Int, _ code: String, _ detail: String, state: String? = nil,
                errors: [FieldError] = [], armingFailures: [CheckFailure] = []) {
        self.status = status
        self.code = code
        self.detail = detail
        self.state = state
        self.errors = errors
        self.armingFailures = armingFailures
        title = Self.title(status)
    }

    /// The reason phrase of a status this API answers with.
    static func title(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad request"
        case 403: "Forbidden"
        case 404: "Not found"
        case 405: "Method not allowed"
        case 409: "Conflict"
        case 413: "Content too large"
        case 415: "Unsupported media type"
        case 422: "Unprocessable content"
        case 429: "Too many requests"
        case 431: "Request header fields too large"
        case 503: "Service unavailable"
        default: "Error"
        }
    }

    /// A bad field in a request body.
    public static func field(_ field: String, _ value: String, _ allowed: String, status: Int = 422) -> Problem {
        Problem(status, "bad_field", "\(field): \(value) is outside the allowed range \(allowed)",
                errors: [FieldError(field: field, value: value, allowed: allowed)])
    }

    init(_ error: CommandError) {
        let status = switch error.kind {
        case .badRequest: 400
        case .forbidden: 403
        case .notFound: 404
        case .conflict: 409
        case .unavailable: 503
        case .unprocessable: 422
        }
        self.init(status, error.code, error.message, state: error.state,
                  errors: error.violations.map { FieldError(field: $0.field, value: $0.value, allowed: $0.allowed) },
                  armingFailures: error.armingFailures.map { CheckFailure(code: $0.code.rawValue, message: $0.message) })
    }

    var response: Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(self)) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        return Response(status: .init(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// A request body as a JSON object, read strictly: unknown fields, wrong types and values out of
/// range are refused with the field's name.
struct JSONBody {
    let object: [String: Any]

    static let maximumBytes = 64 * 1024

    static func read(_ request: Request, allowEmpty: Bool = false) async throws(Problem) -> JSONBody {
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw Problem(415, "unsupported_media_type", "send application/json (got \(type))")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: maximumBytes) } catch {
            throw Problem(413, "body_too_large", "the body exceeds \(maximumBytes) bytes")
        }
        if buffer.readableBytes == 0 {
            if allowEmpty { return JSONBody(object: [:]) }
            throw Problem(400, "body_missing", "a JSON object is required")
        }
        guard let value = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)),
              let object = value as? [String: Any] else {
            throw Problem(400, "body_not_json", "the body is not a JSON object")
        }
        return JSONBody(object: object)
    }

    func refuseUnknown(_ known: Set<String>) throws(Problem) {
        let unknown = Set(object.keys).subtracting(known).sorted()
        if let first = unknown.first {
            throw Problem(400, "unknown_field", "unknown field \(first) (known: \(known.sorted().joined(separator: ", ")))",
                          errors: unknown.map { Problem.FieldError(field: $0, value: "present", allowed: "not a field of this request") })
        }
    }

    func string(_ field: String, required: Bool = true, maxLength: Int = 256) throws(Problem) -> String? {
        guard let raw = object[field], !(raw is NSNull) else {
            if required { throw Problem.field(field, "missing", "a string", status: 400) }
            return nil
        }
        guard let value = raw as? String else { throw Problem.field(field, "\(raw)", "a string", status: 400) }
        guard value.count <= maxLength else { throw Problem.field(field, "\(value.count) characters", "at most \(maxLength) characters") }
        return value
    }

    func integer(_ field: String, required: Bool = true, range: ClosedRange<Int>) throws(Problem) -> Int? {
        guard let raw = object[field], !(raw is NSNull) else {
            if required { throw Problem.field(field, "missing", "an integer in \(range.lowerBound)...\(range.upperBound)", status: 400) }
            return nil
        }
        guard let number = raw as? NSNumber, !Self.isBoolean(number),
              let value = Int(exactly: number.doubleValue) else {
            throw Problem.field(field, "\(raw)", "an integer in \(range.lowerBound)...\(range.upperBound)", status: 400)
        }
        guard range.contains(value) else { throw Problem.field(field, "\(value)", "\(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    func number(_ field: String, required: Bool = true, range: ClosedRange<Double>) throws(Problem) -> Double? {
        guard let raw = object[field], !(raw is NSNull) else {
            if required { throw Problem.field(field, "missing", "a number in \(range.lowerBound)...\(range.upperBound)", status: 400) }
            return nil
        }
        guard let number = raw as? NSNumber, !Self.isBoolean(number), number.doubleValue.isFinite else {
            throw Problem.field(field, "\(raw)", "a number in \(range.lowerBound)...\(range.upperBound)", status: 400)
        }
        let value = number.doubleValue
        guard range.contains(value) else { throw Problem.field(field, "\(value)", "\(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    /// JSON `true` arrives as an NSNumber too; its type code tells it from 1.
    static func isBoolean(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    func strings(_ field: String, maxCount: Int = 16) throws(Problem) -> [String] {
        guard let raw = object[field] else { throw Problem.field(field, "missing", "an array of strings", status: 400) }
        guard let values = raw as? [String] else { throw Problem.field(field, "\(raw)", "an array of strings", status: 400) }
        guard values.count <= maxCount else { throw Problem.field(field, "\(values.count) items", "at most \(maxCount) items") }
        return values
    }

    func choice<T: RawRepresentable & CaseIterable>(_ field: String, _ type: T.Type, required: Bool = true) throws(Problem) -> T? where T.RawValue == String {
        guard let value = try string(field, required: required) else { return nil }
        guard let choice = T(rawValue: value) else {
            throw Problem.field(field, "\"\(value)\"", "one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return choice
    }
}
