import StipplePenFirmware
import StippleWireC
import StippleWire

/// A simulated serial SMP pen: the physics of motor, needle and heat in Swift, and the pen's
/// firmware — every decision of PROTOCOL.md (handshake, sequencing, duplicate suppression, limits
/// with checksum, the safety rules of section 7) — in the portable C core that pen
/// microcontrollers run (`Firmware-protocol/firmware`), reached through its HAL as a board would.
///
/// Sans-I/O and deterministic: bytes go in with `receive`, time moves only with `advance`,
/// bytes come out of `takeOutput`, and the same seed and inputs give the same bytes.
public struct PenSimulator: Sendable {
    public let config: PenConfig
    /// The pen's clock: zero at power-up (of the simulator; a reset does not restart it).
    public private(set) var now = MonotonicInstant.zero

    /// The motor, needle and heat.
    public var mechanics: PenMechanics { world.mechanics }

    // The world around the pen.
    public var pedalPressed: Bool { world.pedal }
    public var estopButton: Bool { world.estopButton }
    public var cartridge: SimCartridge? { world.cartridge }

    /// The firmware core: a plain C value, so copying the simulator copies the pen.
    private var core = stp_pen()
    private var coreConfig = stp_config()
    /// The board: mechanics, lines, sensors and the UART, as the core's HAL sees them.
    private var world: PenWorld
    /// Commands applied before the last reset (the core's own count restarts at boot).
    private var appliedBeforeBoot = 0

    // Injected firmware-side faults (mechanical ones live in `mechanics`).
    private var sensorStuck: Int??
    private var sensorDropout = false
    private var hungSince: MonotonicInstant?
    /// The hostile test double (`PenFault.ignoresStops`): a scripted pen in front of the core,
    /// never part of it. It answers MOTOR_STOP and DISARM itself and keeps them from the core.
    private var ignoresStops = false
    private var interceptor = FrameDecoder()

    /// Faults the firmware latched, with the stroke count at that moment, for tests and reports.
    public var faultHistory: [(time: MonotonicInstant, code: FaultCode, strokes: UInt32)] { world.faultHistory }
    /// Number of frames the pen sent.
    public var framesSent: Int { world.framesSent }
    /// Commands applied (not counting duplicates), for duplicate-suppression checks.
    public var commandsApplied: Int { appliedBeforeBoot + Int(core.commands_applied) }

    public init(config: PenConfig = PenConfig(), seed: UInt64 = 1) {
        self.config = config
        var rng = SimRandom(seed: seed)
        var parameters = PenMechanics.Parameters()
        parameters.motorTimeConstant = config.motorTimeConstant
        parameters.depthNoiseUm = config.depthNoiseUm
        parameters.depthDriftUm = config.depthDriftUm
        parameters.ambientDc = config.ambientDc
        parameters.thermalTimeConstant = config.thermalTimeConstant
        world = PenWorld(mechanics: PenMechanics(parameters: parameters, rng: rng.split()), cartridge: config.cartridge,
                         hasCartridgeReader: config.hasCartridgeReader)
        coreConfig = Self.coreConfig(config)
        // A stale import of the core's header (an incremental build after the header changed)
        // would let the C core write past this value's storage: refuse to run instead.
        precondition(stp_layout_matches(MemoryLayout<stp_pen>.size, MemoryLayout<stp_hal>.size, MemoryLayout<stp_config>.size) != 0,
                     "the firmware core's structs differ from this build's import of stipple_pen.h: clean the build (rm -rf .build)")
        boot(cause: .powerOn)
    }

