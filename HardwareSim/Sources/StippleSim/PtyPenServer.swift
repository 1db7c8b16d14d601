#if canImport(Glibc)
import Glibc
import StippleTransport
import StippleWire
import Synchronization

/// Serves a simulated pen on a pseudo-terminal in real time, so that the daemon's real serial
/// backend talks to it exactly as to /dev/ttyACM0. The pen runs on CLOCK_MONOTONIC: the
/// virtual clock is only for the in-process transport.
public final class PtyPenServer: @unchecked Sendable {
    /// The device path to open (e.g. /dev/pts/5).
    public let devicePath: String
    private let master: Int32
    /// Our own handle on the slave side: keeps the pty from reporting a hangup while no
    /// client has it open, and holds the raw-mode settings.
    private let slave: Int32
    /// The pen, shared between the serving thread and `perform` callers.
    private let pen: Mutex<PenSimulator>
    private let started = MonotonicClock.now()
    private var symlinkPath: String?
    private var pending: [UInt8] = []
    private let stopFlag = Atomic<Bool>(false)

    public init(config: PenConfig = PenConfig(), seed: UInt64 = 1) throws {
        (master, devicePath) = try PseudoTerminal.open()
        do throws(SystemCallError) {
            slave = open(devicePath, O_RDWR | O_NOCTTY | O_CLOEXEC)
            guard slave >= 0 else { throw SystemCallError("open \(devicePath)", errno: errno) }
            do throws(SystemCallError) { try SerialPort.makeRaw(slave, path: devicePath) } catch {
                close(slave)
                throw error
            }
            let flags = fcntl(master, F_GETFL)
            _ = fcntl(master, F_SETFL, flags | O_NONBLOCK)
        } catch {
            close(master)
            throw error
        }
        pen = Mutex(PenSimulator(config: config, seed: seed))
    }

    deinit {
        close(slave)
        close(master)
        if let symlinkPath { unlink(symlinkPath) }
    }

    /// Places a symlink to the device, replacing an existing symlink (never a regular file).
    public func placeSymlink(at path: String) throws {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFLNK else {
                throw SystemCallError("symlink \(path) (exists and is not a symlink)", errno: EEXIST)
            }
            unlink(path)
        }
        guard symlink(devicePath, path) == 0 else { throw SystemCallError("symlink \(path)", errno: errno) }
        symlinkPath = path
    }

    /// Asks a running `serve` to return (from another thread or a signal handler's flag).
    public func stop() { stopFlag.store(true, ordering: .relaxed) }

    /// The pen's clock: CLOCK_MONOTONIC since the server started, so the pen powers up at zero.
    private var now: MonotonicInstant { .zero + (MonotonicClock.now() - started) }

    /// Serves until `duration` passes (nil: forever), `stop()` or a `quit` command. `commands` is
    /// a file descriptor to read interactive command lines from (nil: none).
    public func serve(for duration: Duration? = nil, commands: Int32? = nil, reply: (String) -> Void = { _ in }) throws {
        var commandBuffer: [UInt8] = []
        var commandFD = commands
        let deadline = duration.map { now + $0 }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopFlag.load(ordering: .relaxed) {
            if let deadline, now >= deadline { break }
            var fds = [pollfd(fd: master, events: Int16(POLLIN), revents: 0)]
            if let commandFD { fds.append(pollfd(fd: commandFD, events: Int16(POLLIN), revents: 0)) }
            _ = poll(&fds, nfds_t(fds.count), 1)
            var received: ArraySlice<UInt8> = []
            if fds[0].revents & Int16(POLLIN) != 0 {
                let count = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
                if count > 0 { received = buffer[0..<count] }
            }
            let time = now
            let output = pen.withLock { pen in
                pen.advance(to: time)
                if !received.isEmpty { pen.receive(received) }
                return pen.takeOutput()
            }
            if fds.count > 1, fds[1].revents & Int16(POLLIN | POLLHUP) != 0, let fd = commandFD {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count <= 0 {
                    commandFD = nil  // end of input: keep serving
                } else {
                    commandBuffer += buffer[0..<count]
                    while let newline = commandBuffer.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = String(decoding: commandBuffer[..<newline], as: UTF8.self)
                        commandBuffer.removeSubrange(...newline)
                        if line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }) == ["quit"] { return }
                        reply(perform(line))
                    }
                }
            }
            pending += output
            if !pending.isEmpty {
                let written = pending.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
                if written > 0 { pending.removeFirst(written) }
                if pending.count > 1 << 20 { pending.removeAll() }  // nobody reads: drop, like a full UART
            }
        }
    }

    /// Carries out one interactive command line; returns the reply to show.
    @discardableResult
    public func perform(_ line: String) -> String {
        pen.withLock { pen in Self.perform(line, on: &pen) }
    }

    private static func perform(_ line: String, on pen: inout PenSimulator) -> String {
        let words = line.split(separator: " ").map(String.init)
        guard let verb = words.first else { return "" }
        let on = words.count > 1 && ["on", "1", "true", "down"].contains(words[1])
        switch verb {
        case "pedal":
            Scenario.Action.pedal(on).apply(to: &pen)
            return "pedal \(on ? "pressed" : "released")"
        case "estop":
            Scenario.Action.estopButton(on).apply(to: &pen)
            return "e-stop button \(on ? "pressed" : "released")"
        case "insert":
            Scenario.Action.insertCartridge(SimCartridge(id: words.count > 1 ? words[1] : "SIM-CART-0002")).apply(to: &pen)
            return "cartridge inserted"
        case "remove":
            Scenario.Action.removeCartridge.apply(to: &pen)
            return "cartridge removed"
        case "power":
            Scenario.Action.powerCycle.apply(to: &pen)
            return "pen power-cycled"
        case "status":
            return "state \(pen.penState), motor \(pen.motorDriven ? "on" : "off"), \(pen.strokeCount) strokes, rate \(Int(pen.rateHz)) Hz, fault \(pen.latchedFault), temperature \(Int(pen.temperature) / 10) °C"
        case "fault":
            guard words.count > 1 else { return "usage: fault NAME [key=value ...]" }
            var parameters: [String: String] = [:]
            for pair in words.dropFirst(2) {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { return "'\(pair)' is not key=value" }
                parameters[parts[0]] = parts[1]
            }
            do {
                let action = try Scenario.Action.fault(named: words[1], parameters: parameters)
                guard action.apply(to: &pen) else {
                    return "link faults apply to the in-process transport only; on a pty, disturb the link from the host side"
                }
                return "injected \(words[1])"
            } catch {
                return "\(error)"
            }
        default:
            return "unknown command '\(verb)'; commands: pedal on|off, estop on|off, insert [ID], remove, fault NAME [k=v], power, status, quit"
        }
    }
}
#endif
