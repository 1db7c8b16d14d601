import Foundation
import StippleWire
import StippleWireC

/// Where the shared vectors live, found from this file so tests run from any directory.
enum Repository {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func json(_ relativePath: String) throws -> [String: Any] {
        let data = try Data(contentsOf: root.appendingPathComponent(relativePath))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    static func vectors(_ file: String) throws -> [[String: Any]] {
        try json("Firmware-protocol/vectors/\(file)")["vectors"] as! [[String: Any]]
    }
}

extension Array where Element == UInt8 {
    init(hex: String) { self = Hex.parse(hex)! }

    var hex: String { Hex.format(self) }
}

/// Decodes a whole byte string with the Swift codec.
func swiftDecode(_ bytes: [UInt8]) -> [FrameDecoder.Output] {
    var decoder = FrameDecoder()
    return decoder.push(contentsOf: bytes)
}

/// What the C codec makes of a byte string: one entry per frame or rejection.
struct COutput: Equatable, CustomStringConvertible {
    var result: String
    var seq: UInt8
    var text: String
    var reencoded: [UInt8]

    var description: String { result == "frame" ? "seq=\(seq) \(text)" : result }
}

func cDecode(_ bytes: [UInt8]) -> [COutput] {
    var decoder = stw_decoder()
    stw_decoder_init(&decoder)
    var outputs: [COutput] = []
    var frame = stw_frame()
    for byte in bytes {
        let result = stw_decoder_push(&decoder, byte, &frame)
        if result == STW_NONE { continue }
        var text = ""
        var reencoded: [UInt8] = []
        if result == STW_FRAME {
            var buffer = [CChar](repeating: 0, count: 1024)
            stw_format_message(&frame.msg, &buffer, buffer.count)
            text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            var out = [UInt8](repeating: 0, count: Int(STW_MAX_WIRE_BYTES))
            let count = stw_encode_frame(frame.seq, &frame.msg, &out, out.count)
            reencoded = Array(out[0..<count])
        }
        outputs.append(COutput(result: String(cString: stw_result_name(result)), seq: frame.seq, text: text, reencoded: reencoded))
    }
    return outputs
}

extension FrameDecoder.Output {
    var frame: Frame? {
        if case .frame(let frame) = self { return frame }
        return nil
    }

    var rejection: FrameRejection? {
        if case .rejected(let rejection) = self { return rejection }
        return nil
    }
}
