#if canImport(Glibc)
import ArgumentParser
import Foundation
import Glibc
import StippleClient
import StippleConformance
import StippleLink
import StippleTransport
import StippleWire
import StippleReport

// The bring-up engineer's commands. Each goes through the daemon when it runs (engineer role:
// group stipple-eng) and straight to the serial port when it does not (--port, or the one
// pen-like device found). A port the daemon holds is refused with exit status 75.

struct PenTarget: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Talk to this serial port directly (stippled must not hold it); without it, through the daemon.", valueName: "path"),
            completion: .file())
    var port: String?
}

enum BringUpRoute {
    case daemon(DaemonClient)
    case direct(String)

    /// Through the daemon if it answers; otherwise the port named, or the only pen-like device.
    static func choose(_ options: GlobalOptions, _ target: PenTarget) throws -> BringUpRoute {
        if let port = target.port { return .direct(port) }
        let client = options.client()
        let failure: CtlError
        do {
            _ = try client.get("/v1/status")
            return .daemon(client)
        } catch {
            failure = error
        }
        guard failure.status == .unreachable else { throw failure }
        let pens = UdevDeviceDiscovery().candidates().filter(\.isPen)
        if pens.count == 1, let pen = pens.first {
            let path = pen.byID ?? pen.path
            Output.error("stipplectl: stippled is not running; talking to \(path) directly")
            return .direct(path)
        }
        throw CtlError(.unreachable, code: failure.code,
                       failure.message + "\n  without the daemon, name the pen's port with --port PATH (`stipplectl devices` lists \(pens.isEmpty ? "none found" : "\(pens.count) candidates"))")
    }
}

/// Opens the port, says HELLO, and hands the link to `body`.
func withDirectPen<T>(_ path: String, _ body: (DirectPen, Message.HelloReply) throws -> T) throws -> T {
    let pen = DirectPen(port: try openPort(path))
    let reply = try pen.hello()
    return try body(pen, reply)
}

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serial devices that could be a pen, and why each matched or not.",
        discussion: """
            What udev discovery sees: every serial device libudev enumerates, judged against the pen \
            table (USB vendor:product, interface) as stippled's `--pen auto` judges it, with the reason. \
            Where libudev cannot enumerate, a plain scan of /dev/serial/by-id, /dev/ttyACM* and \
            /dev/ttyUSB* stands in. Marks the port the running daemon holds.
            """)

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Also list ttys without a USB identity (consoles, on-board UARTs).")
    var all = false

    func run() throws {
        let candidates = UdevDeviceDiscovery(all: all).candidates()
        let held = (try? options.client().get("/v1/status").json["pen"]["transport"].string) ?? nil
        if options.json {
            Output.line(JSON.array(candidates.map { candidate in
                .object(["path": .string(candidate.path), "by_id": candidate.byID.map(JSON.string) ?? .null, "pen": .bool(candidate.isPen),
                         "reason": .string(candidate.reason), "held_by_stippled": .bool(held != nil && (held == candidate.path || held == candidate.byID))])
            }).compactText)
            return
        }
        guard !candidates.isEmpty else {
            return Output.line("no USB serial devices\(all ? "" : " (--all lists every tty)"): is the pen plugged in? `dmesg | tail` shows what the kernel saw")
        }
        for candidate in candidates {
            let mark = candidate.isPen ? "pen " : "no  "
            var line = "\(mark) \(candidate.byID ?? candidate.path)"
            if candidate.byID != nil { line += " -> \(candidate.path)" }
            if let held, held == candidate.path || held == candidate.byID { line += "  [held by stippled]" }
            Output.line(line)
            Output.line("     \(candidate.reason)")
        }
    }
}

