// daemon-bench: stippled measured as a process, against a pen on a real pty (issue 8).
//
//   reaction   an over-depth TELEMETRY written into the pty → the MOTOR_STOP frame read back,
//              p50/p99 over N events, beside the bare pty round trip (a C child echoing on a
//              pty) — the two interleaved event by event, so that whatever else the machine
//              does falls on both alike; and in alternating blocks with and without 16 SSE
//              clients attached at full telemetry rate
//   cpu        the daemon's CPU time per telemetry frame at 1 kHz (its threads' schedstat, less
//              idle windows interleaved with the busy ones), beside a C child that only waits
//              for and reads the same frames on a pty of its own: the floor of this machine
//   memory     resident memory at start, at the start of a four-hour session on the
//              accelerated clock, and after it
//
// The pen's side (the simulated pen's thread, the main thread that injects frames, the echo
// child) runs under SCHED_FIFO above the daemon's priority when the bench runs as root: a real
// pen is a microcontroller no host load delays. `--load N` adds N processes burning CPU at
// normal priority during the reactions (a busy workstation); `--no-realtime` runs the daemon's
// supervisor thread at normal priority, for comparison.
//
// The pen is HardwareSim's PenSimulator run in real time on the pty's master, so the daemon
// does its real handshake, limits read-back and arming. After the first over-depth frame the
// session is latched; every further over-depth frame makes the core insist on the stop, which
// goes out through the same path (frame in → core → MOTOR_STOP out) — that is what is timed.

import CBenchPty
import Foundation
import Glibc
import StippleClient
import StippleSim
import StippleWire
import Synchronization

// MARK: - Small tools

func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("daemon-bench: \(message)\n".utf8))
    exit(1)
}

func percentile(_ values: [Int64], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
    return Double(sorted[max(0, index)]) / 1000  // µs
}

/// Opens a pty pair; the slave is put in raw mode and kept open (so its settings stay).
func openPTY() -> (master: Int32, slave: Int32, path: String) {
    guard let (master, path) = try? PseudoTerminal.open() else { fail("cannot open a pty") }
    let slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
    guard slave >= 0 else { fail("cannot open \(path)") }
    makeRaw(slave)
    makeRaw(master)
    return (master, slave, path)
}

func makeRaw(_ fd: Int32) {
    var attributes = termios()
    if tcgetattr(fd, &attributes) == 0 {
        cfmakeraw(&attributes)
        _ = tcsetattr(fd, TCSANOW, &attributes)
    }
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written < 0 { if errno == EINTR || errno == EAGAIN { continue }; fail("write: \(errno)") }
        offset += written
    }
}

func readSome(_ fd: Int32, timeoutMs: Int32) -> [UInt8] {
    var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&pfd, 1, timeoutMs) > 0 else { return [] }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    return count > 0 ? Array(buffer[0..<count]) : []
}

// MARK: - The API over the Unix socket

/// One request through the API's one client (`StippleClient`, as stipplectl sends it): its
/// status and body as text; status 0 when the daemon cannot be reached.
@discardableResult
func http(_ socket: String, _ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) -> (Int, String) {
    let client = UnixHTTPClient(socketPath: socket, timeout: .seconds(10), userAgent: "daemon-bench")
    guard let answer = try? client.send(method, path, body: body.map { Data($0.utf8) }, headers: headers) else { return (0, "cannot connect") }
    return (answer.status, String(decoding: answer.body, as: UTF8.self))
}

func status(_ socket: String) -> JSON {
    let (_, body) = http(socket, "GET", "/v1/status")
    return (try? JSON(data: Data(body.utf8))) ?? .null
}

func waitFor(_ what: String, seconds: Double = 30, _ condition: () -> Bool) {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return }
        usleep(20_000)
    }
    fail("timed out waiting for \(what)")
}

/// An event stream read (and thrown away) on a thread of its own until closed.
final class EventStream: @unchecked Sendable {
    let stop = StopFlag()
    let thread: Thread

