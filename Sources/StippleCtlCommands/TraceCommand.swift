#if canImport(Glibc)
import ArgumentParser
import Foundation
import Glibc
import StippleClient
import StippleTransport
import StippleWire

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Live decoded frames, both directions, with timestamps; --save writes a capture `decode` reads back.",
        discussion: """
            Through the daemon: every byte stippled reads from and writes to the pen (engineers). \
            Directly (--port, daemon stopped): stipplectl is the host — it says HELLO, keeps the \
            heartbeat going, and prints what passes. Ctrl-C (or --seconds) ends it. The capture \
            (--save FILE) keeps the raw bytes with their time and direction, one chunk per line; \
            `stipplectl decode FILE` decodes it again.
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var target: PenTarget

    @Option(help: "Write the capture to this file.", completion: .file())
    var save: String?

    @Option(help: "Stop after this many seconds (0: until Ctrl-C).")
    var seconds: Double = 0

    func run() throws {
        var capture = TraceCapture()
        var printer = TracePrinter(json: options.json)
        let queue = StreamQueue()
        let interrupts = InterruptHandler(queue: queue)
        defer { withExtendedLifetime(interrupts) {} }
        let deadline = seconds > 0 ? monotonicNow() + .milliseconds(Int64(seconds * 1000)) : nil
        let record: (SeenFrame.Direction, [UInt8], MonotonicInstant) -> Void = { direction, bytes, at in
            capture.append(direction, bytes, at: at)
            printer.bytes(direction, bytes, at: at)
        }
        switch try BringUpRoute.choose(options, target) {
        case .daemon(let client):
            let reader = EventStreamReader(client: client, path: "/v1/bringup/trace", what: "the trace stream", queue: queue)
            reader.start()
            defer { reader.close() }
            loop: while deadline.map({ monotonicNow() < $0 }) ?? true {
                switch queue.next(timeout: 0.1) {
                case .interrupted: break loop
                case .ended(let failure):
                    if let failure { throw failure }
                    break loop
                case .tick: continue
                case .event(let event):
                    guard event.name == "bytes", let hex = event.data["hex"].string, let bytes = Hex.parse(hex),
                          let micros = event.data["t_us"].int else { continue }
                    record(event.data["direction"].string == "to_pen" ? .toPen : .fromPen, bytes, MonotonicInstant(nanoseconds: Int64(micros) * 1000))
                }
            }
        case .direct(let path):
            let pen = DirectPen(port: try openPort(path))
            pen.onBytes = record
            _ = try pen.hello()
            pen.link.send(.getStatus(.init()))
            loop: while deadline.map({ monotonicNow() < $0 }) ?? true {
                if case .interrupted = queue.next(timeout: 0) { break loop }
                _ = try pen.step(.milliseconds(10))
            }
        }
        if let save {
            try writeOutput(capture.text, to: save)
            if !options.json { Output.error("stipplectl: saved \(capture.chunks) chunks to \(save) (`stipplectl decode \(save)`)") }
        }
    }
}

/// The capture format: a header, then one line per chunk of bytes — microseconds since the
/// first chunk, `>` host to pen or `<` pen to host, the bytes in hex. Chunks keep the bytes as
/// they came (a damaged frame stays damaged), so decoding the capture again gives the same
/// frames and rejections.
struct TraceCapture {
    static let header = "# stipple-trace 1"
    private(set) var text = TraceCapture.header + "\n# t_us dir bytes (> host to pen, < pen to host)\n"
    private(set) var chunks = 0
    private var start: MonotonicInstant?

    mutating func append(_ direction: SeenFrame.Direction, _ bytes: [UInt8], at: MonotonicInstant) {
        let origin = start ?? at
        start = origin
        chunks += 1
        text += "\((at - origin).totalNanoseconds / 1000) \(direction.rawValue) \(Hex.format(bytes, separator: " "))\n"
    }

    /// Decodes a capture: each direction with its own decoder, in time order.
    static func decode(_ text: String) throws -> [SeenFrame] {
        var decoders: [SeenFrame.Direction: FrameDecoder] = [.toPen: FrameDecoder(), .fromPen: FrameDecoder()]
        var seen: [SeenFrame] = []
        for (number, line) in text.split(separator: "\n").enumerated() where !line.hasPrefix("#") && !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let parts = line.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, let micros = Int64(parts[0]), let direction = SeenFrame.Direction(rawValue: String(parts[1])),
                  let bytes = Hex.parse(parts.count > 2 ? String(parts[2]) : "") else {
                throw InputError("line \(number + 1) of the capture is not 't_us >|< hex bytes': \(line.prefix(60))")
            }
            for output in decoders[direction, default: FrameDecoder()].push(contentsOf: bytes) {
                seen.append(SeenFrame(direction: direction, at: MonotonicInstant(nanoseconds: micros * 1000), output: output))
            }
        }
        return seen
    }
}

/// Decodes live chunks per direction and prints each frame as it completes.
struct TracePrinter {
    let json: Bool
    var decoders: [SeenFrame.Direction: FrameDecoder] = [.toPen: FrameDecoder(), .fromPen: FrameDecoder()]
    var start: MonotonicInstant?

    mutating func bytes(_ direction: SeenFrame.Direction, _ bytes: [UInt8], at: MonotonicInstant) {
        let origin = start ?? at
        start = origin
        for output in decoders[direction, default: FrameDecoder()].push(contentsOf: bytes) {
            let seen = SeenFrame(direction: direction, at: at, output: output)
            if json {
                var object: [String: JSON] = ["direction": direction == .toPen ? "to_pen" : "from_pen",
                                              "t_us": .number(Double((at - origin).totalNanoseconds / 1000))]
                switch output {
                case .frame(let frame): object["text"] = .string("\(frame)"); object["hex"] = .string(Hex.format(FrameEncoder.encode(frame), separator: " "))
                case .rejected(let rejection): object["text"] = .string("\(rejection)"); object["rejected"] = .bool(true)
                }
                Output.line(JSON.object(object).compactText)
            } else {
                Output.line(seen.line(since: origin))
            }
        }
    }
}

#endif
