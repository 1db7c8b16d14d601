import StippleWire

/// A simulated serial SMP pen: the physics of motor, needle and heat, and the whole firmware
/// side of PROTOCOL.md — handshake, sequencing, duplicate suppression, limits with checksum,
/// and the pen-side safety rules of section 7.
///
/// Sans-I/O and deterministic: bytes go in with `receive`, time moves only with `advance`,
/// bytes come out of `takeOutput`, and the same seed and inputs give the same bytes.
public struct PenSimulator: Sendable {
    public let config: PenConfig
    /// The pen's clock: zero at power-up (of the simulator; a reset does not restart it).
    public private(set) var now = MonotonicInstant.zero

    /// The motor, needle and heat.
    public private(set) var mechanics: PenMechanics

    // The world around the pen.
    public private(set) var pedalPressed = false
    public private(set) var estopButton = false
    public private(set) var cartridge: SimCartridge?

    // Injected firmware-side faults (mechanical ones live in `mechanics`).
    private var sensorStuck: Int??
    private var sensorDropout = false
    private var hungSince: MonotonicInstant?
    private var frozenDrive = false
    private var protocolMajor: Int

    // Firmware.
    private var fw = Firmware()
    private var decoder = FrameDecoder()
    private var output: [UInt8] = []

    /// Faults the firmware latched, with the stroke count at that moment, for tests and reports.
    public private(set) var faultHistory: [(time: MonotonicInstant, code: FaultCode, strokes: UInt32)] = []
    /// Number of frames the pen sent.
    public private(set) var framesSent = 0
    /// Commands applied (not counting duplicates), for duplicate-suppression checks.
    public private(set) var commandsApplied = 0

    struct Firmware: Sendable {
        var handshakeDone = false
        var limits: Message.SetLimits?
        var limitsCRC: UInt32 = 0
        var deadman = ProtocolTiming.deadmanDefault
        var depthSetpointUm: UInt16 = 0
        var rateSetpointDhz: UInt16 = 0
        var armed = false
        var runEnabled = false
        var fault = FaultCode.none
        var estopLatched = false
        /// The hostile test double's flag (`PenFault.ignoresStops`).
        var ignoresStops = false
        var lastHostFrame = MonotonicInstant.zero
        var lastCommand: (seq: UInt8, id: UInt8, status: AckStatus, detail: UInt8)?
        var txSeq: UInt8 = 0
        var lastTelemetry = MonotonicInstant.zero
        var lastStatus = MonotonicInstant.zero
        var motorOnSince: MonotonicInstant?
        var identifyUntil = MonotonicInstant.zero
        var missingReadings = 0
        var sameReadings = 0
        var lastReading: Int?
        var reportedState = PenState.boot
        var peakSinceFrame: Int?
    }

    public init(config: PenConfig = PenConfig(), seed: UInt64 = 1) {
        self.config = config
        var rng = SimRandom(seed: seed)
        var parameters = PenMechanics.Parameters()
        parameters.motorTimeConstant = config.motorTimeConstant
        parameters.depthNoiseUm = config.depthNoiseUm
        parameters.depthDriftUm = config.depthDriftUm
        parameters.ambientDc = config.ambientDc
        parameters.thermalTimeConstant = config.thermalTimeConstant
        mechanics = PenMechanics(parameters: parameters, rng: rng.split())
        cartridge = config.cartridge
        protocolMajor = config.protocolMajor
        boot(cause: .powerOn)
    }

    // MARK: - Observation

    /// The state the firmware is in (PROTOCOL.md section 7).
    public var penState: PenState {
        if fw.fault != .none { return .faulted }
        if !fw.handshakeDone { return .boot }
        if motorDriven { return .running }
        return fw.armed ? .armed : .idle
    }

    /// Whether the firmware drives the motor (rule 2: armed, run enabled, pedal, no fault, no e-stop).
    public var motorDriven: Bool {
        if hungSince != nil { return frozenDrive }
        return fw.armed && fw.runEnabled && pedalPressed && fw.fault == .none && !estopButton && !fw.estopLatched
    }

