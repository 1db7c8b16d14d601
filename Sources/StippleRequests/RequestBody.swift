// The strict reader of the local API's request bodies and the problems it answers with: a
// module of its own, on Foundation only, so that the fuzzer runs exactly what the routes run
// (Tests/Fuzz) without building the HTTP server around it.
import Foundation

/// An RFC 9457 problem: every refusal the API gives, naming the field, the value and the
/// allowed range where there is one, and the current state for a 409.
public struct Problem: Error, Sendable, Encodable {
    public struct FieldError: Encodable, Sendable {
        public var field: String
        public var value: String
        public var allowed: String

        public init(field: String, value: String, allowed: String) {
            self.field = field
            self.value = value
            self.allowed = allowed
        }
    }
    public struct CheckFailure: Encodable, Sendable {
        public var code: String
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
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
    public static func title(_ status: Int) -> String {
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

}

/// A request body as a JSON object, read strictly: unknown fields, wrong types and values out of
/// range are refused with the field's name.
public struct JSONBody {
    public let object: [String: Any]

    public static let maximumBytes = 64 * 1024

    public init(object: [String: Any]) { self.object = object }

    /// The strict reader itself, on bytes: what the routes and the fuzzer run.
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(Problem) -> JSONBody {
        guard bytes.count <= maximumBytes else { throw Problem(413, "body_too_large", "the body exceeds \(maximumBytes) bytes") }
        guard let value = try? JSONSerialization.jsonObject(with: Data(bytes)),
              let object = value as? [String: Any] else {
            throw Problem(400, "body_not_json", "the body is not a JSON object")
        }
        switch DuplicateKeys.find(in: bytes) {
        case .duplicate(let path):
            throw Problem(400, "bad_field", "\(path) is given twice: each field may appear once",
                          errors: [Problem.FieldError(field: path, value: "given twice", allowed: "once")])
        case .tooDeep(let path):
            throw Problem(400, "body_not_json", "the body nests deeper than \(DuplicateKeys.maximumDepth) levels (at \(path))")
        case nil:
            return JSONBody(object: object)
        }
    }

    /// `application/json`, with parameters (`; charset=utf-8`) or not, in any case.
    public static func isJSON(_ contentType: String) -> Bool {
        let media = contentType.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        return media.trimmingCharacters(in: .whitespaces).lowercased() == "application/json"
    }
    public func refuseUnknown(_ known: Set<String>) throws(Problem) {
        let unknown = Set(object.keys).subtracting(known).sorted()
        if let first = unknown.first {
            throw Problem(400, "unknown_field", "unknown field \(first) (known: \(known.sorted().joined(separator: ", ")))",
                          errors: unknown.map { Problem.FieldError(field: $0, value: "present", allowed: "not a field of this request") })
        }
    }

    /// No request field is nullable (docs/openapi.yaml): `null` is refused with the field's name,
    /// never taken as "absent" — a client that sends it has a bug worth hearing about.
    public func present(_ field: String, _ allowed: String) throws(Problem) -> Any? {
        guard let raw = object[field] else { return nil }
        if raw is NSNull { throw Problem.field(field, "null", "\(allowed) (omit the field for its default)", status: 400) }
        return raw
    }

    /// `allowed` says what the string is for where the field's name does not (a configuration
    /// file's "the serial number of the pen to use").
    public func string(_ field: String, required: Bool = true, maxLength: Int = 256, allowed: String = "a string") throws(Problem) -> String? {
        guard let raw = try present(field, allowed) else {
            if required { throw Problem.field(field, "missing", allowed, status: 400) }
            return nil
        }
        guard let value = raw as? String else { throw Problem.field(field, "\(raw)", allowed, status: 400) }
        guard value.count <= maxLength else { throw Problem.field(field, "\(value.count) characters", "at most \(maxLength) characters") }
        return value
    }

