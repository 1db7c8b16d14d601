import StippleLink
import StippleWire

/// The pen-side safety rules of PROTOCOL.md section 7, for a pen that has no microcontroller:
/// a GPIO pen's "firmware" is this value, running inside the daemon on its own thread (the
/// line reader), independent of the supervisor and the safety core. Pure: line edges,
/// commands and time in; the two output levels and the pen's messages out.
///
/// What it holds to, rule by rule:
/// 1. boots disarmed: the motor line is requested inactive, nothing is remembered;
/// 2. the motor line is active only while armed, run-enabled, pedal pressed, no fault and no
///    e-stop (ARM is refused with the pedal down);
/// 3. the over-depth switch stops the motor at once and latches `over_depth` (a pen without a
///    depth sensor has the switch wired to the trip instead);
/// 4. a runaway (a stroke interval shorter than `rate_runaway_dhz` allows) latches at once;
///    a stall (driven, past the 250 ms spin-up grace, rate below `rate_stall_dhz`, which a
///    silent tachometer reads as) latches;
/// 5. the deadman: armed and the supervisor silent for `deadman_ms` stops, disarms and latches
///    `host_heartbeat_lost` — a hung daemon stops the needle from this thread;
/// 6. the e-stop line latches `estop` in every state, once;
/// 7. there is no cartridge sensor: the technician types the cartridge (the daemon's ledger
///    still applies), so the cartridge counts as present and removal cannot be seen (H10);
/// 9–12 as the protocol says for limits, setpoints, clearing and HELLO.
///
/// Every latch is also reported (FAULT, and the flags of TELEMETRY/STATUS), and the safety core
/// latches its own fault from it — the core owns the session's decisions; these rules are the
/// pen's own mitigation, as a conforming firmware's are.
public struct GPIOPenRules: Sendable {
    /// The GPIO rules' own version, reported as the firmware version in HELLO_REPLY.
    public static let version: (major: UInt8, minor: UInt8, patch: UInt8) = (1, 0, 0)

    public let serial: FixedText<16>
    public let capabilities: Capabilities
    public private(set) var tachometer: Tachometer

    public private(set) var handshakeDone = false
    public private(set) var limits: Message.SetLimits?
    public private(set) var limitsCRC: UInt32 = 0
    public private(set) var deadman = ProtocolTiming.deadmanDefault
    public private(set) var depthSetpointUm: UInt16 = 0
    public private(set) var rateSetpointDhz: UInt16 = 0
    public private(set) var armed = false
    public private(set) var runEnabled = false
    public private(set) var fault = FaultCode.none
    public private(set) var estopLatched = false
    /// The debounced inputs.
    public private(set) var pedal = false
    public private(set) var estop = false
    public private(set) var overDepth = false

    private let origin: MonotonicInstant
    private var now: MonotonicInstant
    private var motorOnSince: MonotonicInstant?
    private var lastHostAt: MonotonicInstant
    private var lastTelemetryAt: MonotonicInstant?
    private var lastStatusAt: MonotonicInstant?
    private var reportedState: PenState?
    private var events: [HostLink.Event] = []

    /// A pen that has just been opened, with its inputs as they read at `now`: a pressed
    /// e-stop or a tripped switch latches at once (rules 3 and 6 hold in `boot` too).
    public init(serial: String, hasStatusLED: Bool, tachometerSpacing: Duration,
                pedal: Bool, estop: Bool, overDepth: Bool, at now: MonotonicInstant) {
        self.serial = FixedText(serial) ?? "INVALID-SERIAL"
        var capabilities: Capabilities = [.pedal, .estopInput]
        if hasStatusLED { capabilities.insert(.identifyLed) }
        self.capabilities = capabilities
        tachometer = Tachometer(minimumSpacing: tachometerSpacing)
        origin = now
        self.now = now
        lastHostAt = now
        self.pedal = pedal
        if estop { input(GPIOEdge(line: .estop, active: true, time: now)) }
        if overDepth { input(GPIOEdge(line: .overDepth, active: true, time: now)) }
    }