    public var isHung: Bool { hungSince != nil }
    public var latchedFault: FaultCode { fw.fault }
    public var armed: Bool { fw.armed }
    public var limitsCRC: UInt32 { fw.limitsCRC }
    public var depthSetpointUm: Int { Int(fw.depthSetpointUm) }
    public var rateSetpointDhz: Int { Int(fw.rateSetpointDhz) }
    public var temperature: Double { mechanics.temperatureDc }
    public var strokeCount: UInt32 { mechanics.strokeCount }
    public var rateHz: Double { mechanics.rateHz }
    /// The true peak protrusion of the last stroke (what the needle did, whatever the sensor says).
    public var lastTrueProtrusionUm: Int? { mechanics.lastProtrusionUm }
    public var identifying: Bool { now < fw.identifyUntil }

    private var flags: PenFlags {
        var flags: PenFlags = []
        if fw.handshakeDone { flags.insert(.handshakeDone) }
        if fw.limits != nil { flags.insert(.limitsSet) }
        if fw.armed { flags.insert(.armed) }
        if fw.runEnabled { flags.insert(.runEnabled) }
        if motorDriven { flags.insert(.motorOn) }
        if pedalPressed { flags.insert(.pedalPressed) }
        if estopButton { flags.insert(.estopPressed) }
        if fw.estopLatched { flags.insert(.estopLatched) }
        if cartridge != nil { flags.insert(.cartridgePresent) }
        if fw.fault != .none { flags.insert(.faultLatched) }
        return flags
    }

    // MARK: - The world

    public mutating func setPedal(_ pressed: Bool) {
        pedalPressed = pressed
        afterInput()
    }

    public mutating func setEstopButton(_ pressed: Bool) {
        estopButton = pressed
        if pressed && hungSince == nil { latch(.estop, detail: 1, value: 0) }
        afterInput()
    }

    public mutating func insertCartridge(_ cartridge: SimCartridge) {
        self.cartridge = cartridge
        if config.hasCartridgeReader && hungSince == nil { send(.cartridge(cartridgeMessage(.inserted, cartridge))) }
        afterInput()
    }

    public mutating func removeCartridge() {
        guard let removed = cartridge else { return }
        cartridge = nil
        guard hungSince == nil else { return }
        if config.hasCartridgeReader { send(.cartridge(cartridgeMessage(.removed, removed))) }
        if fw.armed { latch(.cartridgeRemoved, detail: 0, value: 0) }
        afterInput()
    }

    /// Power off and on again.
    public mutating func powerCycle() { boot(cause: .powerOn) }

    public mutating func inject(_ fault: PenFault) {
        if mechanics.apply(fault) { return }
        switch fault {
        case .depthSensorStuck(let value): sensorStuck = .some(value ?? fw.lastReading)
        case .depthSensorDropout: sensorDropout = true
        case .cartridgeRemoved: removeCartridge()
        case .estopPressed: setEstopButton(true)
        case .firmwareHang:
            if hungSince == nil {
                frozenDrive = motorDriven
                hungSince = now
            }
        case .firmwareReset(let cause): boot(cause: cause)
        case .versionMismatch(let major): protocolMajor = major
        case .insertCartridge(let cartridge): insertCartridge(cartridge)
        case .ignoresStops: fw.ignoresStops = true
        default: break  // mechanical faults were applied above
        }
    }

    // MARK: - Bytes

    /// Bytes from the host, arriving now.
    public mutating func receive(_ bytes: some Sequence<UInt8>) {
        guard hungSince == nil else { return }
        for byte in bytes {
            guard let out = decoder.push(byte) else { continue }
            switch out {
            case .frame(let frame):
                handle(frame)
            case .rejected(let rejection):
                // The CRC was good: answer so the host learns at once (PROTOCOL.md section 2).
                if let id = rejection.messageID, let seq = rejection.seq, id.isHostCommand {
                    let status: AckStatus = switch rejection.reason {
                    case .unknownID: .unknownMessage
                    case .badLength: .badLength
                    default: .badField
                    }
                    let detail = rejection.expectedLength.map(UInt8.init(clamping:)) ?? fieldIndex(id, rejection.field)
                    ack(seq: seq, id: id.rawValue, status, detail)
                }
            }
        }
        afterInput()
    }

    /// Bytes the pen has sent since the last call.
    public mutating func takeOutput() -> [UInt8] {
        defer { output.removeAll(keepingCapacity: true) }
        return output
    }

    // MARK: - Time

    /// Runs the pen up to `target`.
    public mutating func advance(to target: MonotonicInstant) {
        while now < target {
            let end = stepEnd(limit: target)
            let stroked = mechanics.integrate(end - now, driven: motorDriven, commandedHz: Double(fw.rateSetpointDhz) / 10)
            now = end
            if stroked { stroke() }
            timers()
        }
    }

