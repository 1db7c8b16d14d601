#if canImport(Glibc)
import CGPIOD
import Glibc
import StippleTransport
import StippleWire
import Synchronization

/// How each line is requested from the kernel — pure, so it is tested without a chip.
public struct GPIOLineRequest: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// An output, requested already driving `initialActive` (always false: inactive).
        case output(initialActive: Bool)
        /// An input reporting both edges (pedal, e-stop, over-depth switch).
        case bothEdges
        /// An input reporting only the start of each pulse (the tachometer: one per stroke).
        case risingEdge
    }

    public var line: GPIOPenLine
    public var chip: String
    public var address: GPIOLineSpec.Address
    public var kind: Kind
    public var activeLow: Bool
    public var bias: GPIOLineSpec.Bias

    /// The requests for a pen, motor enable first: it is driven inactive before anything else
    /// is touched.
    public static func plan(_ settings: GPIOPenSettings) -> [GPIOLineRequest] {
        settings.lines.sorted { $0.key < $1.key }.map { line, spec in
            let kind: Kind = switch line {
            case .motorEnable, .statusLED: .output(initialActive: false)
            case .tachometer: .risingEdge
            case .pedal, .estop, .overDepth: .bothEdges
            }
            return GPIOLineRequest(line: line, chip: spec.chip ?? settings.chip, address: spec.address, kind: kind,
                                   activeLow: spec.activeLow, bias: spec.bias)
        }
    }

    /// libgpiod's request flags.
    public var flags: Int32 {
        var flags: Int32 = 0
        if activeLow { flags |= Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) }
        switch bias {
        case .asIs: break
        case .disabled: flags |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE)
        case .pullUp: flags |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP)
        case .pullDown: flags |= Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN)
        }
        return flags
    }
}

/// The real lines, through libgpiod v1 (the API Debian 12 ships, 1.6): chips opened by
/// `gpiod_chip_open_lookup` (a name like `gpiochip0`, a path, a number or a label), lines by
/// offset or name, outputs requested with their inactive value, inputs as edge events whose
/// kernel timestamps (CLOCK_MONOTONIC since Linux 5.7) become `GPIOEdge.time`. libgpiod v1
/// has no debounce setting; `InputDebouncer` debounces on those timestamps.
///
/// **What the kernel does with a released line.** The kernel guarantees an output's value
/// only while the request is held. When the daemon releases it — at exit, or when the kernel
/// closes the file descriptors of a process that crashed or was killed — the line becomes
/// uncontrolled from user space and *may* revert to its default state or keep its last value,
/// as the GPIO controller's driver decides. So `release()` drives every output inactive
/// first, but after a crash nothing in software can: a GPIO pen's motor must not depend on
/// the line staying driven. The pen's hardware must cut motor power with the e-stop button
/// (H5, H12) and should hold the motor driver's enable input off with a pull resistor; a
/// restarted daemon requests the line inactive again before anything else (H11).
/// docs/safety.md ("GPIO pens") says what the hardware must provide.
public final class LibgpiodLines: GPIOLineIO, @unchecked Sendable {
    private struct Held {
        let request: GPIOLineRequest
        let line: OpaquePointer
        let eventFD: Int32?
    }

    public let description: String
    /// Written once in init, freed by `release` once no call is using them.
    private let chips: [OpaquePointer]
    private let held: [GPIOPenLine: Held]
    /// `release` marks the lines released (no new call starts) and frees them only when no call
    /// is under way: the reader may be waiting for edges while a stop is written from the
    /// supervisor, and neither may find the lines freed under it.
    private let usage = Mutex((released: false, inFlight: 0))