    init?(socket: String, client: String?, fullRate: Bool) {
        let http = UnixHTTPClient(socketPath: socket, userAgent: "daemon-bench")
        guard let probe = try? http.connect() else { return nil }
        Glibc.close(probe)
        let headers = client.map { ["X-Stipple-Client": $0] } ?? [:]
        let stop = stop
        thread = Thread {
            try? http.stream("/v1/events\(fullRate ? "?telemetry=full" : "")", headers: headers, stop: stop,
                             onHead: { _, _ in }, onBody: { _ in true })
        }
        thread.start()
    }

    func close() { stop.raise() }
}

// MARK: - The daemon

final class Daemon {
    let process = Process()
    let socket: String
    var pid: Int32 { process.processIdentifier }

    init(binary: String, arguments: [String], directory: String) {
        socket = directory + "/api.sock"
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments + ["--socket", socket, "--state-dir", directory + "/state", "--log-level", "error"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        do { try process.run() } catch { fail("cannot start \(binary): \(error)") }
        waitFor("stippled's socket") { http(socket, "GET", "/v1/status").0 == 200 }
    }

    /// CPU time so far in nanoseconds, summed over every thread (the scheduler's own account,
    /// not clock ticks): `/proc/PID/schedstat` alone is the main thread, which in stippled
    /// mostly sleeps while the supervisor loop and the NIO threads do the work.
    var cpuNanoseconds: Int64 {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.reduce(0) { sum, task in
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8)) ?? "0"
            return sum + (Int64(text.split(separator: " ").first ?? "0") ?? 0)
        }
    }

    /// CPU time so far per thread name (`--threads`: where the daemon's time goes).
    var cpuByThread: [String: Int64] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        var result: [String: Int64] = [:]
        for task in tasks {
            let name = ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8)) ?? "0"
            result[name, default: 0] += Int64(text.split(separator: " ").first ?? "0") ?? 0
        }
        return result
    }

    var residentKB: Int {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

// MARK: - The pen on the pty's master

/// The simulated pen, run in real time on the master side; it also watches the daemon's frames
/// for MOTOR_STOP, and lets the benchmark write frames of its own into the stream.
final class PtyPen: @unchecked Sendable {
    let master: Int32
    private let pen: Mutex<PenSimulator>
    private let writeLock = Mutex(())
    let stopsSeen = Atomic<Int>(0)
    let lastStopAt = Atomic<Int64>(0)
    /// Signalled on every MOTOR_STOP, so the benchmark waits without taking a core.
    let stopSignal = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(true)
    private let start = monotonicNanoseconds()

    init(master: Int32) {
        self.master = master
        pen = Mutex(PenSimulator(config: PenConfig(), seed: 5))
    }

    func withPen<T>(_ body: (inout PenSimulator) -> T) -> T { pen.withLock { body(&$0) } }

    func inject(_ bytes: [UInt8]) { writeLock.withLock { _ in writeAll(master, bytes) } }

    func run() {
        var decoder = FrameDecoder()
        while running.load(ordering: .relaxed) {
            let bytes = readSome(master, timeoutMs: 1)
            let now = monotonicNanoseconds()
            for byte in bytes {
                if case .frame(let frame)? = decoder.push(byte), case .motorStop = frame.message {
                    lastStopAt.store(now, ordering: .relaxed)
                    stopsSeen.wrappingAdd(1, ordering: .releasing)
                    stopSignal.signal()
                }
            }
            let output = pen.withLock { pen -> [UInt8] in
                if !bytes.isEmpty { pen.receive(bytes) }
                pen.advance(to: MonotonicInstant(nanoseconds: now - start))
                return pen.takeOutput()
            }
            if !output.isEmpty { inject(output) }
        }
    }

    func stop() { running.store(false, ordering: .relaxed) }
}

func telemetryFrame(peakUm: UInt16, rateDhz: UInt16, motorOn: Bool) -> [UInt8] {
    var flags: PenFlags = [.handshakeDone, .limitsSet, .cartridgePresent]
    if motorOn { flags.formUnion([.motorOn, .pedalPressed, .armed, .runEnabled]) }
    return FrameEncoder.encode(Frame(seq: 0, message: .telemetry(.init(
        penTimeUs: 0, strokeCount: 0, peakProtrusionUm: peakUm, strokeRateDhz: rateDhz, motorCurrentMa: 300,
        temperatureDc: 300, flags: flags))))
}

// MARK: - The measurements

/// A C baseline on a pty of its own, in a child process: `--echo` writes back what it reads
/// (the bare round trip), `--reader` only reads (the CPU floor).
final class BaselineChild {
    let process = Process()
    let master: Int32

    init(mode: String) {
        let pty = openPTY()
        close(pty.slave)
        master = pty.master
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = [mode, pty.path]
        do { try process.run() } catch { fail("cannot start the \(mode) child: \(error)") }
        usleep(200_000)
    }

    /// CPU time so far (one thread: the scheduler's account of it).
    var cpuNanoseconds: Int64 {
        let text = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/schedstat", encoding: .utf8)) ?? "0"
        return Int64(text.split(separator: " ").first ?? "0") ?? 0
    }

    /// One round trip through the echo child.
    func roundTrip(_ frame: [UInt8]) -> Int64 {
        let start = monotonicNanoseconds()
        writeAll(master, frame)
        var got = 0
        while got < frame.count {
            let chunk = readSome(master, timeoutMs: 1000)
            if chunk.isEmpty { fail("the echo child stopped answering") }
            got += chunk.count
        }
        return monotonicNanoseconds() - start
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        close(master)
    }
}

/// One over-depth frame in, the MOTOR_STOP out: the time between, or nil if none came.
func reaction(pen: PtyPen, overDepth: [UInt8]) -> Int64? {
    while pen.stopSignal.wait(timeout: .now()) == .success {}  // drain
    let before = pen.stopsSeen.load(ordering: .acquiring)
    let start = monotonicNanoseconds()
    pen.inject(overDepth)
    _ = pen.stopSignal.wait(timeout: .now() + .milliseconds(200))
    guard pen.stopsSeen.load(ordering: .acquiring) != before else { return nil }
    return pen.lastStopAt.load(ordering: .relaxed) - start
}

struct ReactionSamples {
    var bare: [Int64] = []
    var reaction: [Int64] = []
    var bareWithClients: [Int64] = []
    var reactionWithClients: [Int64] = []
}

/// Bare round trips and stop reactions, one of each per event, in blocks of `block` events
/// alternately without and with 16 SSE clients at full rate.
func measureReactions(pen: PtyPen, echo: BaselineChild, socket: String, events: Int, block: Int = 250) -> ReactionSamples {
    let overDepth = telemetryFrame(peakUm: 1900, rateDhz: 1200, motorOn: true)
    let probe = telemetryFrame(peakUm: 800, rateDhz: 1200, motorOn: true)
    var samples = ReactionSamples()
    var misses = 0
    // Warm-up, not kept.
    for _ in 0..<200 {
        _ = echo.roundTrip(probe)
        _ = reaction(pen: pen, overDepth: overDepth)
        usleep(1_500)
    }
    var blockIndex = 0
    while samples.reaction.count < events || samples.reactionWithClients.count < events {
        let withClients = blockIndex % 2 == 1
        blockIndex += 1
        var clients: [EventStream] = []
        if withClients {
            for _ in 0..<16 { if let stream = EventStream(socket: socket, client: nil, fullRate: true) { clients.append(stream) } }
            usleep(200_000)
        }
        for _ in 0..<block {
            let bare = echo.roundTrip(probe)
            if let time = reaction(pen: pen, overDepth: overDepth) {
                if withClients {
                    samples.bareWithClients.append(bare)
                    samples.reactionWithClients.append(time)
                } else {
                    samples.bare.append(bare)
                    samples.reaction.append(time)
                }
            } else {
                misses += 1
                if misses > 100 { fail("the daemon stopped answering over-depth frames") }
            }
            usleep(1_500)  // the pen acknowledges MOTOR_STOP and DISARM before the next frame
        }
        for client in clients { client.close() }
        if withClients { usleep(200_000) }
    }
    return samples
}

struct Options {
    var stippled = "../.build/release/stippled"
    var events = 10_000
    var seconds = 10.0
    var fourHours = true
    var realtime = true
    var threads = false
    var load = 0

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--stippled": stippled = iterator.next() ?? stippled
            case "--events": events = Int(iterator.next() ?? "") ?? events
            case "--seconds": seconds = Double(iterator.next() ?? "") ?? seconds
            case "--no-four-hours": fourHours = false
            case "--no-realtime": realtime = false
            case "--threads": threads = true
            case "--load": load = Int(iterator.next() ?? "") ?? load
            case "--quick": events = 1000; seconds = 3; fourHours = false
            default: fail("unknown option \(argument) (--stippled PATH, --events N, --seconds S, --no-four-hours, --no-realtime, --threads, --load N, --quick)")
            }
        }
    }
}