    /// The simulation's quantum: strokes and timers fall on whole microseconds.
    private static var quantum: Duration { .microseconds(1) }

    /// Steps end at the next stroke, the next timer, or 10 ms, whichever is first; while the
    /// motor ramps, every 2 ms. Deadlines are compared as instants: that is one 64-bit
    /// comparison each, on a path taken several times per simulated stroke.
    private func stepEnd(limit: MonotonicInstant) -> MonotonicInstant {
        var end = now + .milliseconds(10)
        if let toStroke = mechanics.timeToStroke { end = min(end, now + toStroke) }
        let target = mechanics.target(commandedHz: Double(fw.rateSetpointDhz) / 10, driven: motorDriven)
        if abs(target - mechanics.rateHz) > 0.5 { end = min(end, now + .milliseconds(2)) }
        if hungSince == nil {
            let deadline = fw.lastHostFrame + fw.deadman + Self.quantum
            if fw.armed && deadline > now { end = min(end, deadline) }
            let telemetryDue = fw.lastTelemetry + ProtocolTiming.telemetryIdlePeriod
            if telemetryDue > now { end = min(end, telemetryDue) }
        }
        return max(now + Self.quantum, min(end, limit))
    }

    private mutating func stroke() {
        let trueUm = mechanics.completeStroke(depthUm: Double(fw.depthSetpointUm))
        guard hungSince == nil else { return }

        var reading: Int? = config.hasDepthSensor ? trueUm : nil
        if sensorDropout { reading = nil }
        if let stuck = sensorStuck { reading = stuck ?? reading }
        if config.hasDepthSensor {
            if reading == nil { fw.missingReadings += 1 } else { fw.missingReadings = 0 }
            if let reading, reading == fw.lastReading { fw.sameReadings += 1 } else { fw.sameReadings = 0 }
            if reading != nil { fw.lastReading = reading }
        }
        fw.peakSinceFrame = reading

        sendTelemetry()
        // Rule 3: the stroke over the trip is the last one.
        if let reading, let limits = fw.limits, reading > Int(limits.depthTripUm) {
            latch(.overDepth, detail: 0, value: Int32(clamping: reading))
            return
        }
        if fw.missingReadings >= 10 || fw.sameReadings >= 50 {
            latch(.depthSensor, detail: fw.missingReadings >= 10 ? 1 : 2, value: Int32(clamping: fw.lastReading ?? -1))
            return
        }
        checkRate()
        if mechanics.currentMa > Double(config.overCurrentMa) {
            latch(.overCurrent, detail: 0, value: Int32(saturating: mechanics.currentMa))
        }
    }

    /// Rule 4: a runaway trips at once, always (during spin-up too); only the stall check waits
    /// out the spin-up grace.
    private mutating func checkRate() {
        guard motorDriven, let limits = fw.limits else { return }
        let dhz = Int(saturating: (mechanics.rateHz * 10).rounded())
        if dhz > Int(limits.rateRunawayDhz) {
            latch(.rateRunaway, detail: 0, value: Int32(clamping: dhz))
            return
        }
        guard let since = fw.motorOnSince, now >= since + ProtocolTiming.stallGrace else { return }
        if dhz < Int(limits.rateStallDhz) {
            latch(.stall, detail: 0, value: Int32(clamping: dhz))
        }
    }

    private mutating func timers() {
        if let hung = hungSince {
            if config.watchdog > .zero, now >= hung + config.watchdog { boot(cause: .watchdog) }
            return
        }
        if fw.armed, now > fw.lastHostFrame + fw.deadman {
            latch(.hostHeartbeatLost, detail: 0, value: Int32(clamping: (now - fw.lastHostFrame).milliseconds))
        }
        // Only a pen without a latched fault latches over-temperature: the motor is off anyway,
        // and a hot pen must not repeat FAULT on every step (CLEAR_FAULT waits for it to cool).
        if mechanics.temperatureDc > Double(config.overTemperatureDc), fw.fault == .none {
            latch(.overTemperature, detail: 0, value: Int32(saturating: mechanics.temperatureDc))
        }
        if mechanics.currentMa > Double(config.overCurrentMa), motorDriven {
            latch(.overCurrent, detail: 0, value: Int32(saturating: mechanics.currentMa))
        }
        // A motor that does not turn at all completes no strokes: check the stall here too.
        checkRate()
        if now >= fw.lastTelemetry + ProtocolTiming.telemetryIdlePeriod { sendTelemetry() }
        if now >= fw.lastStatus + ProtocolTiming.statusPeriod { sendStatus() }
        trackMotor()
    }

