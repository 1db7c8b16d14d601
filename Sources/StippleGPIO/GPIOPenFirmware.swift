import StipplePenFirmware
import StippleLink
import StippleWire
import StippleWireC

/// A GPIO pen's firmware: the pen firmware core (`Firmware-protocol/firmware`, the C code a pen
/// microcontroller runs) running inside the daemon on the line reader's thread, over a HAL made
/// of the pen's lines — the way Klipper runs its MCU code over gpiod. A GPIO pen has no
/// microcontroller, so the daemon hosts its pen-side rules, independent of the supervisor and the
/// safety core: the core owns the session's decisions; these rules are the pen's own
/// mitigation, the same code a conforming serial pen runs.
///
/// The board as the core sees it: the motor-enable line (`motorEnable`, written by `GPIOPen`
/// before its lock is released), the status LED (lit while armed), the debounced pedal, e-stop
/// and over-depth switch, and the tachometer (its pulses are the strokes; the rate is measured
/// per stroke). There is no depth sensor (the switch sits at the trip), no current or
/// temperature sensor, and no cartridge sensor: the technician types the cartridge (the
/// daemon's ledger still applies), so the cartridge counts as present and its removal cannot be
/// seen (H10).
///
/// Commands reach the core as frames, as from a serial link, and its frames come back as the
/// link's events. The supervisor's polls are its heartbeat (an internal HEARTBEAT, whose ACK is
/// not passed on), so a hung daemon stops the needle from the reader's thread (rule 5).
public struct GPIOPenFirmware: Sendable {
    /// The firmware version this pen reports in HELLO_REPLY: the core's.
    public static let version = (major: UInt8(STP_CORE_VERSION_MAJOR), minor: UInt8(STP_CORE_VERSION_MINOR),
                                 patch: UInt8(STP_CORE_VERSION_PATCH))

    private var core = stp_pen()
    private var board: GPIOBoard
    private let origin: MonotonicInstant
    private var now: MonotonicInstant
    private var hostSeq: UInt8 = 0
    private var decoder = FrameDecoder()
    private var events: [HostLink.Event] = []

    /// A pen that has just been opened, with its inputs as they read at `now`: a pressed
    /// e-stop or a closed switch latches at once (rules 3 and 6 hold in `boot` too).
    public init(serial: String, hasStatusLED: Bool, tachometerSpacing: Duration,
                pedal: Bool, estop: Bool, overDepth: Bool, at now: MonotonicInstant) {
        board = GPIOBoard(tachometer: Tachometer(minimumSpacing: tachometerSpacing), pedal: pedal, estop: estop, overDepth: overDepth)
        origin = now
        self.now = now
        // A stale import of the core's header (an incremental build after the header changed)
        // would let the C core write past this value's storage: refuse to run instead.
        precondition(stp_layout_matches(MemoryLayout<stp_pen>.size, MemoryLayout<stp_hal>.size, MemoryLayout<stp_config>.size) != 0,
                     "the firmware core's structs differ from this build's import of stipple_pen.h: clean the build (rm -rf .build)")
        var config = stp_config()
        let name = FixedText<16>(serial) != nil ? serial : "INVALID-SERIAL"
        withUnsafeMutableBytes(of: &config.serial) { raw in
            for (i, byte) in name.utf8.prefix(16).enumerated() { raw[i] = byte }
        }
        config.fw_version = (Self.version.major, Self.version.minor, Self.version.patch)
        config.proto_major = ProtocolVersion.major
        config.proto_minor = ProtocolVersion.minor
        var capabilities: Capabilities = [.pedal, .estopInput]
        if hasStatusLED { capabilities.insert(.identifyLed) }
        config.capabilities = capabilities.rawValue
        config.depth_ceiling_um = FirmwareAbsoluteLimits.depthCeilingUm
        config.over_current_ma = .max
        config.over_temperature_dc = .max
        let time = penTime
        withCore { pen, hal in withUnsafePointer(to: config) { stp_boot(pen, $0, hal, time, UInt8(STW_RESET_CAUSE_POWER_ON)) } }
        drain()
        // The daemon has just opened the lines: the pen's FAULT reset says nothing it does not
        // know. What the inputs latched (an e-stop, the switch) is passed on.
        events.removeAll { if case .fault(let fault) = $0 { fault.code == .reset } else { false } }
    }