    // MARK: - Outputs

    /// Rule 2: the motor line's value.
    public var motorEnable: Bool {
        armed && runEnabled && pedal && !estop && fault == .none && !estopLatched
    }

    /// The status LED: lit while armed (the needle may move with the pedal).
    public var statusLED: Bool { armed }

    public var state: PenState {
        if fault != .none { return .faulted }
        if !handshakeDone { return .boot }
        if motorEnable { return .running }
        return armed ? .armed : .idle
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
        switch edge.line {
        case .pedal:
            pedal = edge.active
        case .estop:
            estop = edge.active
            if edge.active { latch(.estop, detail: 1, value: 0) }
        case .overDepth:
            overDepth = edge.active
            // The switch sits at the depth trip: its closing is the over-depth stroke (rule 3).
            if edge.active { latch(.overDepth, detail: 1, value: Int32(limits?.depthTripUm ?? 0)) }
        case .tachometer:
            guard edge.active, tachometer.pulse(at: edge.time) else { break }
            let dhz = rateDhz
            if dhz > Int(runawayDhz) { latch(.rateRunaway, detail: 0, value: Int32(clamping: dhz)) }
            telemetry()
        case .motorEnable, .statusLED:
            break  // outputs: never reported as edges
        }
        // A change of the pedal, the e-stop or the switch is told at once, not at the next
        // stroke or idle period: the safety core judges arming and clearing from these flags.
        if edge.line != .tachometer { telemetry() }
        afterChange()
    }

    /// Time passes (the reader wakes at least every few milliseconds): the deadman, the stall
    /// check, and TELEMETRY/STATUS at their idle periods.
    public mutating func tick(at time: MonotonicInstant) {
        advance(to: time)
        if armed, now - lastHostAt > deadman {
            latch(.hostHeartbeatLost, detail: 0, value: Int32(clamping: (now - lastHostAt).milliseconds))
        }
        if motorEnable, let since = motorOnSince, now - since >= ProtocolTiming.stallGrace, rateDhz < Int(stallDhz) {
            latch(.stall, detail: 0, value: Int32(clamping: rateDhz))
        }
        if lastTelemetryAt.map({ now - $0 >= ProtocolTiming.telemetryIdlePeriod }) ?? true { telemetry() }
        if lastStatusAt.map({ now - $0 >= ProtocolTiming.statusPeriod }) ?? true { status() }
        afterChange()
    }

    /// The supervisor is alive (it polled its link): the deadman's host frame.
    public mutating func hostAlive(at time: MonotonicInstant) {
        advance(to: time)
        lastHostAt = now
    }

    // MARK: - Commands

    /// A command from the supervisor, carried out at once and acknowledged; data replies
    /// (HELLO_REPLY, LIMITS, STATUS) follow the ACK, as a serial pen sends them.
    public mutating func command(_ message: Message, at time: MonotonicInstant) {
        advance(to: time)
        lastHostAt = now
        let (ack, detail) = apply(message)
        events.append(.acknowledged(message, status: ack, detail: detail))
        switch message {
        case .hello:
            events.append(.helloReply(.init(
                protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor,
                fwMajor: Self.version.major, fwMinor: Self.version.minor, fwPatch: Self.version.patch,
                capabilities: capabilities, serial: serial, limitsCRC: limitsCRC,
                depthCeilingUm: FirmwareAbsoluteLimits.depthCeilingUm)))
        case .setLimits where ack == .ok, .getLimits where ack == .ok:
            events.append(.limits(limitsMessage))
        case .getStatus:
            status()
        default:
            break
        }
        afterChange()
    }

