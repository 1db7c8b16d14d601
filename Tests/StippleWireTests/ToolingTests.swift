import StippleWire
import Testing

/// The helpers tools build on: hex text, arbitrary frames, the limits checksum.
@Suite struct ToolingTests {
    @Test func hexParsesWhatTracesContainAndRefusesTheRest() {
        #expect(Hex.parse("00 0b:05-06\n20") == [0x00, 0x0B, 0x05, 0x06, 0x20])
        #expect(Hex.parse("") == [])
        #expect(Hex.parse("0") == nil, "a left-over digit")
        #expect(Hex.parse("zz") == nil)
        #expect(Hex.format([0x00, 0xAB, 0x7]) == "00ab07")
        #expect(Hex.format([1, 2], separator: " ") == "01 02")
    }

    @Test func anArbitraryFrameMatchesTheCodecWhereTheCodecCanBuildIt() throws {
        for vector in try Repository.vectors("valid.json") where vector["reencodes"] as! Bool {
            let raw = [UInt8](hex: vector["raw"] as! String)
            let wire = FrameEncoder.encode(id: raw[0], seq: raw[1], payload: Array(raw[2..<(raw.count - 4)]))
            #expect(wire.hex == vector["wire"] as? String, "\(vector["name"]!)")
        }
        let unknown = FrameEncoder.encode(id: 0x3F, seq: 9, payload: [])
        #expect(swiftDecode(unknown).first?.rejection?.reason == .unknownID)
    }

    @Test func theLimitsChecksumIsTheOneTheVectorsArmWith() throws {
        let vectors = try Repository.vectors("valid.json")
        let setLimits = try #require(vectors.first { $0["name"] as? String == "set_limits_defaults" })
        let arm = try #require(vectors.first { $0["name"] as? String == "arm" })
        guard case .setLimits(let limits)? = swiftDecode([UInt8](hex: setLimits["wire"] as! String)).first?.frame?.message,
              case .arm(let armed)? = swiftDecode([UInt8](hex: arm["wire"] as! String)).first?.frame?.message else {
            Issue.record("vectors did not decode")
            return
        }
        #expect(limits.checksum == armed.limitsCRC)
    }
}