    private static func coreConfig(_ config: PenConfig) -> stp_config {
        var c = stp_config()
        let serial = FixedText<16>(config.serial) != nil ? config.serial : "INVALID-SERIAL"
        withUnsafeMutableBytes(of: &c.serial) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            for (i, byte) in serial.utf8.prefix(16).enumerated() { raw[i] = byte }
        }
        let fw = config.firmware + [0, 0, 0]
        c.fw_version = (UInt8(clamping: fw[0]), UInt8(clamping: fw[1]), UInt8(clamping: fw[2]))
        c.proto_major = UInt8(clamping: config.protocolMajor)
        c.proto_minor = UInt8(clamping: config.protocolMinor)
        c.capabilities = config.capabilities.rawValue
        c.depth_ceiling_um = UInt16(clamping: config.depthCeilingUm)
        c.over_current_ma = UInt16(clamping: config.overCurrentMa)
        c.over_temperature_dc = Int16(clamping: config.overTemperatureDc)
        return c
    }

    // MARK: - Observation

    /// The state the firmware is in (PROTOCOL.md section 7).
    public var penState: PenState {
        var core = core
        return PenState(rawValue: stp_state(&core))
    }

    /// Whether the motor is driven: the motor-enable line as the firmware last wrote it (a hung
    /// firmware leaves it as it was).
    public var motorDriven: Bool { world.motorLine }

    public var isHung: Bool { hungSince != nil }
    public var latchedFault: FaultCode { FaultCode(rawValue: core.fault) }
    public var armed: Bool { core.armed != 0 }
    public var limitsCRC: UInt32 { core.limits_crc }
    public var depthSetpointUm: Int { Int(core.depth_setpoint_um) }
    public var rateSetpointDhz: Int { Int(core.rate_setpoint_dhz) }
    public var temperature: Double { world.mechanics.temperatureDc }
    public var strokeCount: UInt32 { world.mechanics.strokeCount }
    public var rateHz: Double { world.mechanics.rateHz }
    /// The true peak protrusion of the last stroke (what the needle did, whatever the sensor says).
    public var lastTrueProtrusionUm: Int? { world.mechanics.lastProtrusionUm }
    public var identifying: Bool { world.identifyLED }

    // MARK: - The world

    public mutating func setPedal(_ pressed: Bool) {
        world.pedal = pressed
        inputsChanged()
    }

    public mutating func setEstopButton(_ pressed: Bool) {
        world.estopButton = pressed
        inputsChanged()
    }

    public mutating func insertCartridge(_ cartridge: SimCartridge) {
        world.cartridge = cartridge
        inputsChanged()
    }

    public mutating func removeCartridge() {
        guard world.cartridge != nil else { return }
        world.cartridge = nil
        inputsChanged()
    }

    /// Power off and on again.
    public mutating func powerCycle() { boot(cause: .powerOn) }

    public mutating func inject(_ fault: PenFault) {
        if world.mechanics.apply(fault) { return }
        switch fault {
        case .depthSensorStuck(let value):
            sensorStuck = .some(value ?? (core.has_last_reading != 0 ? Int(core.last_reading_um) : nil))
        case .depthSensorDropout: sensorDropout = true
        case .cartridgeRemoved: removeCartridge()
        case .estopPressed: setEstopButton(true)
        case .firmwareHang:
            if hungSince == nil { hungSince = now }
        case .firmwareReset(let cause): boot(cause: cause)
        case .versionMismatch(let major):
            coreConfig.proto_major = UInt8(clamping: major)
            core.config.proto_major = UInt8(clamping: major)
        case .insertCartridge(let cartridge): insertCartridge(cartridge)
        case .ignoresStops: ignoresStops = true
        default: break  // mechanical faults were applied above
        }
    }

    // MARK: - Bytes

    /// Bytes from the host, arriving now.
    public mutating func receive(_ bytes: some Sequence<UInt8>) {
        guard hungSince == nil else { return }
        if ignoresStops {
            receiveThroughDouble(bytes)
            return
        }
        let time = penTime
        let handled: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            withCore { pen, hal in stp_receive(pen, hal, time, buffer.baseAddress, buffer.count) }
        }
        if handled == nil {
            let array = Array(bytes)
            withCore { pen, hal in array.withUnsafeBufferPointer { stp_receive(pen, hal, time, $0.baseAddress, $0.count) } }
        }
    }

    /// The hostile double: MOTOR_STOP and DISARM are acknowledged `ok` and never reach the core,
    /// so the motor keeps stroking; every other frame is handed on. (Frames the double's decoder
    /// rejects are dropped, so this pen never answers them.)
    private mutating func receiveThroughDouble(_ bytes: some Sequence<UInt8>) {
        for output in interceptor.push(contentsOf: bytes) {
            guard case .frame(let frame) = output else { continue }
            let time = penTime
            switch frame.message {
            case .disarm, .motorStop:
                var ack = stw_message()
                ack.id = UInt8(STW_MSG_ACK)
                ack.u.ack = stw_ack(acked_seq: frame.seq, acked_id: frame.message.id.rawValue, status: UInt8(STW_ACK_STATUS_OK), detail: 0)
                withCore { pen, hal in stp_send(pen, hal, &ack) }
            default:
                let wire = FrameEncoder.encode(frame)
                withCore { pen, hal in wire.withUnsafeBufferPointer { stp_receive(pen, hal, time, $0.baseAddress, $0.count) } }
            }
        }
    }

    /// Bytes the pen has sent since the last call.
    public mutating func takeOutput() -> [UInt8] {
        defer { world.output.removeAll(keepingCapacity: true) }
        return world.output
    }

    // MARK: - Time

    /// Runs the pen up to `target`.
    public mutating func advance(to target: MonotonicInstant) {
        while now < target {
            let end = stepEnd(limit: target)
            let stroked = world.mechanics.integrate(end - now, driven: world.motorLine, commandedHz: world.commandedHz)
            now = end
            if stroked { stroke() }
            timers()
        }
    }

    /// The simulation's quantum: strokes and timers fall on whole microseconds.
    private static var quantum: Duration { .microseconds(1) }

    /// Steps end at the next stroke, the firmware's next deadline (the deadman, idle
    /// TELEMETRY), or 10 ms, whichever is first; while the motor ramps, every 2 ms.
    private mutating func stepEnd(limit: MonotonicInstant) -> MonotonicInstant {
        var end = now + .milliseconds(10)
        if let toStroke = world.mechanics.timeToStroke { end = min(end, now + toStroke) }
        let target = world.mechanics.target(commandedHz: world.commandedHz, driven: world.motorLine)
        if abs(target - world.mechanics.rateHz) > 0.5 { end = min(end, now + .milliseconds(2)) }
        if hungSince == nil {
            let time = penTime
            let left = withUnsafeMutablePointer(to: &core) { stp_time_to_deadline($0, time) }
            if left != UInt32.max { end = min(end, now + .microseconds(Int64(left))) }
        }
        return max(now + Self.quantum, min(end, limit))
    }

    private mutating func stroke() {
        let trueUm = world.mechanics.completeStroke(depthUm: Double(world.driveDepthUm))
        guard hungSince == nil else { return }
        var reading: Int? = config.hasDepthSensor ? trueUm : nil
        if sensorDropout { reading = nil }
        if let stuck = sensorStuck { reading = stuck ?? reading }
        let peak = reading.map { UInt16(clamping: min(max($0, 0), 65_534)) } ?? UInt16(STP_NOT_MEASURED_U16)
        let time = penTime
        withCore { pen, hal in stp_stroke(pen, hal, time, peak) }
    }

    private mutating func timers() {
        if let hung = hungSince {
            if config.watchdog > .zero, now >= hung + config.watchdog { boot(cause: .watchdog) }
            return
        }
        let time = penTime
        withCore { pen, hal in stp_tick(pen, hal, time) }
    }

    // MARK: - The firmware

    private mutating func boot(cause: ResetCause) {
        appliedBeforeBoot += Int(core.commands_applied)
        hungSince = nil
        interceptor.reset()
        let time = penTime
        let config = coreConfig
        withCore { pen, hal in withUnsafePointer(to: config) { stp_boot(pen, $0, hal, time, cause.rawValue) } }
    }

    private mutating func inputsChanged() {
        guard hungSince == nil else { return }
        let time = penTime
        withCore { pen, hal in stp_inputs_changed(pen, hal, time) }
    }

    /// `pen_time_us` on the wire: the pen's microsecond counter, a u32 that wraps every 71.6
    /// minutes, taken from the instant here and nowhere else.
    private var penTime: UInt32 { UInt32(truncatingIfNeeded: now.nanoseconds / 1_000) }

    /// Runs `body` with the core and a HAL whose context is this pen's world.
    private mutating func withCore<R>(_ body: (UnsafeMutablePointer<stp_pen>, UnsafePointer<stp_hal>) -> R) -> R {
        world.now = now
        return withUnsafeMutablePointer(to: &world) { world in
            var hal = PenWorld.hal
            hal.ctx = UnsafeMutableRawPointer(world)
            return withUnsafeMutablePointer(to: &core) { pen in withUnsafePointer(to: hal) { body(pen, $0) } }
        }
    }
}