    private mutating func apply(_ message: Message) -> (AckStatus, UInt8) {
        switch message {
        case .hello(let hello):
            stopMotion()  // rule 12
            depthSetpointUm = 0
            rateSetpointDhz = 0
            guard hello.protoMajor == ProtocolVersion.major else {
                handshakeDone = false
                limits = nil
                limitsCRC = 0
                deadman = ProtocolTiming.deadmanDefault
                return (.versionMismatch, ProtocolVersion.major)
            }
            handshakeDone = true
            return (.ok, 0)
        case .heartbeat, .getStatus:
            return (.ok, 0)
        case .estop:
            latch(.estop, detail: 2, value: 0)
            return (.ok, 0)
        case .identify:
            return (.ok, 0)
        case .clearFault:
            return clearFault()
        default:
            break
        }
        guard handshakeDone else { return (.notReady, 0) }
        switch message {
        case .setLimits(let new):
            if armed { return (.armedLocked, 0) }
            if let field = Self.inconsistentField(new) { return (.badField, field) }
            limits = new
            limitsCRC = new.checksum
            deadman = ProtocolTiming.deadman(ms: new.deadmanMs)
            depthSetpointUm = 0
            rateSetpointDhz = 0
            return (.ok, 0)
        case .getLimits:
            return (.ok, 0)
        case .setSetpoints(let setpoints):
            // A GPIO pen cannot set either: depth and speed are its mechanical dials. The
            // setpoint is still checked against the limits and held, as rule 10 asks.
            guard let limits else { return (.noLimits, 0) }
            if setpoints.depthUm < limits.depthMinUm || setpoints.depthUm > limits.depthMaxUm { return (.outOfLimits, 0) }
            if setpoints.rateDhz < limits.rateMinDhz || setpoints.rateDhz > limits.rateMaxDhz { return (.outOfLimits, 1) }
            depthSetpointUm = setpoints.depthUm
            rateSetpointDhz = setpoints.rateDhz
            return (.ok, 0)
        case .arm(let arm):
            if estopLatched || estop { return (.estopLatched, 0) }
            if fault != .none { return (.faultLatched, fault.rawValue) }
            if armed {
                if arm.limitsCRC == limitsCRC { return (.ok, 0) }
                stopMotion()
                return (.limitsMismatch, 0)
            }
            if limits == nil || depthSetpointUm == 0 { return (.noLimits, 0) }
            if arm.limitsCRC != limitsCRC { return (.limitsMismatch, 0) }
            if pedal { return (.pedalPressed, 0) }
            if overDepth { return (.faultLatched, FaultCode.overDepth.rawValue) }
            armed = true
            runEnabled = false
            return (.ok, 0)
        case .disarm:
            stopMotion()
            return (.ok, 0)
        case .motorRun:
            if estopLatched || estop { return (.estopLatched, 0) }
            if fault != .none { return (.faultLatched, fault.rawValue) }
            guard armed else { return (.notArmed, 0) }
            runEnabled = true
            return (.ok, 0)
        case .motorStop:
            runEnabled = false
            return (.ok, 0)
        case .readCartridge:
            return (.noCartridge, 0)  // no cartridge reader
        default:
            return (.unknownMessage, 0)
        }
    }

    /// Rule 9, in the order the rule lists the relations.
    static func inconsistentField(_ l: Message.SetLimits) -> UInt8? {
        if !(l.depthMinUm < l.depthMaxUm) { return 0 }
        if !(l.depthMaxUm <= l.depthTripUm) { return 1 }
        if !(l.depthTripUm <= FirmwareAbsoluteLimits.depthCeilingUm) { return 2 }
        if !(l.rateStallDhz < l.rateMinDhz) { return 3 }
        if !(l.rateMinDhz <= l.rateMaxDhz) { return 3 }
        if !(l.rateMaxDhz < l.rateRunawayDhz) { return 4 }
        return nil
    }

    /// Rule 11: the e-stop's cause is gone when the button is released; the over-depth
    /// switch's when it has opened again; every other latch when the motor is stopped, which
    /// latching guarantees.
    private mutating func clearFault() -> (AckStatus, UInt8) {
        if fault == .none && !estopLatched { return (.ok, 0) }
        if estop { return (.conditionPersists, FaultCode.estop.rawValue) }
        if overDepth { return (.conditionPersists, FaultCode.overDepth.rawValue) }
        fault = .none
        estopLatched = false
        return (.ok, 0)
    }

