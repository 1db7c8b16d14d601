import StippleWire

/// What `stipplectl decode` shows of one frame: its line, values with a meaning of their own
/// explained (`peak_protrusion_um=65535 (not measured)`), and with `--anatomy` the frame taken
/// apart — wire bytes, COBS undone, header, each payload field at its offset, and the CRC the frame
/// carries beside the one its bytes give. A bring-up engineer porting the codec needs to see
/// where their bytes differ, not only that they were rejected.
enum FrameAnatomy {
    /// The decoded line, special values explained from messages.json's field docs.
    static func line(_ frame: Frame) -> String {
        var text = "\(frame)"
        guard let entry = MessageSchema.messages.first(where: { $0.id == frame.message.id }) else { return text }
        for field in entry.fields {
            for (value, meaning) in field.special {
                let token = "\(field.name)=\(value)"
                guard let range = text.range(of: token) else { continue }
                let next = text[range.upperBound...].first
                if next == nil || next == " " { text.replaceSubrange(range, with: "\(token) (\(meaning))") }
            }
        }
        return text
    }

    /// The line for a rejected frame; a bad CRC names the CRC found and the one expected.
    static func rejectionLine(_ rejection: FrameRejection, encoded: [UInt8]) -> String {
        guard rejection.reason == .badCRC, let raw = cobsDecode(encoded), raw.count >= 6 else { return "\(rejection)" }
        let (found, expected) = crcs(raw)
        return "\(rejection): CRC-32C found \(hex32(found)), expected \(hex32(expected)) for the \(raw.count - 4) bytes before it"
    }

    /// `--anatomy`: the frame between its delimiters, taken apart.
    static func lines(encoded: [UInt8], frame: Frame?) -> [String] {
        var lines = ["    wire     00 \(Hex.format(encoded, separator: " ")) 00  (\(encoded.count + 2) bytes: delimiter, COBS, delimiter)"]
        guard let raw = cobsDecode(encoded) else {
            lines.append("    cobs     the COBS blocks do not add up: a byte was lost or added")
            return lines
        }
        lines.append("    raw      \(Hex.format(raw, separator: " "))  (\(raw.count) bytes with COBS undone)")
        guard raw.count >= 6 else {
            lines.append("    short    a frame has at least 6 bytes (id, seq, CRC-32C)")
            return lines
        }
        let id = raw[0]
        let entry = MessageSchema.messages.first { $0.id.rawValue == id }
        lines.append("    header   id \(hex8(id)) (\(entry?.name ?? "unknown message")), seq \(raw[1])")
        let payload = Array(raw[2..<(raw.count - 4)])
        lines.append("    payload  \(payload.isEmpty ? "(none)" : Hex.format(payload, separator: " "))  (\(payload.count) bytes)")
        if let entry {
            var offset = 0
            for field in entry.fields {
                let size = field.size ?? max(0, payload.count - offset)
                let end = min(payload.count, offset + size)
                let bytes = offset < end ? Array(payload[offset..<end]) : []
                var text = "      +\(offset) \(field.name) \(field.type)\(field.unit.map { " [\($0)]" } ?? "")  \(Hex.format(bytes, separator: " "))"
                if bytes.count < size {
                    text += "  (missing: \(size - bytes.count) of \(size) bytes)"
                } else if let value = integer(bytes, type: field.type) {
                    text += "  = \(value)" + (field.special[value].map { " (\($0))" } ?? "")
                }
                lines.append(text)
                offset += size
            }
            if offset < payload.count { lines.append("      +\(offset) \(payload.count - offset) bytes past the last field") }
        }
        let (found, expected) = crcs(raw)
        lines.append("    crc      \(Hex.format(Array(raw.suffix(4)), separator: " "))  CRC-32C \(hex32(found)) (little-endian), "
                     + (found == expected ? "matches" : "expected \(hex32(expected))"))
        if let frame { lines.append("    decoded  \(line(frame))") }
        return lines
    }

    /// A little-endian integer field's value (`u8`...`u32`, `i16`, `i32`); nil for other types.
    static func integer(_ bytes: [UInt8], type: String) -> Int64? {
        guard ["u8", "u16", "u32", "i8", "i16", "i32"].contains(type), !bytes.isEmpty else { return nil }
        let unsigned = bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard type.hasPrefix("i") else { return Int64(unsigned) }
        let bits = UInt64(bytes.count * 8)
        return unsigned & (1 << (bits - 1)) != 0 ? Int64(unsigned) - Int64(1 << bits) : Int64(unsigned)
    }

    /// COBS undone; nil when the block lengths do not fit the bytes.
    static func cobsDecode(_ encoded: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var index = 0
        while index < encoded.count {
            let code = Int(encoded[index])
            guard code > 0, index + code <= encoded.count else { return nil }
            out.append(contentsOf: encoded[(index + 1)..<(index + code)])
            index += code
            if code < 0xFF && index < encoded.count { out.append(0) }
        }
        return out
    }

    static func crcs(_ raw: [UInt8]) -> (found: UInt32, expected: UInt32) {
        let tail = raw.suffix(4)
        let found = tail.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return (found, CRC32C.checksum(raw.prefix(raw.count - 4)))
    }

    static func hex8(_ value: UInt8) -> String {
        let digits = String(value, radix: 16)
        return "0x" + (digits.count < 2 ? "0" : "") + digits
    }
    static func hex32(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }
}