/// The world a HAL call's context points to (set by `PenSimulator.withCore`, valid for that call).
private func penWorld(_ ctx: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<PenWorld> {
    ctx!.assumingMemoryBound(to: PenWorld.self)
}

/// The board under the simulated firmware: what its HAL reads and drives.
struct PenWorld: Sendable {
    var now = MonotonicInstant.zero
    var mechanics: PenMechanics
    var pedal = false
    var estopButton = false
    var cartridge: SimCartridge? {
        didSet { chip = cartridge.map(Self.chip) }
    }
    /// What the cartridge's chip says, read once per insertion: the firmware reads the slot on
    /// every tick.
    private(set) var chip: stw_cartridge?
    let hasCartridgeReader: Bool
    /// The outputs, as the firmware last drove them.
    var motorLine = false
    var driveDepthUm: UInt16 = 0
    var driveRateDhz: UInt16 = 0
    var identifyLED = false
    var output: [UInt8] = []
    var framesSent = 0
    var faultHistory: [(time: MonotonicInstant, code: FaultCode, strokes: UInt32)] = []

    init(mechanics: PenMechanics, cartridge: SimCartridge?, hasCartridgeReader: Bool) {
        self.mechanics = mechanics
        self.cartridge = cartridge
        self.chip = cartridge.map(Self.chip)
        self.hasCartridgeReader = hasCartridgeReader
    }

    var commandedHz: Double { Double(driveRateDhz) / 10 }

    /// The HAL's table; `ctx` is set per call (`PenSimulator.withCore`).
    static var hal: stp_hal {
        var hal = stp_hal()
        hal.motor_enable = { ctx, on in
            penWorld(ctx).pointee.motorLine = on != 0
            // The motor stops within the stroke: the needle retracts at once.
            if on == 0 { penWorld(ctx).pointee.mechanics.brake() }
        }
        hal.drive_set = { ctx, depth, rate in
            penWorld(ctx).pointee.driveDepthUm = depth
            penWorld(ctx).pointee.driveRateDhz = rate
        }
        hal.tach_rate_dhz = { ctx in
            UInt16(clamping: Int(saturating: (penWorld(ctx).pointee.mechanics.rateHz * 10).rounded()))
        }
        hal.current_ma = { ctx in
            UInt16(clamping: min(65_534, Int(saturating: penWorld(ctx).pointee.mechanics.measuredCurrentMa())))
        }
        hal.temperature_dc = { ctx in
            Int16(clamping: max(-32_767, Int(saturating: penWorld(ctx).pointee.mechanics.temperatureDc.rounded())))
        }
        hal.read_inputs = { ctx in
            let w = penWorld(ctx)
            var bits: UInt8 = 0
            if w.pointee.pedal { bits |= UInt8(STP_IN_PEDAL) }
            if w.pointee.estopButton { bits |= UInt8(STP_IN_ESTOP) }
            if w.pointee.chip != nil { bits |= UInt8(STP_IN_CARTRIDGE) }
            return bits
        }
        hal.cartridge_read = { ctx, out in
            let w = penWorld(ctx)
            guard w.pointee.hasCartridgeReader, let chip = w.pointee.chip, let out else { return 0 }
            out.pointee = chip
            return 1
        }
        hal.uart_write = { ctx, bytes, count in
            guard let bytes else { return }
            penWorld(ctx).pointee.output.append(contentsOf: UnsafeBufferPointer(start: bytes, count: count))
            penWorld(ctx).pointee.framesSent += 1
        }
        hal.identify_led = { ctx, on in penWorld(ctx).pointee.identifyLED = on != 0 }
        hal.fault_latched = { ctx, code in
            let w = penWorld(ctx)
            w.pointee.faultHistory.append((w.pointee.now, FaultCode(rawValue: code), w.pointee.mechanics.strokeCount))
        }
        return hal
    }


    /// What the cartridge's chip says, in the protocol's ranges.
    static func chip(_ cartridge: SimCartridge) -> stw_cartridge {
        var chip = stw_cartridge()
        chip.needle_count = UInt8(clamping: min(64, max(0, cartridge.needleCount)))
        chip.needle_diameter_um = UInt16(clamping: min(1000, max(0, cartridge.needleDiameterUm)))
        chip.expiry_days = UInt16(clamping: cartridge.expiryDays)
        let id = FixedText<16>(String(cartridge.id.prefix(16))).map { _ in String(cartridge.id.prefix(16)) } ?? ""
        let lot = FixedText<12>(String(cartridge.lot.prefix(12))).map { _ in String(cartridge.lot.prefix(12)) } ?? ""
        withUnsafeMutableBytes(of: &chip.cartridge_id) { raw in for (i, b) in id.utf8.enumerated() { raw[i] = b } }
        withUnsafeMutableBytes(of: &chip.lot) { raw in for (i, b) in lot.utf8.enumerated() { raw[i] = b } }
        return chip
    }
}

// A model fed a hostile number (a scenario's, or one injected through `/v1/sim`) must never trap
// the process that runs it — the daemon, with `--pen sim`: out-of-range values saturate.
extension Int {
    /// `value` rounded toward zero and held to `Int`'s range; NaN is 0.
    init(saturating value: Double) {
        if value.isNaN { self = 0 } else if value >= 9.2e18 { self = .max } else if value <= -9.2e18 { self = .min } else { self = Int(value) }
    }
}

extension Int32 {
    /// `value` rounded toward zero and held to `Int32`'s range; NaN is 0.
    init(saturating value: Double) { self.init(clamping: Int(saturating: value)) }
}