struct Identify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Blink the pen's identify LED (IDENTIFY).")

    @OptionGroup var options: GlobalOptions
    @OptionGroup var target: PenTarget

    @Option(name: .customLong("duration-ms"), help: "How long to blink, 0...10000 ms (0 stops).")
    var durationMs: Int = 3000

    func validate() throws {
        guard (0...10_000).contains(durationMs) else { throw ValidationError("--duration-ms: \(durationMs) is outside 0...10000") }
    }

    func run() throws {
        let answer: JSON
        switch try BringUpRoute.choose(options, target) {
        case .daemon(let client):
            let reply = try client.post("/v1/bringup/identify", body: Data("{\"duration_ms\":\(durationMs)}".utf8))
            answer = reply.json
        case .direct(let path):
            answer = try withDirectPen(path) { pen, _ in
                let result = try pen.command(.identify(.init(durationMs: UInt16(durationMs))))
                return answerJSON("identify", result)
            }
        }
        if options.json { return Output.line(answer.compactText) }
        guard let status = answer["status"].string else { throw CtlError(.checkFailed, code: "no_answer", "the pen did not acknowledge IDENTIFY") }
        Output.line(status == "ok" ? "the pen blinks its LED for \(durationMs) ms" : "the pen refused IDENTIFY: \(status) (detail \(answer["detail"].text))")
    }
}

func answerJSON(_ message: String, _ result: (status: AckStatus, detail: UInt8, roundTrip: Duration)?) -> JSON {
    .object([
        "message": .string(message),
        "status": result.map { .string("\($0.status)") } ?? .null,
        "detail": .number(Double(result?.detail ?? 0)),
        "round_trip_us": result.map { .number(Double($0.roundTrip.totalNanoseconds / 1000)) } ?? .null,
    ])
}

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Round-trip time over the pen link: GET_STATUS to its ACK, p50/p99.",
        discussion: "Through the daemon the time is measured inside stippled (write to ACK processed); directly, inside stipplectl. Exit status 1 if no round trip was answered.")

    @OptionGroup var options: GlobalOptions
    @OptionGroup var target: PenTarget

    @Option(help: "How many round trips, 1...1000.")
    var count: Int = 20

    func validate() throws {
        guard (1...1000).contains(count) else { throw ValidationError("--count: \(count) is outside 1...1000") }
    }

    func run() throws {
        let result: JSON
        switch try BringUpRoute.choose(options, target) {
        case .daemon(let client):
            result = try client.post("/v1/bringup/ping", body: Data("{\"count\":\(count)}".utf8)).json
        case .direct(let path):
            result = try withDirectPen(path) { pen, _ in
                var times: [Int?] = []
                for _ in 0..<count { times.append(try pen.command(.getStatus(.init())).map { Int($0.roundTrip.totalNanoseconds / 1000) }) }
                return Self.summary(times)
            }
        }
        if options.json { Output.line(result.compactText) } else { Output.line(Self.text(result)) }
        if (result["answered"].int ?? 0) == 0 { throw ExitCode(ExitStatus.checkFailed.rawValue) }
    }

    /// The same shape as the daemon's PingResult (docs/openapi.yaml).
    static func summary(_ times: [Int?]) -> JSON {
        let answered = times.compactMap { $0 }.sorted()
        func percentile(_ p: Double) -> JSON {
            answered.isEmpty ? .null : .number(Double(answered[min(answered.count - 1, Int((Double(answered.count) * p).rounded(.up)) - 1)]))
        }
        return .object([
            "count": .number(Double(times.count)), "answered": .number(Double(answered.count)), "lost": .number(Double(times.count - answered.count)),
            "round_trips_us": .array(times.map { $0.map { .number(Double($0)) } ?? .null }),
            "p50_us": percentile(0.5), "p99_us": percentile(0.99),
            "min_us": answered.first.map { .number(Double($0)) } ?? .null, "max_us": answered.last.map { .number(Double($0)) } ?? .null,
        ])
    }

    static func text(_ result: JSON) -> String {
        func ms(_ value: JSON) -> String { value.double.map { String(format: "%.3f ms", $0 / 1000) } ?? "-" }
        return "\(result["answered"].text)/\(result["count"].text) answered, \(result["lost"].text) lost; round trip p50 \(ms(result["p50_us"])), p99 \(ms(result["p99_us"])), min \(ms(result["min_us"])), max \(ms(result["max_us"]))"
    }
}