    /// Opens the chips and requests every configured line, motor enable first and inactive.
    /// Throws an error naming the chip or line that failed; nothing stays requested then.
    public init(settings: GPIOPenSettings) throws(SystemCallError) {
        var chipsByName: [String: OpaquePointer] = [:]
        var held: [GPIOPenLine: Held] = [:]
        var parts: [String] = []
        do throws(SystemCallError) {
            for request in GPIOLineRequest.plan(settings) {
                let chip: OpaquePointer
                if let open = chipsByName[request.chip] {
                    chip = open
                } else {
                    chip = try Self.openChip(request.chip)
                    chipsByName[request.chip] = chip
                }
                let line = try Self.findLine(request, on: chip)
                try Self.request(request, line: line)
                let fd: Int32? = if case .output = request.kind { nil } else { gpiod_line_event_get_fd(line) }
                held[request.line] = Held(request: request, line: line, eventFD: fd)
                let offset = gpiod_line_offset(line)
                parts.append("\(request.line.rawValue)=\(request.chip):\(offset)\(request.activeLow ? " (active low)" : "")")
            }
        } catch {
            // Closing a chip releases its lines; outputs were requested inactive.
            for chip in chipsByName.values { gpiod_chip_close(chip) }
            throw error
        }
        self.chips = Array(chipsByName.values)
        self.held = held
        description = "gpio " + parts.joined(separator: ", ")
    }

    deinit { release() }

    static func openChip(_ name: String) throws(SystemCallError) -> OpaquePointer {
        guard let chip = gpiod_chip_open_lookup(name) else {
            let code = errno
            throw SystemCallError("open GPIO chip \"\(name)\"", errno: code,
                            detail: "cannot open GPIO chip \"\(name)\" (looked up as a /dev/gpiochipN name, path, number and label): \(String(cString: strerror(code)))")
        }
        return chip
    }

    static func findLine(_ request: GPIOLineRequest, on chip: OpaquePointer) throws(SystemCallError) -> OpaquePointer {
        let found: OpaquePointer? = switch request.address {
        case .offset(let offset): gpiod_chip_get_line(chip, UInt32(clamping: offset))
        case .name(let name): gpiod_chip_find_line(chip, name)
        }
        guard let found else {
            let code = errno
            throw SystemCallError("find \(request.line.rawValue)", errno: code,
                            detail: "GPIO chip \"\(request.chip)\" has no line \(request.address) for \(request.line.rawValue): \(String(cString: strerror(code)))")
        }
        return found
    }

    static func request(_ request: GPIOLineRequest, line: OpaquePointer) throws(SystemCallError) {
        let consumer = GPIOPenSettings.consumer
        let result: Int32 = switch request.kind {
        case .output(let active): gpiod_line_request_output_flags(line, consumer, request.flags, active ? 1 : 0)
        case .bothEdges: gpiod_line_request_both_edges_events_flags(line, consumer, request.flags)
        case .risingEdge: gpiod_line_request_rising_edge_events_flags(line, consumer, request.flags)
        }
        guard result == 0 else {
            let code = errno
            let busy = code == EBUSY ? " (another process holds it)" : ""
            throw SystemCallError("request \(request.line.rawValue)", errno: code,
                            detail: "cannot request \(request.line.rawValue) (\(request.chip) \(request.address))\(busy): \(String(cString: strerror(code)))")
        }
    }

    private func lineFor(_ line: GPIOPenLine) throws(SystemCallError) -> Held {
        guard let held = held[line] else {
            throw SystemCallError("\(line.rawValue)", errno: ENOENT, detail: "\(line.rawValue) is not configured")
        }
        return held
    }

    /// Runs `body` unless the lines are released; `release` waits for it to finish.
    private func using<T>(_ what: String, _ body: () throws(SystemCallError) -> T) throws(SystemCallError) -> T {
        let released = usage.withLock { usage -> Bool in
            if !usage.released { usage.inFlight += 1 }
            return usage.released
        }
        if released { throw SystemCallError(what, errno: EBADF, detail: "\(what): the GPIO lines were released") }
        defer { usage.withLock { $0.inFlight -= 1 } }
        return try body()
    }

    public func set(_ line: GPIOPenLine, active: Bool) throws(SystemCallError) {
        try using("set \(line.rawValue)") { () throws(SystemCallError) in try setHeld(line, active: active) }
    }

