/// The canonical form of an identifier that people type or scan: cartridge ids (GPIO pens have
/// typed ones), client ids, session ids and pen serials.
///
/// A single-use cartridge must stay single-use however its id is written: `cart-a`, `CART-A`,
/// ` CART-A `, `CART A`, `CART–A` (en dash) and `ＣＡＲＴ－Ａ` (full width) are one cartridge.
/// So: full-width ASCII becomes ASCII, letters become upper case, every run of whitespace,
/// dashes (any Unicode dash, the minus sign) and underscores becomes one `-`, and separators
/// at either end go. What is left must be printable ASCII, 1 to `maxLength` characters.
public enum Identifier {
    public static let maxLength = 64

    /// The canonical form, or nil when nothing printable is left or it is too long.
    public static func canonical(_ raw: String) -> String? {
        var result: [UInt8] = []
        var pendingSeparator = false
        for scalar in raw.unicodeScalars {
            var value = scalar.value
            if (0xFF01...0xFF5E).contains(value) { value -= 0xFEE0 }  // full-width ASCII
            if value == 0x3000 { value = 0x20 }  // ideographic space
            let mapped = Unicode.Scalar(value) ?? scalar
            if mapped.properties.isWhitespace || mapped.properties.generalCategory == .dashPunctuation
                || value == 0x2212 || value == 0x5F || value == 0x2D {
                pendingSeparator = !result.isEmpty
                continue
            }
            guard value >= 0x21, value <= 0x7E else { return nil }
            if pendingSeparator { result.append(0x2D) }
            pendingSeparator = false
            let byte = UInt8(value)
            result.append((0x61...0x7A).contains(byte) ? byte - 0x20 : byte)
            if result.count > maxLength { return nil }
        }
        return result.isEmpty ? nil : String(decoding: result, as: UTF8.self)
    }

    /// Whether two identifiers name the same thing.
    public static func same(_ a: String, _ b: String) -> Bool {
        guard let a = canonical(a), let b = canonical(b) else { return false }
        return a == b
    }
}