struct Raw: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one frame built like `encode`; print the decoded answer.",
        discussion: """
            Example: stipplectl raw get_status; stipplectl raw identify duration_ms=500. Through the daemon \
            only messages that cannot move the needle go (heartbeat, get_limits, get_status, \
            read_cartridge, identify) and the link numbers them; directly (--port, daemon stopped) any \
            frame goes, with --seq, exactly as built.
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var target: PenTarget

    @Argument(help: "Message name, as in `stipplectl messages`.")
    var message: String

    @Argument(help: "field=value for every field of the message.")
    var fields: [String] = []

    @Option(help: "Sequence number (direct only), 0...255.")
    var seq: Int = 0x70

    @Option(name: .customLong("wait-ms"), help: "How long to collect the pen's frames after sending (direct only).")
    var waitMs: Int = 300

    func run() throws {
        var values: [String: String] = [:]
        for pair in fields {
            guard let equals = pair.firstIndex(of: "=") else { throw ValidationError("'\(pair)' is not field=value") }
            values[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        let built: Message
        do { built = try Message.make(name: message, fields: values) } catch { throw InputError(error.description) }
        guard (0...255).contains(seq) else { throw ValidationError("--seq: \(seq) is outside 0...255") }
        let result: JSON
        switch try BringUpRoute.choose(options, target) {
        case .daemon(let client):
            let body = JSON.object(["message": .string(message), "fields": .object(values.mapValues(JSON.string))])
            result = try client.post("/v1/bringup/raw", body: Data(body.compactText.utf8)).json
        case .direct(let path):
            result = try direct(path, built)
        }
        if options.json { return Output.line(result.compactText) }
        if let sent = result["sent"]["text"].string { Output.line("sent      \(sent)\n          \(result["sent"]["hex"].text)") }
        let status = result["status"].string
        Output.line("ack       \(status ?? "none (the pen did not answer)")\(status != nil ? " detail \(result["detail"].text)" : "")")
        for frame in result["frames"].array where !frame["text"].text.contains(" ack ") {
            Output.line("received  \(frame["text"].text)")
        }
    }

    /// Exactly the frame built, on a port nobody else drives; then whatever comes back.
    func direct(_ path: String, _ built: Message) throws -> JSON {
        let port = try openPort(path)
        defer { port.close() }
        let frame = Frame(seq: UInt8(seq), message: built)
        let wire = FrameEncoder.encode(frame)
        do { try port.write(wire) } catch { throw CtlError(.ioError, code: "port_failed", "writing \(path): \(error)") }
        var decoder = FrameDecoder()
        var frames: [JSON] = []
        var ack: Message.Ack?
        let deadline = monotonicNow() + .milliseconds(Int64(max(10, waitMs)))
        while monotonicNow() < deadline {
            let bytes: [UInt8]
            do { bytes = try port.read(timeout: .milliseconds(10)) } catch { throw CtlError(.ioError, code: "port_failed", "reading \(path): \(error)") }
            for output in decoder.push(contentsOf: bytes) {
                switch output {
                case .frame(let received):
                    if case .ack(let a) = received.message, a.ackedSeq == frame.seq, a.ackedID == built.id.rawValue { ack = a }
                    frames.append(.object(["direction": "from_pen", "text": .string("\(received)"),
                                           "hex": .string(Hex.format(FrameEncoder.encode(received), separator: " "))]))
                case .rejected(let rejection):
                    frames.append(.object(["direction": "from_pen", "text": .string("\(rejection)"), "hex": ""]))
                }
            }
        }
        return .object([
            "message": .string(message), "status": ack.map { .string("\($0.status)") } ?? .null, "detail": .number(Double(ack?.detail ?? 0)),
            "round_trip_us": .null,
            "sent": .object(["direction": "to_pen", "text": .string("\(frame)"), "hex": .string(Hex.format(wire, separator: " "))]),
            "frames": .array(frames),
        ])
    }
}

struct Selftest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the protocol conformance suite against a pen (exit status 1 if a check fails).",
        discussion: """
            Through the daemon: it asks stippled to release the pen's serial port (only while no session \
            is open; engineers), runs the suite directly on the port, and hands the port back. With \
            --port: directly, the daemon stopped. With --sim: against the in-process simulator. The pen \
            needs a cartridge in and the pedal and e-stop button released.
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var target: PenTarget

    @Flag(help: "Test a simulated pen (no hardware, no daemon): `stipple-sim serve --pty`, found beside stipplectl or on PATH.")
    var sim = false

    func run() throws {
        var suite: ConformanceSuite
        var release: (DaemonClient, String)?
        var served: ServedSimulator?
        defer { served?.stop() }
        if sim {
            // The simulator as a process on a pty, held to the protocol in real time as a real
            // pen is: stipplectl does not link the simulator.
            served = try ServedSimulator.start()
            suite = ConformanceSuite(transport: try openPort(served!.link), replyTimeout: .milliseconds(500))
        } else {
            let path: String
            switch try BringUpRoute.choose(options, target) {
            case .daemon(let client):
                let reply = try client.post("/v1/bringup/release", body: Data("{\"seconds\":120}".utf8))
                path = reply.json["port"].text
                release = (client, path)
                if !options.json { Output.error("stipplectl: stippled released \(path) for the selftest") }
            case .direct(let port):
                path = port
            }
            do {
                suite = ConformanceSuite(transport: try openPort(path))
            } catch {
                if let (client, _) = release { _ = try? client.post("/v1/bringup/reclaim") }
                throw error
            }
        }
        defer {
            if let (client, path) = release {
                _ = try? client.post("/v1/bringup/reclaim")
                if !options.json { Output.error("stipplectl: \(path) handed back to stippled") }
            }
        }
        do { try suite.run() } catch { throw CtlError(.ioError, code: "port_failed", "the selftest stopped: \(error)") }
        let failed = suite.checks.filter { !$0.passed }.count
        if options.json {
            Output.line(JSON.object([
                "passed": .number(Double(suite.checks.count - failed)), "failed": .number(Double(failed)),
                "checks": .array(suite.checks.map { .object(["name": .string($0.name), "passed": .bool($0.passed), "detail": .string($0.detail)]) }),
            ]).compactText)
        } else {
            for check in suite.checks { Output.line(check.description) }
            Output.line("\(suite.checks.count - failed) passed, \(failed) failed")
        }
        if failed > 0 { throw ExitCode(ExitStatus.checkFailed.rawValue) }
    }
}
/// `stipple-sim serve --pty` as a child process, for `selftest --sim`.
struct ServedSimulator {
    let process: Process
    let input: Pipe
    let link: String

