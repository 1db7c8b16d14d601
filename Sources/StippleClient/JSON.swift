import Foundation

/// A JSON value as the daemon sent it. stipplectl reads answers loosely (by key) so that a
/// field the API adds later never breaks it; the end-to-end tests hold the shapes to
/// docs/openapi.yaml.
public enum JSON: Sendable, Equatable, Codable, ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }

    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSON])
    case object([String: JSON])

    public init(data: Data) throws {
        self = try JSONDecoder().decode(JSON.self, from: data)
    }

    public subscript(key: String) -> JSON {
        if case .object(let object) = self { return object[key] ?? .null }
        return .null
    }

    public subscript(index: Int) -> JSON {
        if case .array(let array) = self, array.indices.contains(index) { return array[index] }
        return .null
    }

    public var string: String? { if case .string(let value) = self { value } else { nil } }
    public var double: Double? { if case .number(let value) = self { value } else { nil } }
    public var int: Int? { double.flatMap { $0.isFinite ? Int(exactly: $0.rounded()) : nil } }
    public var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    public var array: [JSON] { if case .array(let value) = self { value } else { [] } }
    public var object: [String: JSON] { if case .object(let value) = self { value } else { [:] } }
    public var isNull: Bool { self == .null }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSON].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSON].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): if let int = Int(exactly: value) { try container.encode(int) } else { try container.encode(value) }
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The value as text for people: strings bare, numbers without a needless ".0".
    public var text: String {
        switch self {
        case .string(let value): value
        case .number(let value): value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
        case .bool(let value): value ? "yes" : "no"
        case .null: "-"
        case .array(let values): values.map(\.text).joined(separator: ", ")
        case .object: "{…}"
        }
    }
}

extension Data {
    /// The bytes as one line of text (for `--json`: the daemon's JSON exactly as it came).
    public var text: String { String(decoding: self, as: UTF8.self) }
}

extension Encodable {
    /// Compact JSON with sorted keys (request bodies).
    public func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }
}