    // MARK: - Latching and reporting

    private mutating func stopMotion() {
        armed = false
        runEnabled = false
    }

    private mutating func latch(_ code: FaultCode, detail: UInt16, value: Int32) {
        stopMotion()
        if code == .estop {
            if estopLatched { return }  // rule 6: one FAULT, however often it is pressed
            estopLatched = true
        }
        if fault == .none {
            fault = code
        } else if code != .estop {
            return  // already latched: nothing new to say
        }
        events.append(.fault(.init(code: code, detail: detail, value: value, penTimeUs: penTimeUs)))
    }

    private var stallDhz: UInt16 { limits?.rateStallDhz ?? FirmwareAbsoluteLimits.rateStallMinDhz }
    private var runawayDhz: UInt16 { limits?.rateRunawayDhz ?? FirmwareAbsoluteLimits.rateRunawayMaxDhz }

    private var rateDhz: Int {
        let dhz = (tachometer.rateHz(at: now) * 10).rounded()
        return dhz.isFinite ? Int(min(dhz, 65_535)) : 65_535
    }

    private var penTimeUs: UInt32 { UInt32(truncatingIfNeeded: (now - origin).totalNanoseconds / 1000) }

    /// Whether the motor turns, by the line or by the tachometer: a motor the line does not
    /// drive but the tachometer sees turning (a welded relay, a shorted driver) is reported
    /// on, so the safety core sees the motion (H11).
    private var motorTurning: Bool { motorEnable || rateDhz >= Int(stallDhz) }

    private var flags: PenFlags {
        var flags: PenFlags = [.cartridgePresent]  // no sensor: see rule 7 above
        if handshakeDone { flags.insert(.handshakeDone) }
        if limits != nil { flags.insert(.limitsSet) }
        if armed { flags.insert(.armed) }
        if runEnabled { flags.insert(.runEnabled) }
        if motorTurning { flags.insert(.motorOn) }
        if pedal { flags.insert(.pedalPressed) }
        if estop { flags.insert(.estopPressed) }
        if estopLatched { flags.insert(.estopLatched) }
        if fault != .none { flags.insert(.faultLatched) }
        return flags
    }

    private mutating func telemetry() {
        lastTelemetryAt = now
        events.append(.telemetry(.init(
            penTimeUs: penTimeUs, strokeCount: tachometer.strokes, peakProtrusionUm: 0xFFFF,
            strokeRateDhz: UInt16(clamping: rateDhz), motorCurrentMa: 0xFFFF, temperatureDc: Int16.min, flags: flags)))
    }

    private mutating func status() {
        lastStatusAt = now
        reportedState = state
        events.append(.status(.init(state: state, flags: flags, fault: fault, depthSetpointUm: depthSetpointUm,
                                    rateSetpointDhz: rateSetpointDhz, penTimeUs: penTimeUs)))
    }

    private var limitsMessage: Message.Limits {
        Message.Limits(
            depthMinUm: limits?.depthMinUm ?? 0, depthMaxUm: limits?.depthMaxUm ?? 0, depthTripUm: limits?.depthTripUm ?? 0,
            rateMinDhz: limits?.rateMinDhz ?? 0, rateMaxDhz: limits?.rateMaxDhz ?? 0, rateStallDhz: limits?.rateStallDhz ?? 0,
            rateRunawayDhz: limits?.rateRunawayDhz ?? 0, deadmanMs: UInt16(clamping: deadman.milliseconds), limitsCRC: limitsCRC)
    }

    private mutating func advance(to time: MonotonicInstant) {
        now = max(now, time)
    }

    /// Keeps the spin-up timer and STATUS-on-change current after anything that may change state.
    private mutating func afterChange() {
        if motorEnable {
            if motorOnSince == nil {
                motorOnSince = now
                tachometer.restart()
            }
        } else {
            motorOnSince = nil
        }
        if state != reportedState { status() }
    }
}