    /// The simulator beside this stipplectl (`.build/debug/`, `/usr/local/bin`), else on PATH.
    static func executable() throws -> URL {
        let own = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        let beside = own.deletingLastPathComponent().appendingPathComponent("stipple-sim")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent("stipple-sim")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw CtlError(.unreachable, code: "no_simulator", "selftest --sim needs stipple-sim, which is neither beside stipplectl nor on PATH (`make install`, or `swift build`)")
    }

    static func start() throws -> ServedSimulator {
        let link = NSTemporaryDirectory() + "stipplectl-selftest-\(getpid())"
        let process = Process()
        process.executableURL = try executable()
        process.arguments = ["serve", "--pty", "--link", link, "--serial", "SIM-SELFTEST"]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch {
            throw CtlError(.unreachable, code: "no_simulator", "cannot start \(process.executableURL?.path ?? "stipple-sim"): \(error)")
        }
        let served = ServedSimulator(process: process, input: input, link: link)
        let deadline = Date(timeIntervalSinceNow: 10)
        while (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil {
            guard Date() < deadline, process.isRunning else {
                served.stop()
                throw CtlError(.unreachable, code: "no_simulator", "stipple-sim did not serve a pen within 10 s")
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return served
    }

    func stop() {
        try? input.fileHandleForWriting.write(contentsOf: Data("quit\n".utf8))
        try? input.fileHandleForWriting.close()
        let deadline = Date(timeIntervalSinceNow: 3)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(atPath: link)
    }
}
#endif
