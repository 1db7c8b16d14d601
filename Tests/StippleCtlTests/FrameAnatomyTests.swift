@testable import StippleCtlCommands
import StippleWire
import Testing

/// `stipplectl decode --anatomy` promised a breakdown and printed one `raw` line; a bad CRC said
/// only `rejected bad_crc`; 65535 went unexplained (issue 16).
@Suite struct FrameAnatomyTests {
    let setpoints: [UInt8] = [0x0b, 0x05, 0x06, 0x20, 0x03, 0xb0, 0x04, 0x91, 0xea, 0x94, 0xdb]

    @Test("a frame is taken apart: wire, COBS undone, header, each field at its offset with its value, the CRC")
    func anatomy() throws {
        var decoder = FrameDecoder()
        let outputs = decoder.push(contentsOf: [0] + setpoints + [0])
        guard case .frame(let frame) = try #require(outputs.first) else { Issue.record("not a frame"); return }
        let lines = FrameAnatomy.lines(encoded: setpoints, frame: frame)
        #expect(lines.contains { $0.contains("header   id 0x05 (set_setpoints), seq 6") })
        #expect(lines.contains { $0.contains("+0 depth_um u16 [um]  20 03  = 800") })
        #expect(lines.contains { $0.contains("+2 rate_dhz u16 [0.1 Hz]  b0 04  = 1200") })
        #expect(lines.contains { $0.contains("CRC-32C 0xdb94ea91 (little-endian), matches") })
    }

    @Test("a bad CRC names the CRC found and the one expected")
    func badCRC() {
        var damaged = setpoints
        damaged[damaged.count - 1] = 0xdc
        var decoder = FrameDecoder()
        guard case .rejected(let rejection) = decoder.push(contentsOf: [0] + damaged + [0]).first else { Issue.record("accepted"); return }
        let line = FrameAnatomy.rejectionLine(rejection, encoded: damaged)
        #expect(line.contains("found 0xdc94ea91, expected 0xdb94ea91"), "\(line)")
        #expect(FrameAnatomy.lines(encoded: damaged, frame: nil).contains { $0.contains("expected 0xdb94ea91") })
    }

    @Test("values with a meaning of their own are explained, from messages.json")
    func specialValues() throws {
        let message = try Message.make(name: "telemetry", fields: [
            "pen_time_us": "5", "stroke_count": "1", "peak_protrusion_um": "65535", "stroke_rate_dhz": "0",
            "motor_current_ma": "12", "temperature_dc": "-32768", "flags": "0"])
        let line = FrameAnatomy.line(Frame(seq: 0, message: message))
        #expect(line.contains("peak_protrusion_um=65535 (not measured)"))
        #expect(line.contains("temperature_dc=-32768 (not measured)"))
        #expect(line.contains("motor_current_ma=12 ") && !line.contains("motor_current_ma=12 ("))
    }

    @Test("COBS blocks that do not add up are reported, not trusted")
    func brokenCOBS() {
        #expect(FrameAnatomy.cobsDecode([0x05, 0x01]) == nil)
        #expect(FrameAnatomy.lines(encoded: [0x05, 0x01], frame: nil).contains { $0.contains("do not add up") })
    }
}
