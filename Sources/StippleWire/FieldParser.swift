/// A field value given as text (by a person, to `stipplectl encode`) that cannot be used.
public struct FieldValueError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The protocol name of the field.
    public var field: String
    /// What is wrong and what is allowed.
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

/// Parses `field=value` texts into typed field values for `Message.make`.
struct FieldParser {
    let message: String
    var remaining: [String: String]

    init(message: String, fields: [String: String]) {
        self.message = message
        self.remaining = fields
    }

    private mutating func take(_ field: String) throws(FieldValueError) -> String {
        guard let text = remaining.removeValue(forKey: field) else {
            throw FieldValueError(field: field, reason: "missing; \(message) needs it")
        }
        return text
    }

    mutating func integer<T: FixedWidthInteger>(
        _ field: String, _ range: ClosedRange<Int64>, as: T.Type
    ) throws(FieldValueError) -> T {
        let text = try take(field)
        let value: Int64?
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            value = Int64(text.dropFirst(2), radix: 16)
        } else {
            value = Int64(text)
        }
        guard let value else {
            throw FieldValueError(field: field, reason: "'\(text)' is not an integer; allowed \(range.lowerBound)...\(range.upperBound)")
        }
        guard range.contains(value) else {
            throw FieldValueError(field: field, reason: "\(value) is outside the allowed range \(range.lowerBound)...\(range.upperBound)")
        }
        return T(value)
    }

    mutating func enumValue<T: ProtocolEnum>(_ field: String, as: T.Type) throws(FieldValueError) -> T {
        let text = try take(field)
        if let known = T.allKnown.first(where: { $0.name == text }) { return known }
        if let raw = UInt8(text), !T.isClosed || T.allKnown.contains(where: { $0.rawValue == raw }) {
            return T(rawValue: raw)
        }
        let names = T.allKnown.compactMap(\.name).joined(separator: ", ")
        throw FieldValueError(field: field, reason: "'\(text)' is not one of \(names)")
    }

    mutating func flags<T: ProtocolFlags>(_ field: String, as: T.Type) throws(FieldValueError) -> T {
        let text = try take(field)
        if let raw = UInt64(text) ?? (text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : nil) {
            guard raw <= UInt64(T.RawValue.max) else {
                throw FieldValueError(field: field, reason: "\(raw) does not fit in \(T.RawValue.bitWidth) bits")
            }
            return T(rawValue: T.RawValue(raw))
        }
        var value: T.RawValue = 0
        for name in text.split(separator: "|") {
            guard let bit = T.bitNames.first(where: { $0.name == name })?.bit else {
                let names = T.bitNames.map(\.name).joined(separator: ", ")
                throw FieldValueError(field: field, reason: "'\(name)' is not one of \(names)")
            }
            value |= 1 << T.RawValue(bit)
        }
        return T(rawValue: value)
    }

    mutating func text<let n: Int>(_ field: String, as: FixedText<n>.Type) throws(FieldValueError) -> FixedText<n> {
        let text = try take(field)
        guard let value = FixedText<n>(text) else {
            throw FieldValueError(field: field, reason: "must be printable ASCII of at most \(n) bytes")
        }
        return value
    }

    func finish() throws(FieldValueError) {
        if let extra = remaining.keys.sorted().first {
            throw FieldValueError(field: extra, reason: "\(message) has no such field")
        }
    }
}

/// The generated enum structs, seen generically by the parser.
protocol ProtocolEnum: RawRepresentable where RawValue == UInt8 {
    static var allKnown: [Self] { get }
    static var isClosed: Bool { get }
    var name: String? { get }
    init(rawValue: UInt8)
}

/// The generated flag sets, seen generically by the parser.
protocol ProtocolFlags: OptionSet where RawValue: FixedWidthInteger & UnsignedInteger {
    static var bitNames: [(bit: Int, name: String)] { get }
}

extension PenState: ProtocolEnum {}
extension AckStatus: ProtocolEnum {}
extension FaultCode: ProtocolEnum {}
extension ResetCause: ProtocolEnum {}
extension CartridgeEvent: ProtocolEnum {}
extension LogLevel: ProtocolEnum {}
extension Capabilities: ProtocolFlags {}
extension PenFlags: ProtocolFlags {}
