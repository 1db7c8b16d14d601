import ArgumentParser
import Foundation
import StippleWire

struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode a captured byte stream into frames and rejections.",
        discussion: """
            Reads raw bytes (as captured from the serial port, e.g. with `cat /dev/ttyACM0 > trace.bin`), \
            a capture of `stipplectl trace --save` (both directions, with times), \
            or, with --hex, hexadecimal text (whitespace, ':' and '-' are ignored). Prints one line per \
            frame or rejected frame, with the byte offset where it ended.
            """
    )

    @Flag(name: .long, help: "Read hexadecimal text instead of raw bytes.")
    var hex = false

    @Flag(name: .long, help: "Take each frame apart: wire bytes, COBS undone, header, each payload field at its offset, and the CRC found beside the one expected.")
    var anatomy: Bool = false

    @Argument(help: "Trace file; '-' or none reads standard input.")
    var file: String?

    func run() throws {
        let data: Data
        if let file, file != "-" {
            guard let contents = FileManager.default.contents(atPath: file) else {
                throw InputError("cannot read '\(file)'")
            }
            data = contents
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        if data.starts(with: Data(TraceCapture.header.utf8)) {
            // A capture from `stipplectl trace --save`: both directions, with their times.
            let seen = try TraceCapture.decode(String(decoding: data, as: UTF8.self))
            for frame in seen { print(frame.line(since: .zero)) }
            let frames = seen.filter { if case .frame = $0.output { true } else { false } }.count
            print("# capture: \(frames) frames, \(seen.count - frames) rejected")
            return
        }
        let bytes: [UInt8]
        if hex {
            guard let parsed = Hex.parse(String(decoding: data, as: UTF8.self)) else {
                throw InputError("the input is not hex bytes (pairs of 0-9 a-f, separated by nothing, spaces, ':' or '-')")
            }
            bytes = parsed
        } else {
            bytes = [UInt8](data)
        }
        var decoder = FrameDecoder()
        var encoded: [UInt8] = []  // the bytes since the last delimiter: the frame's COBS body
        for (offset, byte) in bytes.enumerated() {
            let output = decoder.push(byte)
            defer { if byte == 0 { encoded.removeAll() } else if encoded.count <= 4096 { encoded.append(byte) } }
            guard let output else { continue }
            switch output {
            case .frame(let frame):
                print("@\(offset) \(FrameAnatomy.line(frame))")
                if anatomy { FrameAnatomy.lines(encoded: encoded, frame: frame).forEach { print($0) } }
            case .rejected(let rejection):
                print("@\(offset) \(FrameAnatomy.rejectionLine(rejection, encoded: encoded))")
                if anatomy { FrameAnatomy.lines(encoded: encoded, frame: nil).forEach { print($0) } }
            }
        }
        let stats = decoder.statistics
        print("# \(stats.bytes) bytes, \(stats.frames) frames, \(stats.rejected) rejected")
    }
}

struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build one frame from a message name and field=value pairs.",
        discussion: """
            Example: stipplectl encode set_setpoints depth_um=800 rate_dhz=1200 --seq 6
            Enums take their names or numbers, flags take names joined by '|' or a number, text \
            fields take printable ASCII. Prints the wire bytes as hex (with the leading and trailing \
            0x00 delimiters); --binary writes the bytes themselves, e.g. to pipe into a serial port.
            """
    )

    @Argument(help: "Message name, as in `stipplectl messages`.")
    var message: String

    @Argument(help: "field=value for every field of the message.")
    var fields: [String] = []

    @Option(help: "Sequence number, 0...255.")
    var seq: Int = 0

    @Flag(help: "Write raw bytes to standard output instead of hex.")
    var binary = false

    func run() throws {
        guard (0...255).contains(seq) else { throw InputError("--seq: \(seq) is outside the allowed range 0...255") }
        var values: [String: String] = [:]
        for pair in fields {
            guard let equals = pair.firstIndex(of: "=") else {
                throw InputError("'\(pair)' is not field=value")
            }
            values[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        let built: Message
        do {
            built = try Message.make(name: message, fields: values)
        } catch {
            throw InputError(error.description)
        }
        let frame = Frame(seq: UInt8(seq), message: built)
        let wire = FrameEncoder.encode(frame)
        if binary {
            FileHandle.standardOutput.write(Data(wire))
        } else {
            print(Hex.format(wire, separator: " "))
        }
    }
}

struct Messages: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the protocol's messages and their fields.")

    @Argument(help: "Show only this message.")
    var name: String?

    func run() throws {
        let entries = MessageSchema.messages.filter { name == nil || $0.name == name }
        if entries.isEmpty, let name { throw InputError("unknown message '\(name)'") }
        for entry in entries {
            let hexID = String(format: "0x%02X", entry.id.rawValue)
            let direction = entry.hostToPen ? "host -> pen" : "pen -> host"
            let reply = entry.reply.isEmpty ? "" : "  reply: \(entry.reply.joined(separator: " + "))"
            print("\(hexID) \(entry.name)  (\(direction))\(reply)")
            for field in entry.fields {
                var line = "    \(field.name): \(field.type)"
                if let unit = field.unit { line += " [\(unit)]" }
                if let range = field.range { line += " \(range.lowerBound)...\(range.upperBound)" }
                print(line)
            }
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Walk through a handshake on the wire: frames, bytes, and what a damaged frame looks like."
    )

    func run() {
        let limits = Message.SetLimits(
            depthMinUm: 400, depthMaxUm: 1000, depthTripUm: 1100, rateMinDhz: 500, rateMaxDhz: 1500,
            rateStallDhz: 400, rateRunawayDhz: 1600, deadmanMs: 300)
        let limitsCRC = limits.checksum
        let exchange: [(String, Frame)] = [
            ("host", Frame(seq: 1, message: .hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor)))),
            ("pen ", Frame(seq: 1, message: .ack(.init(ackedSeq: 1, ackedID: MessageID.hello.rawValue, status: .ok, detail: 0)))),
            ("pen ", Frame(seq: 2, message: .helloReply(.init(
                protoMajor: 1, protoMinor: 0, fwMajor: 0, fwMinor: 9, fwPatch: 3,
                capabilities: [.depthSensor, .cartridgeReader, .pedal, .estopInput], serial: "SMP3-000142",
                limitsCRC: 0, depthCeilingUm: 2000)))),
            ("host", Frame(seq: 2, message: .setLimits(limits))),
            ("pen ", Frame(seq: 3, message: .ack(.init(ackedSeq: 2, ackedID: MessageID.setLimits.rawValue, status: .ok, detail: 0)))),
            ("pen ", Frame(seq: 4, message: .limits(.init(
                depthMinUm: 400, depthMaxUm: 1000, depthTripUm: 1100, rateMinDhz: 500, rateMaxDhz: 1500,
                rateStallDhz: 400, rateRunawayDhz: 1600, deadmanMs: 300, limitsCRC: limitsCRC)))),
            ("pen ", Frame(seq: 5, message: .telemetry(.init(
                penTimeUs: 1_250_000, strokeCount: 0, peakProtrusionUm: 65535, strokeRateDhz: 0,
                motorCurrentMa: 0, temperatureDc: 287, flags: [.handshakeDone, .limitsSet, .cartridgePresent])))),
        ]
        print("Stipple pen protocol v\(ProtocolVersion.major).\(ProtocolVersion.minor): a handshake on the wire\n")
        var stream: [UInt8] = []
        for (who, frame) in exchange {
            let wire = FrameEncoder.encode(frame)
            stream += wire
            print("\(who) \(frame)")
            print("     \(Hex.format(wire, separator: " "))")
        }
        var damaged = FrameEncoder.encode(exchange[6].1)
        damaged[8] ^= 0x04
        print("\nThe same telemetry frame with one bit flipped on the line:")
        print("     \(Hex.format(damaged, separator: " "))")
        var decoder = FrameDecoder()
        for output in decoder.push(contentsOf: damaged) {
            if case .rejected(let rejection) = output { print("     -> \(rejection); never acted on") }
        }
        var whole = FrameDecoder()
        let decoded = whole.push(contentsOf: stream).compactMap { output -> Frame? in
            if case .frame(let frame) = output { return frame }
            return nil
        }
        print("\nDecoding the whole \(stream.count)-byte exchange gives back \(decoded.count) frames.")
        print("Specification: Firmware-protocol/PROTOCOL.md; trace decoding: stipplectl decode --help")
    }
}
