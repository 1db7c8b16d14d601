// The strict reader's face for `Decodable` types: files read into typed values (HardwareSim's
// scenarios and pen configurations), by the rules `JSONBody` applies to the API's bodies: an
// unknown key and `null` refused at their place. A key given twice is found before decoding, by
// `DuplicateKeys` over the bytes (`Scenario.parse`, the API's body reader), since a decoder
// never sees the second one.

/// A coding key made of any text: the protocol's field names, which come from the generated
/// tables at run time rather than from an enum written here.
public struct AnyKey: CodingKey, Hashable {
    public var stringValue: String
    public var intValue: Int? { nil }

    public init(_ stringValue: String) { self.stringValue = stringValue }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

/// One JSON object inside a `Decodable`, read with typed values through its `CodingKeys`.
///
/// It remembers every key it was asked for, so that `finish` can refuse any other: a misspelt
/// parameter (`"presed": true`) must fail loudly rather than leave a default in place and let a
/// scenario test something else than it says. Errors are `DecodingError`s at the exact coding
/// path, which the caller turns into a location a person can find (`ScenarioError`).
public struct KeyedReader<Key: CodingKey> {
    public let codingPath: [any CodingKey]
    private let container: KeyedDecodingContainer<AnyKey>
    private var asked: [String] = []

    public init(_ decoder: any Decoder, keyedBy: Key.Type = Key.self) throws {
        container = try decoder.container(keyedBy: AnyKey.self)
        codingPath = decoder.codingPath
    }

    public func contains(_ key: Key) -> Bool { container.contains(AnyKey(key.stringValue)) }

    public mutating func decode<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T {
        try decode(type, field: key.stringValue)
    }

    public mutating func decodeIfPresent<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
        try decodeIfPresent(type, field: key.stringValue)
    }

    /// A value under a name that is not one of `Key`'s: a protocol field name from the generated
    /// message tables.
    public mutating func decode<T: Decodable>(_ type: T.Type, field: String) throws -> T {
        guard let value = try decodeIfPresent(type, field: field) else {
            throw DecodingError.keyNotFound(AnyKey(field), .init(codingPath: codingPath, debugDescription: "\(field) is required"))
        }
        return value
    }

    /// Absent is nil; `null` is refused, as `JSONBody` refuses it: a writer who puts it there
    /// meant something, and "the default" is not it.
    public mutating func decodeIfPresent<T: Decodable>(_ type: T.Type, field: String) throws -> T? {
        asked.append(field)
        let key = AnyKey(field)
        guard container.contains(key) else { return nil }
        if try container.decodeNil(forKey: key) { throw invalid(field: field, "null (omit the field for its default)") }
        return try container.decode(type, forKey: key)
    }

    /// A value that must lie in `range`, refused by name otherwise.
    public mutating func decodeIfPresent<T: Decodable & Comparable>(_ type: T.Type, _ key: Key, in range: ClosedRange<T>) throws -> T? {
        guard let value = try decodeIfPresent(type, key) else { return nil }
        guard range.contains(value) else { throw invalid(key, "\(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    /// A field whose `null` the format gives a meaning (a pen configuration's empty cartridge
    /// slot): absent is `.none`, `null` is `.some(nil)`.
    public mutating func decodeNullable<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T?? {
        asked.append(key.stringValue)
        let field = AnyKey(key.stringValue)
        guard container.contains(field) else { return .none }
        if try container.decodeNil(forKey: field) { return .some(nil) }
        return .some(try container.decode(type, forKey: field))
    }

    /// A number of milliseconds as time; nil when absent. See `duration(_:unit:in:)`.
    public mutating func milliseconds(_ key: Key, in range: ClosedRange<Double>) throws -> Duration? {
        try duration(key, unit: ("ms", 1_000_000), in: range)
    }

    /// A number of `unit`s (whole or not) as a Duration, checked against `range` first so that
    /// no value can overflow the conversion. Whole numbers convert exactly; fractions to the
    /// nanosecond.
    public mutating func duration(_ key: Key, unit: (name: String, nanoseconds: Int64), in range: ClosedRange<Double>) throws -> Duration? {
        guard let value = try decodeIfPresent(Double.self, key) else { return nil }
        guard range.contains(value) else {
            throw invalid(key, "\(Self.text(value)) is outside \(Self.text(range.lowerBound))...\(Self.text(range.upperBound)) \(unit.name)")
        }
        if let whole = Int64(exactly: value) { return .nanoseconds(whole * unit.nanoseconds) }
        return .nanoseconds(Int64((value * Double(unit.nanoseconds)).rounded()))
    }

    /// One of a protocol enumeration's values, by its protocol name (`allKnown` and `name` come
    /// from the generated code).
    public mutating func named<T>(_ key: Key, _ allKnown: [T], _ name: (T) -> String?) throws -> T {
        let text = try decode(String.self, key)
        guard let value = allKnown.first(where: { name($0) == text }) else {
            throw invalid(key, "'\(text)' is not one of \(allKnown.compactMap(name).joined(separator: ", "))")
        }
        return value
    }

    /// The error for a required key that is absent.
    public func missing(_ key: Key) -> DecodingError {
        .keyNotFound(AnyKey(key.stringValue), .init(codingPath: codingPath, debugDescription: "\(key.stringValue) is required"))
    }

    /// An error about the value under `key`.
    public func invalid(_ key: Key, _ reason: String) -> DecodingError {
        invalid(field: key.stringValue, reason)
    }

    public func invalid(field: String, _ reason: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: codingPath + [AnyKey(field)], debugDescription: reason))
    }

    /// An error about this object as a whole.
    public func invalid(_ reason: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: codingPath, debugDescription: reason))
    }

    /// Keys of this object that another reader of it reads (a step's trigger, beside a fault's
    /// parameters).
    public mutating func allow(_ names: String...) { asked += names }

    /// Refuses every key that nobody asked for.
    public func finish(_ what: String) throws {
        let unknown = container.allKeys.map(\.stringValue).filter { !asked.contains($0) }.sorted()
        guard let first = unknown.first else { return }
        var known: [String] = []
        for key in asked where !known.contains(key) { known.append(key) }
        throw invalid("unknown key '\(first)' for \(what); it takes \(known.isEmpty ? "none" : known.joined(separator: ", "))")
    }

    private static func text(_ value: Double) -> String {
        Int64(exactly: value).map(String.init) ?? "\(value)"
    }
}