    // MARK: - Outputs

    /// Rule 2: the motor line's value, as the core last drove it.
    public var motorEnable: Bool { board.motorLine }

    /// The status LED: lit while armed (the needle may move with the pedal).
    public var statusLED: Bool { core.armed != 0 }

    public var state: PenState { withUnsafePointer(to: core) { PenState(rawValue: stp_state($0)) } }
    public var armed: Bool { core.armed != 0 }
    public var fault: FaultCode { FaultCode(rawValue: core.fault) }
    public var estopLatched: Bool { core.estop_latched != 0 }
    public var limitsCRC: UInt32 { core.limits_crc }
    /// The debounced inputs.
    public var pedal: Bool { board.pedal }
    public var estop: Bool { board.estop }
    public var overDepth: Bool { board.overDepth }
    public var tachometer: Tachometer { board.tachometer }

    /// How long until the core's next timed decision (the deadman, a periodic report, the end
    /// of the stall grace): the reader waits no longer than this for edges.
    public func timeToDeadline(at time: MonotonicInstant) -> Duration {
        var core = core
        let at = UInt32(truncatingIfNeeded: (max(now, time) - origin).totalNanoseconds / 1000)
        let left = stp_time_to_deadline(&core, at)
        return left == UInt32.max ? .seconds(1) : .microseconds(Int64(left))
    }

    /// Whether the pen has messages the supervisor has not taken yet.
    public var hasEvents: Bool { !events.isEmpty }

    /// The pen's messages since the last call, oldest first.
    public mutating func takeEvents() -> [HostLink.Event] {
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    // MARK: - Inputs

    /// A debounced edge, in kernel-time order.
    public mutating func input(_ edge: GPIOEdge) {
        advance(to: edge.time)
        let time = penTime
        switch edge.line {
        case .tachometer:
            guard edge.active, board.tachometer.pulse(at: edge.time) else { return }
            withCore { pen, hal in stp_stroke(pen, hal, time, UInt16(STP_NOT_MEASURED_U16)) }
            drain()
        case .pedal, .estop, .overDepth:
            switch edge.line {
            case .pedal: board.pedal = edge.active
            case .estop: board.estop = edge.active
            default: board.overDepth = edge.active
            }
            // A change is told at once, not at the next stroke or idle period: the safety core
            // judges arming and clearing from these flags.
            withCore { pen, hal in
                stp_inputs_changed(pen, hal, time)
                stp_send_telemetry(pen, hal, time)
            }
            drain()
        case .motorEnable, .statusLED:
            break  // outputs: never reported as edges
        }
    }

    /// Time passes (the reader wakes at least every few milliseconds): the deadman, the stall
    /// check, and TELEMETRY/STATUS at their idle periods.
    public mutating func tick(at time: MonotonicInstant) {
        advance(to: time)
        let now = penTime
        withCore { pen, hal in stp_tick(pen, hal, now) }
        drain()
    }

    /// The supervisor is alive (it polled its link): a host frame for the deadman.
    public mutating func hostAlive(at time: MonotonicInstant) {
        advance(to: time)
        deliver(.heartbeat(.init()), passAck: false)
    }

    // MARK: - Commands

    /// A command from the supervisor, carried out at once and acknowledged; data replies
    /// (HELLO_REPLY, LIMITS, STATUS) follow the ACK, as a serial pen sends them.
    public mutating func command(_ message: Message, at time: MonotonicInstant) {
        advance(to: time)
        deliver(message, passAck: true)
    }

    private mutating func deliver(_ message: Message, passAck: Bool) {
        hostSeq &+= 1
        let wire = FrameEncoder.encode(Frame(seq: hostSeq, message: message))
        let time = penTime
        withCore { pen, hal in wire.withUnsafeBufferPointer { stp_receive(pen, hal, time, $0.baseAddress, $0.count) } }
        drain(command: passAck ? (hostSeq, message) : nil)
    }

    // MARK: - Internals

    private var penTime: UInt32 { UInt32(truncatingIfNeeded: (now - origin).totalNanoseconds / 1000) }

    private mutating func advance(to time: MonotonicInstant) {
        now = max(now, time)
        board.now = now
    }

    /// Runs `body` with the core and a HAL whose context is this pen's board.
    private mutating func withCore(_ body: (UnsafeMutablePointer<stp_pen>, UnsafePointer<stp_hal>) -> Void) {
        withUnsafeMutablePointer(to: &board) { board in
            var hal = GPIOBoard.hal
            hal.ctx = UnsafeMutableRawPointer(board)
            withUnsafeMutablePointer(to: &core) { pen in withUnsafePointer(to: hal) { body(pen, $0) } }
        }
    }

    /// The core's frames as events. The ACK of `command` becomes `.acknowledged`; no other ACK
    /// is possible (commands are carried out at once), and the internal heartbeat's is dropped.
    private mutating func drain(command: (seq: UInt8, message: Message)? = nil) {
        guard !board.output.isEmpty else { return }
        let bytes = board.output
        board.output.removeAll(keepingCapacity: true)
        for output in decoder.push(contentsOf: bytes) {
            guard case .frame(let frame) = output else { continue }  // the core's own frames: never rejected
            switch frame.message {
            case .ack(let ack):
                if let command, ack.ackedSeq == command.seq, ack.ackedID == command.message.id.rawValue {
                    events.append(.acknowledged(command.message, status: ack.status, detail: ack.detail))
                }
            case .helloReply(let reply): events.append(.helloReply(reply))
            case .limits(let limits): events.append(.limits(limits))
            case .status(let status): events.append(.status(status))
            case .telemetry(let telemetry): events.append(.telemetry(telemetry))
            case .cartridge(let cartridge): events.append(.cartridge(cartridge))
            case .fault(let fault): events.append(.fault(fault))
            default: break
            }
        }
    }
}

/// The GPIO pen's board under the core: what its HAL reads and drives.
struct GPIOBoard: Sendable {
    var now = MonotonicInstant.zero
    var tachometer: Tachometer
    var pedal: Bool
    var estop: Bool
    var overDepth: Bool
    /// The motor-enable line as the core last drove it (`GPIOPen` writes it to the line).
    var motorLine = false
    var output: [UInt8] = []