    private func setHeld(_ line: GPIOPenLine, active: Bool) throws(SystemCallError) {
        let held = try lineFor(line)
        if gpiod_line_set_value(held.line, active ? 1 : 0) != 0 {
            let code = errno
            throw SystemCallError("set \(line.rawValue)", errno: code, detail: "cannot drive \(line.rawValue): \(String(cString: strerror(code)))")
        }
    }

    public func value(_ line: GPIOPenLine) throws(SystemCallError) -> Bool {
        try using("read \(line.rawValue)") { () throws(SystemCallError) -> Bool in try valueHeld(line) }
    }

    private func valueHeld(_ line: GPIOPenLine) throws(SystemCallError) -> Bool {
        let held = try lineFor(line)
        let value = gpiod_line_get_value(held.line)
        if value < 0 {
            let code = errno
            throw SystemCallError("read \(line.rawValue)", errno: code, detail: "cannot read \(line.rawValue): \(String(cString: strerror(code)))")
        }
        return value == 1
    }

    public func waitEdges(timeout: Duration) throws(SystemCallError) -> [GPIOEdge] {
        try using("wait for edges") { () throws(SystemCallError) -> [GPIOEdge] in try waitHeld(timeout: timeout) }
    }

    private func waitHeld(timeout: Duration) throws(SystemCallError) -> [GPIOEdge] {
        let inputs = held.values.compactMap { held in held.eventFD.map { (fd: $0, line: held.request.line) } }
        var fds = inputs.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        let ms = Int32(clamping: (timeout.components.seconds * 1000) + (timeout.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        var ready: Int32
        repeat { ready = poll(&fds, nfds_t(fds.count), ms) } while ready < 0 && errno == EINTR
        if ready < 0 {
            let code = errno
            throw SystemCallError("poll lines", errno: code, detail: "waiting for line events failed: \(String(cString: strerror(code)))")
        }
        var edges: [GPIOEdge] = []
        guard ready > 0 else { return edges }
        var buffer = [gpiod_line_event](repeating: gpiod_line_event(), count: 16)
        for (index, pfd) in fds.enumerated() where pfd.revents != 0 {
            let line = inputs[index].line
            guard pfd.revents & Int16(POLLIN) != 0 else {
                throw SystemCallError("read \(line.rawValue)", errno: EIO, detail: "the event file of \(line.rawValue) failed (the chip went away?)")
            }
            // One read takes every queued event (up to the buffer); it cannot block after POLLIN.
            let count = buffer.withUnsafeMutableBufferPointer { gpiod_line_event_read_fd_multiple(pfd.fd, $0.baseAddress, UInt32($0.count)) }
            if count < 0 {
                let code = errno
                throw SystemCallError("read \(line.rawValue)", errno: code, detail: "reading events of \(line.rawValue) failed: \(String(cString: strerror(code)))")
            }
            for event in buffer.prefix(Int(count)) {
                let time = MonotonicInstant(nanoseconds: Int64(event.ts.tv_sec) * 1_000_000_000 + Int64(event.ts.tv_nsec))
                edges.append(GPIOEdge(line: line, active: event.event_type == Int32(GPIOD_LINE_EVENT_RISING_EDGE), time: time))
            }
        }
        return edges.sorted { $0.time < $1.time }
    }

    public func release() {
        let first = usage.withLock { usage in
            defer { usage.released = true }
            return !usage.released
        }
        guard first else { return }
        // No new call starts; the ones under way end within the reader's wait (milliseconds).
        while usage.withLock({ $0.inFlight > 0 }) { usleep(200) }
        // Inactive first (the motor off), then give the lines back; closing a chip releases
        // whatever it still holds.
        for line in [GPIOPenLine.motorEnable, .statusLED] {
            if let held = held[line] { _ = gpiod_line_set_value(held.line, 0) }
        }
        for held in held.values { gpiod_line_release(held.line) }
        for chip in chips { gpiod_chip_close(chip) }
    }
}
#endif
