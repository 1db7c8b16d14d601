/// Hexadecimal text for byte strings: how traces, vectors and scenario files write frames.
public enum Hex {
    /// Bytes from hex digits; whitespace, ':' and '-' between them are ignored. Nil if anything
    /// else appears or a digit is left over.
    public static func parse(_ text: some StringProtocol) -> [UInt8]? {
        var bytes: [UInt8] = []
        var high: UInt8?
        for scalar in text.unicodeScalars {
            if scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar == ":" || scalar == "-" { continue }
            guard let nibble = UInt8(String(scalar), radix: 16) else { return nil }
            if let first = high {
                bytes.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return high == nil ? bytes : nil
    }

    /// Lower-case hex, two digits a byte, joined by `separator`.
    public static func format(_ bytes: some Sequence<UInt8>, separator: String = "") -> String {
        bytes.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined(separator: separator)
    }
}