    /// The HAL's table; `ctx` is set per call (`GPIOPenFirmware.withCore`).
    static var hal: stp_hal {
        var hal = stp_hal()
        hal.motor_enable = { ctx, on in
            let board = gpioBoard(ctx)
            // A start begins a new rate measurement: the first interval must not span the pause.
            if on != 0 && !board.pointee.motorLine { board.pointee.tachometer.restart() }
            board.pointee.motorLine = on != 0
        }
        hal.drive_set = { _, _, _ in }  // depth and speed are the pen's mechanical dials
        hal.tach_rate_dhz = { ctx in
            let board = gpioBoard(ctx).pointee
            let dhz = (board.tachometer.rateHz(at: board.now) * 10).rounded()
            return dhz.isFinite ? UInt16(min(dhz, 65_535)) : 65_535
        }
        hal.current_ma = { _ in UInt16(STP_NOT_MEASURED_U16) }
        hal.temperature_dc = { _ in Int16(STP_NOT_MEASURED_I16) }
        hal.read_inputs = { ctx in
            let board = gpioBoard(ctx).pointee
            var bits = UInt8(STP_IN_CARTRIDGE)  // no sensor: see the type's comment
            if board.pedal { bits |= UInt8(STP_IN_PEDAL) }
            if board.estop { bits |= UInt8(STP_IN_ESTOP) }
            if board.overDepth { bits |= UInt8(STP_IN_OVER_DEPTH) }
            return bits
        }
        hal.cartridge_read = { _, _ in 0 }  // no reader
        hal.uart_write = { ctx, bytes, count in
            guard let bytes else { return }
            gpioBoard(ctx).pointee.output.append(contentsOf: UnsafeBufferPointer(start: bytes, count: count))
        }
        return hal
    }
}

/// The board a HAL call's context points to (set by `GPIOPenFirmware.withCore`, valid for that call).
private func gpioBoard(_ ctx: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<GPIOBoard> {
    ctx!.assumingMemoryBound(to: GPIOBoard.self)
}