    // MARK: - Firmware

    private mutating func boot(cause: ResetCause) {
        let cycles = now
        fw = Firmware()
        fw.lastTelemetry = cycles
        fw.lastStatus = cycles
        fw.lastHostFrame = cycles
        decoder.reset()
        hungSince = nil
        mechanics.brake()
        send(.fault(.init(code: .reset, detail: UInt16(cause.rawValue), value: 0, penTimeUs: penTime)))
        if estopButton {
            latch(.estop, detail: 1, value: 0)
        }
        sendStatus()
    }

    /// `pen_time_us` on the wire: the pen's microsecond counter, a u32 that wraps every 71.6
    /// minutes, taken from the instant here and nowhere else.
    private var penTime: UInt32 { UInt32(truncatingIfNeeded: now.nanoseconds / 1_000) }

    private mutating func afterInput() {
        guard hungSince == nil else { return }
        trackMotor()
    }

    /// Keeps the spin-up timer and STATUS-on-change current after anything that may change state.
    private mutating func trackMotor() {
        if motorDriven {
            if fw.motorOnSince == nil { fw.motorOnSince = now }
        } else {
            fw.motorOnSince = nil
        }
        if penState != fw.reportedState { sendStatus() }
    }

    private mutating func handle(_ frame: Frame) {
        let id = frame.message.id
        guard id.isHostCommand else { return }  // a pen ignores pen messages
        fw.lastHostFrame = now
        if case .hello = frame.message {
            fw.lastCommand = nil
        } else if let last = fw.lastCommand, last.seq == frame.seq, last.id == id.rawValue {
            // A retransmission: answer again, never apply twice.
            ack(seq: frame.seq, id: id.rawValue, last.status, last.detail)
            dataReply(for: frame.message, status: last.status)
            return
        }
        let (status, detail) = apply(frame.message)
        commandsApplied += 1
        fw.lastCommand = (frame.seq, id.rawValue, status, detail)
        ack(seq: frame.seq, id: id.rawValue, status, detail)
        dataReply(for: frame.message, status: status)
        trackMotor()
    }

    private mutating func dataReply(for message: Message, status: AckStatus) {
        switch message {
        case .hello:
            let fwVersion = config.firmware + [0, 0, 0]
            send(.helloReply(.init(
                protoMajor: UInt8(clamping: protocolMajor), protoMinor: UInt8(clamping: config.protocolMinor),
                fwMajor: UInt8(clamping: fwVersion[0]), fwMinor: UInt8(clamping: fwVersion[1]), fwPatch: UInt8(clamping: fwVersion[2]),
                capabilities: config.capabilities, serial: FixedText(config.serial) ?? "INVALID-SERIAL",
                limitsCRC: fw.limitsCRC, depthCeilingUm: UInt16(clamping: config.depthCeilingUm))))
        case .setLimits where status == .ok, .getLimits where status == .ok:
            send(.limits(limitsMessage))
        case .getStatus:
            sendStatus()
        case .readCartridge where status == .ok:
            if let cartridge { send(.cartridge(cartridgeMessage(.report, cartridge))) }
        default:
            break
        }
    }

    private var limitsMessage: Message.Limits {
        let l = fw.limits
        return Message.Limits(
            depthMinUm: l?.depthMinUm ?? 0, depthMaxUm: l?.depthMaxUm ?? 0, depthTripUm: l?.depthTripUm ?? 0,
            rateMinDhz: l?.rateMinDhz ?? 0, rateMaxDhz: l?.rateMaxDhz ?? 0, rateStallDhz: l?.rateStallDhz ?? 0,
            rateRunawayDhz: l?.rateRunawayDhz ?? 0, deadmanMs: UInt16(clamping: fw.deadman.milliseconds), limitsCRC: fw.limitsCRC)
    }

    private func cartridgeMessage(_ event: CartridgeEvent, _ cartridge: SimCartridge) -> Message.Cartridge {
        Message.Cartridge(
            event: event, needleCount: UInt8(clamping: min(64, cartridge.needleCount)),
            needleDiameterUm: UInt16(clamping: min(1000, cartridge.needleDiameterUm)),
            expiryDays: UInt16(clamping: cartridge.expiryDays),
            cartridgeID: FixedText(String(cartridge.id.prefix(16))) ?? "", lot: FixedText(String(cartridge.lot.prefix(12))) ?? "")
    }