/// The pen's side of the measurements runs at a real-time priority above the daemon's (10):
/// a real pen is a microcontroller of its own, which no load on the host delays; the bench's
/// pen thread and the echo child model that, so that what is measured is the daemon.
let penPriority: Int32 = 20

if CommandLine.arguments.count == 2, CommandLine.arguments[1] == "--spin" { bench_spin() }
if CommandLine.arguments.count == 3, ["--echo", "--reader"].contains(CommandLine.arguments[1]) {
    // The reader is the CPU floor: a plain process at normal priority, as the daemon's threads.
    if CommandLine.arguments[1] == "--echo" { _ = bench_realtime(penPriority) }
    exit(bench_pty_loop(CommandLine.arguments[2], CommandLine.arguments[1] == "--echo" ? 1 : 0) == 0 ? 0 : 2)
}
let options = Options(CommandLine.arguments)
guard FileManager.default.isExecutableFile(atPath: options.stippled) else { fail("no stippled at \(options.stippled) (make bench builds it)") }
let work = NSTemporaryDirectory() + "stipple-daemon-bench-\(getpid())"
try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: work) }

print("daemon-bench: \(options.events) events, \(Int(options.seconds)) s CPU windows, stippled \(options.stippled)")

_ = bench_realtime(penPriority)  // the main thread injects frames and times the bare round trips