    /// Any whole number when `range` is all of `Int` ("an integer"), else one in `range`.
    public func integer(_ field: String, required: Bool = true, range: ClosedRange<Int>) throws(Problem) -> Int? {
        let kind = range == Int.min...Int.max ? "an integer" : "an integer in \(range.lowerBound)...\(range.upperBound)"
        guard let raw = try present(field, kind) else {
            if required { throw Problem.field(field, "missing", kind, status: 400) }
            return nil
        }
        guard let number = raw as? NSNumber, let value = Self.exactInteger(number) else {
            throw Problem.field(field, "\(raw)", kind, status: 400)
        }
        guard range.contains(value) else { throw Problem.field(field, "\(value)", "\(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    /// JSON `true` or `false` only: never 1, "yes" or "true".
    public func boolean(_ field: String, required: Bool = true) throws(Problem) -> Bool? {
        guard let raw = try present(field, "true or false") else {
            if required { throw Problem.field(field, "missing", "true or false", status: 400) }
            return nil
        }
        guard let number = raw as? NSNumber, Self.isBoolean(number) else { throw Problem.field(field, "\(raw)", "true or false", status: 400) }
        return number.boolValue
    }

    /// `note` says whose range it is where two could be meant (the window in force, not the
    /// firmware's absolute one).
    public func number(_ field: String, required: Bool = true, range: ClosedRange<Double>, note: String? = nil) throws(Problem) -> Double? {
        guard let raw = try present(field, "a number in \(range.lowerBound)...\(range.upperBound)") else {
            if required { throw Problem.field(field, "missing", "a number in \(range.lowerBound)...\(range.upperBound)", status: 400) }
            return nil
        }
        guard let number = raw as? NSNumber, !Self.isBoolean(number), number.doubleValue.isFinite else {
            throw Problem.field(field, "\(raw)", "a number in \(range.lowerBound)...\(range.upperBound)", status: 400)
        }
        let value = number.doubleValue
        guard range.contains(value) else {
            throw Problem.field(field, "\(value)", "\(range.lowerBound)...\(range.upperBound)" + (note.map { " \($0)" } ?? ""))
        }
        return value
    }

    /// The whole number a JSON number is, exactly, or nil: never a boolean, never a fraction, and
    /// never through a `Double` for an integer the parser kept whole — 9007199254740993 would
    /// round to ...992 there and pass as a number nobody wrote.
    public static func exactInteger(_ number: NSNumber) -> Int? {
        switch String(cString: number.objCType) {
        case "c": nil
        // Written with a fraction or an exponent, the parser kept a Double: whole numbers past
        // 2^53 are no longer the number written (9007199254740993.0 reads as ...992), so refused.
        case "d", "f": abs(number.doubleValue) < 9_007_199_254_740_992 ? Int(exactly: number.doubleValue) : nil
        case "Q": Int(exactly: number.uint64Value)
        default: Int(exactly: number.int64Value)
        }
    }

    /// JSON `true` arrives as an NSNumber too; its type code tells it from 1.
    public static func isBoolean(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    public func strings(_ field: String, maxCount: Int = 16) throws(Problem) -> [String] {
        guard let raw = try present(field, "an array of strings") else { throw Problem.field(field, "missing", "an array of strings", status: 400) }
        guard let values = raw as? [String] else { throw Problem.field(field, "\(raw)", "an array of strings", status: 400) }
        guard values.count <= maxCount else { throw Problem.field(field, "\(values.count) items", "at most \(maxCount) items") }
        return values
    }

    public func choice<T: RawRepresentable & CaseIterable>(_ field: String, _ type: T.Type, required: Bool = true) throws(Problem) -> T? where T.RawValue == String {
        guard let value = try string(field, required: required) else { return nil }
        guard let choice = T(rawValue: value) else {
            throw Problem.field(field, "\"\(value)\"", "one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return choice
    }
}

/// The same strict reading where every problem is wanted at once rather than the first: a
/// configuration file is read whole and refused with the list of what is wrong in it (exit 78),
/// where an API request stops at its first bad field. Each check is `JSONBody`'s own — one
/// strict reader, two ways to report.
public struct FieldReader {
    public let body: JSONBody
    /// Put before each field's name in a problem (`gpio.lines.pedal.`).
    public let prefix: String
    public private(set) var problems: [Problem.FieldError] = []

    /// Every key not in `known` is a problem at once, named with the keys there are.
    public init(_ object: [String: Any], prefix: String = "", known: Set<String>) {
        body = JSONBody(object: object)
        self.prefix = prefix
        for key in object.keys.sorted() where !known.contains(key) {
            problems.append(.init(field: prefix + key, value: "present", allowed: "one of \(known.sorted().joined(separator: ", "))"))
        }
    }

    public mutating func string(_ key: String, allowed: String) -> String? {
        collect { body throws(Problem) in try body.string(key, required: false, maxLength: .max, allowed: allowed.isEmpty ? "a string" : "a string: \(allowed)") }
    }

    public mutating func integer(_ key: String, range: ClosedRange<Int>) -> Int? {
        collect { body throws(Problem) in try body.integer(key, required: false, range: range) }
    }

    public mutating func boolean(_ key: String) -> Bool? {
        collect { body throws(Problem) in try body.boolean(key, required: false) }
    }

    /// A problem the caller found itself (two fields that exclude each other, a name not in a
    /// table): `field` is relative to the prefix, or absolute when `absolute`.
    public mutating func add(_ field: String, value: String, allowed: String, absolute: Bool = false) {
        problems.append(.init(field: absolute ? field : prefix + field, value: value, allowed: allowed))
    }

    /// The problems of a reader of a nested object, in order.
    public mutating func add(_ nested: FieldReader) { problems += nested.problems }

    private mutating func collect<T>(_ read: (JSONBody) throws(Problem) -> T?) -> T? {
        do {
            return try read(body)
        } catch {
            problems += error.errors.map { .init(field: prefix + $0.field, value: $0.value, allowed: $0.allowed) }
            return nil
        }
    }
}