    private mutating func stopMotion() {
        fw.armed = false
        fw.runEnabled = false
    }

    private mutating func apply(_ message: Message) -> (AckStatus, UInt8) {
        switch message {
        case .hello(let hello):
            // Rule 12: every HELLO stops, disarms and clears the setpoints; a latched fault stays.
            stopMotion()
            fw.depthSetpointUm = 0
            fw.rateSetpointDhz = 0
            guard Int(hello.protoMajor) == protocolMajor else {
                // Another major: back to boot, with no limits (the deadman back to its default).
                fw.handshakeDone = false
                fw.limits = nil
                fw.limitsCRC = 0
                fw.deadman = ProtocolTiming.deadmanDefault
                return (.versionMismatch, UInt8(clamping: protocolMajor))
            }
            // An accepted HELLO keeps the limits, so HELLO_REPLY's limits_crc names them.
            fw.handshakeDone = true
            return (.ok, 0)
        case .heartbeat:
            return (.ok, 0)
        case .estop:
            latch(.estop, detail: 2, value: 0)
            return (.ok, 0)
        case .getStatus:
            return (.ok, 0)
        case .identify(let identify):
            fw.identifyUntil = now + .milliseconds(identify.durationMs)
            return (.ok, 0)
        case .clearFault:
            return clearFault()
        default:
            break
        }
        guard fw.handshakeDone else { return (.notReady, 0) }
        switch message {
        case .setLimits(let limits):
            if fw.armed { return (.armedLocked, 0) }
            if let field = inconsistentField(limits) { return (.badField, field) }
            fw.limits = limits
            fw.limitsCRC = limits.checksum
            fw.deadman = ProtocolTiming.deadman(ms: limits.deadmanMs)
            fw.depthSetpointUm = 0
            fw.rateSetpointDhz = 0
            return (.ok, 0)
        case .getLimits:
            return (.ok, 0)
        case .setSetpoints(let setpoints):
            guard let limits = fw.limits else { return (.noLimits, 0) }
            if setpoints.depthUm < limits.depthMinUm || setpoints.depthUm > limits.depthMaxUm { return (.outOfLimits, 0) }
            if setpoints.rateDhz < limits.rateMinDhz || setpoints.rateDhz > limits.rateMaxDhz { return (.outOfLimits, 1) }
            fw.depthSetpointUm = setpoints.depthUm
            fw.rateSetpointDhz = setpoints.rateDhz
            return (.ok, 0)
        case .arm(let arm):
            if fw.estopLatched || estopButton { return (.estopLatched, 0) }
            if fw.fault != .none { return (.faultLatched, fw.fault.rawValue) }
            if fw.armed {
                // Rule 10: the same limits is a no-op; other limits mean host and pen disagree: fail safe.
                if arm.limitsCRC == fw.limitsCRC { return (.ok, 0) }
                stopMotion()
                return (.limitsMismatch, 0)
            }
            if fw.limits == nil || fw.depthSetpointUm == 0 { return (.noLimits, 0) }
            if arm.limitsCRC != fw.limitsCRC { return (.limitsMismatch, 0) }
            if config.hasCartridgeReader {
                guard let cartridge else { return (.noCartridge, 0) }
                if cartridge.needleCount != Int(FirmwareAbsoluteLimits.needleCount) { return (.cartridgeRejected, 1) }
                if !FirmwareAbsoluteLimits.needleDiameterUm.contains(UInt16(clamping: cartridge.needleDiameterUm)) {
                    return (.cartridgeRejected, 2)
                }
            }
            if pedalPressed { return (.pedalPressed, 0) }
            fw.armed = true
            fw.runEnabled = false
            return (.ok, 0)
        case .disarm:
            if fw.ignoresStops { return (.ok, 0) }  // the hostile double: says yes, does nothing
            stopMotion()
            return (.ok, 0)
        case .motorRun:
            if fw.estopLatched || estopButton { return (.estopLatched, 0) }
            if fw.fault != .none { return (.faultLatched, fw.fault.rawValue) }
            guard fw.armed else { return (.notArmed, 0) }
            fw.runEnabled = true
            return (.ok, 0)
        case .motorStop:
            if fw.ignoresStops { return (.ok, 0) }
            fw.runEnabled = false
            return (.ok, 0)
        case .readCartridge:
            return config.hasCartridgeReader && cartridge != nil ? (.ok, 0) : (.noCartridge, 0)
        default:
            return (.unknownMessage, 0)
        }
    }

