import StippleSafety
import StippleWire

/// Builders that bring a core into any state with a handful of lines, on a virtual clock.
struct Rig {
    var core: SafetyCore
    var now = MonotonicInstant.zero
    var wall = WallTime(secondsSince1970: 1_790_000_000)  // 2026-09
    let connection = ConnectionID(7)
    var log: [Decision] = []

    init(limits: SafetyLimits = .defaults, history: SafetyHistory = SafetyHistory()) {
        core = try! SafetyCore(limits: limits, history: history)
    }

    static let request = SessionRequest(
        sessionID: "S1", clientID: "C1", technician: "Ana", zone: .crown, cartridgeID: "CART-1",
        pigmentLots: ["PIG-LOT-9"], penSerial: "PEN-1")

    static let setpoint = Setpoint(layer: .upperDermis, depthUm: 800, rateHz: 120)

    var goodFacts: ArmingFacts {
        ArmingFacts(
            pen: PenIdentity(serial: "PEN-1", protocolMajor: 1, protocolMinor: 0),
            hostProtocolMajor: Int(ProtocolVersion.major), hostProtocolMinor: Int(ProtocolVersion.minor),
            readBackLimitsCRC: core.expectedPenLimits?.checksum,
            cartridge: CartridgeInfo(id: "CART-1", needleCount: 3, needleDiameterUm: 250, lot: "L1", expiryDay: wall.day + 100),
            pedalPressed: false, estopPressed: false, penFaultLatched: false,
            connection: connection, connectionAlive: true, today: wall.day)
    }

    @discardableResult
    mutating func send(_ event: SafetyEvent) -> Decision {
        let decision = core.handle(event, at: now)
        log.append(decision)
        return decision
    }

    /// Sub-second time not yet shown on the wall clock (it counts whole seconds).
    var wallFraction = Duration.zero

    mutating func advance(_ duration: Duration) {
        now = now + duration
        wallFraction += duration
        let seconds = Duration.seconds(wallFraction.wholeSeconds)
        wall = wall + seconds
        wallFraction -= seconds
    }

    @discardableResult
    mutating func open(_ request: SessionRequest = Rig.request) -> Decision {
        send(.openSession(request, wall: wall, bootID: "boot-A"))
    }

    @discardableResult
    mutating func openWithSetpoint() -> Decision {
        open()
        return send(.setSetpoint(Rig.setpoint))
    }

    @discardableResult
    mutating func arm() -> Decision {
        openWithSetpoint()
        return send(.arm(goodFacts))
    }

    /// Armed, then the pedal pressed: the needle runs.
    mutating func run() {
        arm()
        send(.telemetry(stroke()))
    }

    /// A stroke whose depth scatters a few µm around 800 with time, as real strokes do (the
    /// core stops a sensor that reads the very same value stroke after stroke).
    func stroke(rate: Double = 120, motorOn: Bool = true, pedal: Bool = true) -> TelemetrySample {
        stroke(depth: 800 + Int((now.nanoseconds / 1_000_000) % 7), rate: rate, motorOn: motorOn, pedal: pedal)
    }

    func stroke(depth: Int?, rate: Double = 120, motorOn: Bool = true, pedal: Bool = true) -> TelemetrySample {
        TelemetrySample(peakProtrusionUm: depth, strokeRateHz: rate, motorOn: motorOn, pedalPressed: pedal)
    }

    /// Advances past the spin-up grace with good strokes at 150 Hz.
    mutating func runPastSpinUp() {
        run()
        for _ in 0..<60 {
            advance(.microseconds(6_667))
            send(.telemetry(stroke()))
        }
    }

    /// A frame of a pen at rest, a millisecond later: the fresh evidence clearing a fault needs.
    mutating func idleFrame() {
        advance(.milliseconds(1))
        send(.telemetry(stroke(depth: nil, rate: 0, motorOn: false, pedal: false)))
    }

    mutating func bring(to phase: SessionPhase) {
        switch phase {
        case .noSession: break
        case .open: openWithSetpoint()
        case .armed: arm()
        case .running: run()
        case .paused:
            run()
            advance(.milliseconds(500))
            send(.telemetry(stroke(depth: nil, rate: 0, motorOn: false, pedal: false)))
        case .closed:
            openWithSetpoint()
            send(.closeSession)
        case .faulted:
            arm()
            send(.emergencyStop(.api))
            idleFrame()
        }
        precondition(core.phase == phase, "could not reach \(phase), at \(core.phase)")
    }
}

extension Decision {
    var faultsLatched: [FaultReason] {
        actions.compactMap { if case .faultLatched(let reason, _) = $0 { reason } else { nil } }
    }

    var firstActionIsStop: Bool {
        switch actions.first {
        case .stopNeedle, .emergencyStopPen: true
        default: false
        }
    }
}

import PropertyBased

extension Gen {
    /// One of `values`, uniformly (never empty).
    static func pick(_ values: [Value]) -> Generator<Value, Shrink.Integer<Int>> where Value: Sendable {
        Gen<Int>.int(in: 0...(values.count - 1)).map { values[$0] }
    }
}