// 1. The daemon on a pty pen: handshake, a session, armed and running. The C baselines run
// beside it for the whole run.
let echo = BaselineChild(mode: "--echo")
let reader = BaselineChild(mode: "--reader")
let pty = openPTY()
let pen = PtyPen(master: pty.master)
let penThread = Thread {
    if bench_realtime(penPriority) != 0 { print("daemon-bench: not root: the pen's side runs at normal priority (figures get noisier)") }
    pen.run()
}
penThread.start()
let daemon = Daemon(binary: options.stippled, arguments: ["--pen", "serial:\(pty.path)"] + (options.realtime ? [] : ["--realtime-priority", "0"]),
                    directory: work + "/a")
waitFor("the pen's handshake") { status(daemon.socket)["pen"]["serial"].string == "SIM-0001" }
let rssStart = daemon.residentKB
let opened = http(daemon.socket, "POST", "/v1/sessions", body: #"{"client_id": "BENCH-1", "zone": "crown", "cartridge_id": "SIM-CART-0001", "pigment_lots": ["P"]}"#)
guard opened.0 == 201 else { fail("opening a session: \(opened)") }
let sessionID = status(daemon.socket)["session"]["id"].string ?? ""
guard http(daemon.socket, "PUT", "/v1/sessions/\(sessionID)/setpoint", body: #"{"layer": "upper_dermis", "depth_um": 800, "rate_hz": 120}"#).0 == 200 else { fail("setpoint") }

/// A value from the daemon's /metrics.
func metric(_ socket: String, _ name: String) -> Double? {
    let text = http(socket, "GET", "/metrics").1
    return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
}
let realtimePriority = Int(metric(daemon.socket, "stipple_supervisor_realtime_priority") ?? 0)

// 2. CPU per telemetry frame at 1 kHz: one-second windows, idle and busy alternately; in the
// busy ones the same frame goes to the daemon's pen and to the C reader at the same moment.
struct CPUWindows { var idle: Int64 = 0, busy: Int64 = 0, readerIdle: Int64 = 0, readerBusy: Int64 = 0, frames = 0 }
func cpuWindows(daemon: Daemon, reader: BaselineChild, pen: PtyPen, seconds: Int) -> CPUWindows {
    let idleFrame = telemetryFrame(peakUm: 0xFFFF, rateDhz: 0, motorOn: false)
    var result = CPUWindows()
    var threads: [String: (idle: Int64, busy: Int64)] = [:]
    for window in 0..<(2 * seconds) {
        let inject = window % 2 == 1
        let threadsBefore = options.threads ? daemon.cpuByThread : [:]
        let daemonBefore = daemon.cpuNanoseconds
        let readerBefore = reader.cpuNanoseconds
        let start = monotonicNanoseconds()
        var next = start
        while monotonicNanoseconds() < start + 1_000_000_000 {
            if inject {
                pen.inject(idleFrame)
                writeAll(reader.master, idleFrame)
                result.frames += 1
            }
            next += 1_000_000
            let wait = next - monotonicNanoseconds()
            if wait > 0 { usleep(UInt32(wait / 1000)) }
        }
        let daemonCPU = daemon.cpuNanoseconds - daemonBefore
        let readerCPU = reader.cpuNanoseconds - readerBefore
        if inject { result.busy += daemonCPU; result.readerBusy += readerCPU } else { result.idle += daemonCPU; result.readerIdle += readerCPU }
        for (name, time) in options.threads ? daemon.cpuByThread : [:] {
            let delta = time - (threadsBefore[name] ?? 0)
            if inject { threads[name, default: (0, 0)].busy += delta } else { threads[name, default: (0, 0)].idle += delta }
        }
    }
    for (name, time) in threads.sorted(by: { $0.key < $1.key }) {
        print(String(format: "  thread %-16@ idle %8.1f ms   busy %8.1f ms", name as NSString, Double(time.idle) / 1e6, Double(time.busy) / 1e6))
    }
    return result
}
let cpu = cpuWindows(daemon: daemon, reader: reader, pen: pen, seconds: max(1, Int(options.seconds)))
let cpuPerFrame = Double(cpu.busy - cpu.idle) / Double(max(1, cpu.frames)) / 1000
let floorPerFrame = Double(cpu.readerBusy - cpu.readerIdle) / Double(max(1, cpu.frames)) / 1000

// 3. Armed and running: the presence stream open, the pedal down.
waitFor("the limits read back") { status(daemon.socket)["pen"]["limits_crc"].string != nil }
guard let presence = EventStream(socket: daemon.socket, client: "bench", fullRate: false) else { fail("event stream") }
usleep(200_000)
let armed = http(daemon.socket, "POST", "/v1/arm", headers: ["X-Stipple-Client": "bench"])
guard armed.0 == 200 else { fail("arming: \(armed)") }
pen.withPen { $0.setPedal(true) }
waitFor("running") { status(daemon.socket)["phase"].string == "running" }

// 4. The stop path: the first over-depth frame latches; every further one makes the core
// insist. Interleaved with the bare round trip; blocks with and without 16 SSE clients.
// With `--load N`, N processes burn CPU at normal priority meanwhile: a busy workstation.
let hogs = (0..<options.load).map { _ in
    let hog = Process()
    hog.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    hog.arguments = ["--spin"]
    do { try hog.run() } catch { fail("cannot start a load process: \(error)") }
    return hog
}
let samples = measureReactions(pen: pen, echo: echo, socket: daemon.socket, events: options.events)
for hog in hogs { hog.terminate(); hog.waitUntilExit() }

/// The daemon's own account of its stop path (frame read → stop written), from /metrics.
func inDaemonReaction(_ socket: String) -> String {
    guard let sum = metric(socket, "stipple_stop_reaction_seconds_sum"), let count = metric(socket, "stipple_stop_reaction_seconds_count"), count > 0 else { return "n/a" }
    return String(format: "%.1f µs mean over %.0f stops", sum / count * 1e6, count)
}
let daemonSide = inDaemonReaction(daemon.socket)
presence.close()
daemon.stop()
pen.stop()
echo.stop()
reader.stop()

// 5. Memory over a four-hour session on the accelerated clock (the in-process simulator).
var rssFourHours: (daemonStart: Int, sessionStart: Int, after: Int)?
if options.fourHours {
    let scenario = work + "/pedal.json"
    try #"{"name": "bench-four-hours", "description": "the pedal down at 10 min", "hazards": [], "seed": 3, "duration_ms": 15000000, "steps": [{"at_ms": 600000, "do": "pedal", "pressed": true}], "expect": []}"#
        .write(toFile: scenario, atomically: true, encoding: .utf8)
    let accelerated = Daemon(binary: options.stippled, arguments: ["--pen", "sim:\(scenario)", "--clock", "accelerated=1000"], directory: work + "/b")
    waitFor("the simulated pen") { status(accelerated.socket)["pen"]["serial"].string != nil }
    let daemonStart = accelerated.residentKB
    guard http(accelerated.socket, "POST", "/v1/sessions", body: #"{"client_id": "BENCH-2", "zone": "crown", "cartridge_id": "SIM-CART-0001", "pigment_lots": ["P"]}"#).0 == 201 else { fail("four hours: open") }
    let id = status(accelerated.socket)["session"]["id"].string ?? ""
    _ = http(accelerated.socket, "PUT", "/v1/sessions/\(id)/setpoint", body: #"{"layer": "upper_dermis", "depth_um": 800, "rate_hz": 120}"#)
    waitFor("the limits read back") { status(accelerated.socket)["pen"]["limits_crc"].string != nil }
    guard let lease = EventStream(socket: accelerated.socket, client: "bench", fullRate: false) else { fail("event stream") }
    usleep(100_000)
    let armedFour = http(accelerated.socket, "POST", "/v1/arm", headers: ["X-Stipple-Client": "bench"])
    guard armedFour.0 == 200 else { fail("four hours: arming: \(armedFour)") }
    let sessionStart = accelerated.residentKB
    waitFor("the four-hour cutoff", seconds: 900) {
        status(accelerated.socket)["session"]["close_reason"].string != nil
    }
    let reason = status(accelerated.socket)["session"]["close_reason"].string ?? "?"
    if reason != "time_limit" { fail("the four-hour session ended with \(reason), not time_limit") }
    rssFourHours = (daemonStart, sessionStart, accelerated.residentKB)
    lease.close()
    accelerated.stop()
}

// MARK: - Report

func row(_ name: String, _ values: [Int64]) -> String {
    String(format: "%-50@ p50 %7.1f µs   p99 %7.1f µs", name as NSString, percentile(values, 0.5), percentile(values, 0.99))
}
print("stippled's supervisor thread: \(realtimePriority > 0 ? "SCHED_FIFO \(realtimePriority)" : "normal scheduling")"
      + (options.load > 0 ? "; \(options.load) processes burning CPU during the reactions" : ""))
print(row("bare pty round trip", samples.bare))
print(row("stop reaction (over-depth frame → MOTOR_STOP)", samples.reaction))
print(row("bare pty round trip, 16 SSE clients attached", samples.bareWithClients))
print(row("stop reaction, 16 SSE clients at full rate", samples.reactionWithClients))
print("inside the daemon (frame read → stop written): \(daemonSide)")
print(String(format: "stop reaction p99 / bare pty p99: %.2f (goal ≤ 2.0)", percentile(samples.reaction, 0.99) / percentile(samples.bare, 0.99)))
print(String(format: "with 16 SSE clients / without, p99: %.2f (goal ≤ 1.2)", percentile(samples.reactionWithClients, 0.99) / percentile(samples.reaction, 0.99)))
print(String(format: "daemon CPU per telemetry frame at 1 kHz: %.2f µs (goal ≤ 5 µs; %d frames, idle windows subtracted)", cpuPerFrame, cpu.frames))
print(String(format: "  the floor, a C process only reading the same frames: %.2f µs; the daemon's own work above it: %.2f µs", floorPerFrame, cpuPerFrame - floorPerFrame))
print("resident memory at start: \(rssStart / 1024) MB")
if let memory = rssFourHours {
    print(String(format: "four hours on the accelerated clock: %.1f MB at daemon start, %.1f MB at session start, %.1f MB after (goal ≤ 40 MB)",
                 Double(memory.daemonStart) / 1024, Double(memory.sessionStart) / 1024, Double(memory.after) / 1024))
    print("  growth over the session: \(memory.after - memory.sessionStart) KB (goal ≤ 1 MB); since the daemon started: \(memory.after - memory.daemonStart) KB")
}