    /// Rule 9: the relations in the order the rule lists them; the first that fails gives the
    /// lower field index of the two it relates (depth_trip_um's for the ceiling).
    private func inconsistentField(_ l: Message.SetLimits) -> UInt8? {
        if !(l.depthMinUm < l.depthMaxUm) { return 0 }  // depth_min_um (0) < depth_max_um (1)
        if !(l.depthMaxUm <= l.depthTripUm) { return 1 }  // depth_max_um (1) <= depth_trip_um (2)
        if !(Int(l.depthTripUm) <= config.depthCeilingUm) { return 2 }  // depth_trip_um (2) <= ceiling
        if !(l.rateStallDhz < l.rateMinDhz) { return 3 }  // rate_stall_dhz (5) < rate_min_dhz (3)
        if !(l.rateMinDhz <= l.rateMaxDhz) { return 3 }  // rate_min_dhz (3) <= rate_max_dhz (4)
        if !(l.rateMaxDhz < l.rateRunawayDhz) { return 4 }  // rate_max_dhz (4) < rate_runaway_dhz (6)
        return nil
    }

    /// Rule 11: "cause gone" per fault code; limits and setpoints are kept, the pen stays disarmed.
    private mutating func clearFault() -> (AckStatus, UInt8) {
        if fw.fault == .none && !fw.estopLatched { return (.ok, 0) }
        if estopButton { return (.conditionPersists, FaultCode.estop.rawValue) }
        if fw.fault == .overTemperature && mechanics.temperatureDc > Double(config.overTemperatureDc) - 50 {
            return (.conditionPersists, fw.fault.rawValue)
        }
        if fw.fault == .overCurrent && mechanics.extraCurrentMa > 0 { return (.conditionPersists, fw.fault.rawValue) }
        fw.fault = .none
        fw.estopLatched = false
        fw.missingReadings = 0
        fw.sameReadings = 0
        stopMotion()
        return (.ok, 0)
    }

    /// Stop, disarm, latch, tell the host. The first latched fault is kept. An e-stop that is
    /// already latched changes nothing and sends no second FAULT (rule 6).
    private mutating func latch(_ code: FaultCode, detail: UInt16, value: Int32) {
        if code == .estop && fw.estopLatched { return }
        stopMotion()
        mechanics.brake()
        if code == .estop { fw.estopLatched = true }
        if fw.fault == .none { fw.fault = code }
        faultHistory.append((now, code, mechanics.strokeCount))
        send(.fault(.init(code: code, detail: detail, value: value, penTimeUs: penTime)))
        trackMotor()
    }

    private func fieldIndex(_ id: MessageID, _ field: String?) -> UInt8 {
        guard let field, let entry = MessageSchema.messages.first(where: { $0.id == id }),
              let index = entry.fields.firstIndex(where: { $0.name == field }) else { return 0 }
        return UInt8(index)
    }

    private mutating func ack(seq: UInt8, id: UInt8, _ status: AckStatus, _ detail: UInt8) {
        send(.ack(.init(ackedSeq: seq, ackedID: id, status: status, detail: detail)))
    }

    private mutating func sendTelemetry() {
        let measuredCurrent = mechanics.measuredCurrentMa()
        send(.telemetry(.init(
            penTimeUs: penTime, strokeCount: mechanics.strokeCount,
            peakProtrusionUm: fw.peakSinceFrame.map { UInt16(clamping: $0) } ?? 0xFFFF,
            strokeRateDhz: UInt16(clamping: min(5000, Int(saturating: (mechanics.rateHz * 10).rounded()))),
            motorCurrentMa: UInt16(clamping: Int(saturating: measuredCurrent)), temperatureDc: Int16(clamping: Int(saturating: mechanics.temperatureDc.rounded())),
            flags: flags)))
        fw.peakSinceFrame = nil
        fw.lastTelemetry = now
    }

    private mutating func sendStatus() {
        fw.reportedState = penState
        send(.status(.init(
            state: penState, flags: flags, fault: fw.fault, depthSetpointUm: fw.depthSetpointUm,
            rateSetpointDhz: fw.rateSetpointDhz, penTimeUs: penTime)))
        fw.lastStatus = now
    }

    private mutating func send(_ message: Message) {
        FrameEncoder.encode(Frame(seq: fw.txSeq, message: message), appendingTo: &output)
        fw.txSeq &+= 1
        framesSent += 1
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
