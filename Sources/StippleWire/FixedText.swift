/// Printable-ASCII text stored inline, so messages that carry a serial number, a cartridge
/// id or a log line stay plain values and decoding them never touches the heap.
public struct FixedText<let capacity: Int>: Hashable, Sendable, CustomStringConvertible {
    @usableFromInline var storage: InlineArray<capacity, UInt8>
    @usableFromInline var storedCount: Int

    /// Number of bytes in the text.
    @inlinable
    public var count: Int { storedCount }

    /// The empty text.
    @inlinable
    public init() {
        storage = InlineArray(repeating: 0)
        storedCount = 0
    }

    /// Builds a text; nil if it is longer than `capacity` or holds anything but printable
    /// ASCII (0x20–0x7E), the only bytes the protocol allows in text fields.
    @inlinable
    public init?(_ string: String) {
        self.init()
        for byte in string.utf8 {
            guard count < capacity, FixedTextRules.isPrintable(byte) else { return nil }
            storage[count] = byte
            storedCount += 1
        }
    }

    /// Builds a text from raw bytes with the same rules as `init?(_:)`.
    @inlinable
    public init?(bytes: some Sequence<UInt8>) {
        self.init()
        for byte in bytes {
            guard count < capacity, FixedTextRules.isPrintable(byte) else { return nil }
            storage[count] = byte
            storedCount += 1
        }
    }

    @inlinable
    public subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < count, "FixedText index out of range")
        return storage[index]
    }

    /// The bytes of the text.
    public var bytes: [UInt8] { (0..<count).map { storage[$0] } }

    public var string: String { String(decoding: bytes, as: UTF8.self) }

    public var isEmpty: Bool { count == 0 }

    public var description: String { string }

    /// The canonical quoted form used by trace output and the test vectors.
    public var quoted: String {
        var out = "\""
        for byte in bytes {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append("\\") }
            out.unicodeScalars.append(Unicode.Scalar(byte))
        }
        out.append("\"")
        return out
    }

    @inlinable
    public static func == (lhs: Self, rhs: Self) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for index in 0..<lhs.count where lhs.storage[index] != rhs.storage[index] { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for index in 0..<count { hasher.combine(storage[index]) }
    }
}

extension FixedText: ExpressibleByStringLiteral {
    /// For literals in code and tests; an invalid literal is a programming error.
    public init(stringLiteral value: String) {
        guard let text = FixedText(value) else {
            preconditionFailure("'\(value)' is not printable ASCII of at most \(capacity) bytes")
        }
        self = text
    }
}

@usableFromInline
enum FixedTextRules {
    @inlinable
    static func isPrintable(_ byte: UInt8) -> Bool { byte >= 0x20 && byte <= 0x7E }
}
