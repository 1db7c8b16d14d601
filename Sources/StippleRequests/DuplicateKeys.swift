/// JSON leaves a key given twice in one object to the parser (RFC 8259 §4: "SHOULD be unique"),
/// and Foundation's parsers keep one of the two silently. For a safety limit that is a parser
/// differential waiting to happen — `{"depth_um": 500, "depth_um": 2000}` reads as 500 to one
/// tool and 2000 to the next — so every strict reader of the project (API bodies, the
/// configuration file, scenario files) refuses it, naming the key, through this one scan.
public enum DuplicateKeys {
    /// The deepest nesting scanned; deeper input is reported as such rather than recursed into
    /// (the API's bodies are at most 64 KiB, a recursion per byte would still be deep).
    public static let maximumDepth = 64

    public enum Finding: Equatable, Sendable, CustomStringConvertible {
        /// The path of the second occurrence: `limits.depth_um`, `steps[3].at_ms`.
        case duplicate(path: String)
        case tooDeep(path: String)

        /// In words, for a message about someone else's JSON (an answer, a file).
        public var description: String {
            switch self {
            case .duplicate(let path): "\(path) given twice"
            case .tooDeep(let path): "JSON nested deeper than \(DuplicateKeys.maximumDepth) levels at \(path)"
            }
        }
    }

    /// The first key given twice within one object, anywhere in `bytes`, or nil. `bytes` should
    /// already have parsed as JSON; if it has not, the scan stops where it stops making sense and
    /// reports nothing (the parser's own error is the one to give). Never traps, whatever the input.
    public static func find<Bytes: Collection<UInt8>>(in bytes: Bytes) -> Finding? {
        var scanner = Scanner(bytes: Array(bytes))
        scanner.whitespace()
        return scanner.value(path: "", depth: 0)
    }

    struct Scanner {
        let bytes: [UInt8]
        var index = 0

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func whitespace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        mutating func value(path: String, depth: Int) -> Finding? {
            switch current {
            case UInt8(ascii: "{"):
                guard depth < DuplicateKeys.maximumDepth else { return .tooDeep(path: path.isEmpty ? "top level" : path) }
                return object(path: path, depth: depth + 1)
            case UInt8(ascii: "["):
                guard depth < DuplicateKeys.maximumDepth else { return .tooDeep(path: path.isEmpty ? "top level" : path) }
                return array(path: path, depth: depth + 1)
            case UInt8(ascii: "\""):
                _ = string()
                return nil
            case nil:
                return nil
            default:
                // A number, true, false or null: up to the next delimiter.
                while let byte = current, !Self.delimiters.contains(byte) { index += 1 }
                return nil
            }
        }

        static let delimiters: Set<UInt8> = [UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D]

        mutating func object(path: String, depth: Int) -> Finding? {
            index += 1  // {
            var seen = Set<String>()
            whitespace()
            if current == UInt8(ascii: "}") {
                index += 1
                return nil
            }
            while current == UInt8(ascii: "\"") {
                guard let key = string() else { return nil }
                let keyPath = path.isEmpty ? key : "\(path).\(key)"
                if !seen.insert(key).inserted { return .duplicate(path: keyPath) }
                whitespace()
                guard current == UInt8(ascii: ":") else { return nil }
                index += 1
                whitespace()
                if let finding = value(path: keyPath, depth: depth) { return finding }
                whitespace()
                guard current == UInt8(ascii: ",") else { break }
                index += 1
                whitespace()
            }
            if current == UInt8(ascii: "}") { index += 1 }
            return nil
        }

        mutating func array(path: String, depth: Int) -> Finding? {
            index += 1  // [
            whitespace()
            if current == UInt8(ascii: "]") {
                index += 1
                return nil
            }
            var element = 0
            while current != nil {
                if let finding = value(path: "\(path)[\(element)]", depth: depth) { return finding }
                element += 1
                whitespace()
                guard current == UInt8(ascii: ",") else { break }
                index += 1
                whitespace()
            }
            if current == UInt8(ascii: "]") { index += 1 }
            return nil
        }

        /// A string token, its escapes undone (`"a"` and `"\u0061"` are the same key); nil if it
        /// does not end.
        mutating func string() -> String? {
            index += 1  // "
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll(keepingCapacity: true)
            }
            while let byte = current {
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    flush()
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    guard let escaped = current else { return nil }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "b"): raw.append(0x08)
                    case UInt8(ascii: "f"): raw.append(0x0C)
                    case UInt8(ascii: "n"): raw.append(0x0A)
                    case UInt8(ascii: "r"): raw.append(0x0D)
                    case UInt8(ascii: "t"): raw.append(0x09)
                    case UInt8(ascii: "u"):
                        guard let unit = hex4() else { return nil }
                        flush()
                        if (0xD800...0xDBFF).contains(unit), current == UInt8(ascii: "\\"),
                           index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") {
                            let mark = index
                            index += 2
                            if let low = hex4(), (0xDC00...0xDFFF).contains(low),
                               let scalar = Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)) {
                                scalars.append(scalar)
                                continue
                            }
                            index = mark
                        }
                        scalars.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
                    default: raw.append(escaped)  // \" \\ \/
                    }
                default:
                    raw.append(byte)
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for byte in bytes[index..<index + 4] {
                guard let digit = Self.hexDigit(byte) else { return nil }
                value = value << 4 | digit
            }
            index += 4
            return value
        }

        static func hexDigit(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
            default: nil
            }
        }
    }
}
