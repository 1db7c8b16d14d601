/// Why a payload could not be decoded. Plain data (a field name is a `StaticString`), so
/// throwing it is free and nothing built from it needs destroying.
public enum PayloadError: Error, Hashable, Sendable {
    case unknownID
    case badLength(expected: Int)
    /// The protocol name of the field that is out of range or malformed.
    case badField(StaticString)

    public static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.unknownID, .unknownID): true
        case (.badLength(let lhs), .badLength(let rhs)): lhs == rhs
        case (.badField(let lhs), .badField(let rhs)): lhs.description == rhs.description
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .unknownID: hasher.combine(0)
        case .badLength(let expected): hasher.combine(1); hasher.combine(expected)
        case .badField(let field): hasher.combine(2); hasher.combine(field.description)
        }
    }
}

/// Little-endian reads over a payload whose length the caller has already checked.
@usableFromInline
struct PayloadReader {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    @usableFromInline var offset = 0

    @inlinable
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable
    mutating func u8() -> UInt8 {
        defer { offset += 1 }
        return bytes[offset]
    }

    @inlinable
    mutating func u16() -> UInt16 {
        defer { offset += 2 }
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable
    mutating func u32() -> UInt32 {
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable
    mutating func i16() -> Int16 { Int16(bitPattern: u16()) }

    @inlinable
    mutating func i32() -> Int32 { Int32(bitPattern: u32()) }

    /// A NUL-padded text field of `width` bytes: printable ASCII, then only NULs.
    @inlinable
    mutating func text<let n: Int>(_ width: Int, as: FixedText<n>.Type) -> FixedText<n>? {
        defer { offset += width }
        var text = FixedText<n>()
        var index = 0
        var builder = FixedTextBuilder(text: text)
        while index < width, bytes[offset + index] != 0 {
            guard builder.append(bytes[offset + index]) else { return nil }
            index += 1
        }
        while index < width {
            guard bytes[offset + index] == 0 else { return nil }
            index += 1
        }
        text = builder.text
        return text
    }

    /// A text that runs to the end of the payload.
    @inlinable
    mutating func restText<let n: Int>(as: FixedText<n>.Type) -> FixedText<n>? {
        var builder = FixedTextBuilder(text: FixedText<n>())
        while offset < bytes.count {
            guard builder.append(bytes[offset]) else { return nil }
            offset += 1
        }
        return builder.text
    }
}

/// Appends validated bytes to a FixedText without going through String.
@usableFromInline
struct FixedTextBuilder<let n: Int> {
    @usableFromInline var text: FixedText<n>

    @inlinable
    init(text: FixedText<n>) { self.text = text }

    @inlinable
    mutating func append(_ byte: UInt8) -> Bool {
        guard text.count < n, FixedTextRules.isPrintable(byte) else { return false }
        text.appendUnchecked(byte)
        return true
    }
}

extension FixedText {
    @inlinable
    mutating func appendUnchecked(_ byte: UInt8) {
        storage[storedCount] = byte
        storedCount += 1
    }
}

/// Little-endian writes into a buffer of at least FrameLimits.maxPayload bytes.
@usableFromInline
struct PayloadWriter {
    @usableFromInline let bytes: UnsafeMutableRawBufferPointer
    @usableFromInline var offset = 0

    @inlinable
    init(_ bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    @inlinable
    mutating func u8(_ value: UInt8) {
        bytes[offset] = value
        offset += 1
    }

    @inlinable
    mutating func u16(_ value: UInt16) {
        bytes.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self)
        offset += 2
    }

    @inlinable
    mutating func u32(_ value: UInt32) {
        bytes.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
        offset += 4
    }

    @inlinable
    mutating func i16(_ value: Int16) { u16(UInt16(bitPattern: value)) }

    @inlinable
    mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }

    /// The text, NUL-padded to `width`.
    @inlinable
    mutating func text<let n: Int>(_ text: FixedText<n>, width: Int) {
        for index in 0..<width {
            bytes[offset + index] = index < text.count ? text.storage[index] : 0
        }
        offset += width
    }
}

/// Canonical flag text: known bit names joined by `|`, unknown bits as hex, `0` for none.
func formatFlags(_ value: UInt64, names: [(bit: Int, name: String)]) -> String {
    var parts: [String] = []
    var known: UInt64 = 0
    for (bit, name) in names {
        known |= 1 << UInt64(bit)
        if value & (1 << UInt64(bit)) != 0 { parts.append(name) }
    }
    if value & ~known != 0 { parts.append("0x" + String(value & ~known, radix: 16, uppercase: true)) }
    return parts.isEmpty ? "0" : parts.joined(separator: "|")
}
