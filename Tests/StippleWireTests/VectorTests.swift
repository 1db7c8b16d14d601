import StippleWire
import StippleWireC
import Testing

/// Every shared vector in Firmware-protocol/vectors/ through the Swift codec, and the same
/// bytes through the C codec, which must agree.
@Suite struct VectorTests {
    @Test func crcCheckValueMatchesTheCatalogue() throws {
        let crc = try Repository.json("Firmware-protocol/vectors/crc.json")
        #expect(crc["check"] as? String == "0xE3069283")
        #expect(CRC32C.checksum(Array("123456789".utf8)) == CRC32C.checkValue)
        #expect(CRC32C.checkValue == 0xE306_9283)
        for entry in crc["more"] as! [[String: String]] {
            let bytes = [UInt8](hex: entry["input_hex"]!)
            let want = UInt32(entry["crc"]!.dropFirst(2), radix: 16)!
            #expect(CRC32C.checksum(bytes) == want)
            #expect(bytes.withUnsafeBufferPointer { stw_crc32c($0.baseAddress, $0.count) } == want)
        }
    }

    /// The CRC table is written out by hand, as in C. The CRC of a one-byte message reads one
    /// table entry (index `~byte`), so the 256 one-byte messages check every entry against the
    /// bitwise definition of the polynomial.
    @Test func crcTableMatchesTheBitwiseDefinition() {
        func bitwise(_ byte: UInt8) -> UInt32 {
            var crc = 0xFFFF_FFFF ^ UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            return crc ^ 0xFFFF_FFFF
        }
        for byte in UInt8.min...UInt8.max {
            #expect(CRC32C.checksum([byte]) == bitwise(byte), "byte \(byte)")
        }
    }

    @Test func validVectorsDecodeToTheirMeaningAndReencode() throws {
        let vectors = try Repository.vectors("valid.json")
        #expect(vectors.count >= MessageID.allKnown.count)
        for vector in vectors {
            let name = vector["name"] as! String
            let wire = [UInt8](hex: vector["wire"] as! String)
            let outputs = swiftDecode(wire)
            try #require(outputs.count == 1, "\(name): \(outputs)")
            let frame = try #require(outputs[0].frame, "\(name): \(outputs[0])")
            #expect(frame.seq == UInt8(vector["seq"] as! Int), "\(name)")
            #expect(frame.message.id.name == vector["message"] as? String, "\(name)")
            #expect(frame.message.description == vector["text"] as? String, "\(name)")
            if vector["reencodes"] as! Bool {
                #expect(FrameEncoder.encode(frame) == wire, "\(name)")
                #expect(FrameEncoder.rawFrame(frame) == [UInt8](hex: vector["raw"] as! String), "\(name)")
            }
            let c = cDecode(wire)
            #expect(c.count == 1 && c[0].result == "frame" && c[0].text == frame.message.description && c[0].seq == frame.seq, "\(name): C says \(c)")
        }
    }

    @Test func everyMessageTypeHasAValidVector() throws {
        let covered = Set(try Repository.vectors("valid.json").map { $0["message"] as! String })
        let all = Set(MessageID.allKnown.compactMap(\.name))
        #expect(all.subtracting(covered).isEmpty, "messages without a vector: \(all.subtracting(covered).sorted())")
    }

    @Test func invalidVectorsAreRejectedForTheirReason() throws {
        for vector in try Repository.vectors("invalid.json") {
            let name = vector["name"] as! String
            let outputs = swiftDecode([UInt8](hex: vector["wire"] as! String))
            try #require(outputs.count == 1, "\(name): \(outputs)")
            let rejection = try #require(outputs[0].rejection, "\(name) decoded: \(outputs[0])")
            #expect(rejection.reason.rawValue == vector["reject"] as? String, "\(name): \(rejection)")
            if let field = vector["field"] as? String { #expect(rejection.field == field, "\(name): \(rejection)") }
            if let length = vector["expected_length"] as? Int { #expect(rejection.expectedLength == length, "\(name)") }
            if rejection.reason == .unknownID || rejection.reason == .badField || rejection.reason == .badLength {
                #expect(rejection.seq != nil && rejection.messageID != nil, "\(name): a CRC-good frame names its id and seq")
            }
            let c = cDecode([UInt8](hex: vector["wire"] as! String))
            #expect(c.map(\.result) == [vector["reject"] as! String], "\(name): C says \(c)")
        }
    }

    @Test func streamVectorsYieldTheirOutputsInOrder() throws {
        for vector in try Repository.vectors("streams.json") {
            let name = vector["name"] as! String
            let bytes = [UInt8](hex: vector["wire"] as! String)
            let want = (vector["expect"] as! [[String: Any]]).map { entry in
                if let text = entry["frame"] as? String { return "seq=\(entry["seq"] as! Int) \(text)" }
                return entry["reject"] as! String
            }
            let got = swiftDecode(bytes).map { output in
                output.frame.map(\.description) ?? output.rejection!.reason.rawValue
            }
            #expect(got == want, "\(name)")
            #expect(cDecode(bytes).map(\.description) == want, "\(name): C")
        }
    }
}
