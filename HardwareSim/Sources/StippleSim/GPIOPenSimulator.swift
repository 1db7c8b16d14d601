import StippleWire

/// A simple pen with no microcontroller, seen through GPIO lines, for the daemon's GPIO backend:
/// motor enable and status LED are outputs of the host; pedal, e-stop, the stroke tachometer
/// and the over-depth switch are inputs. The same mechanics as the serial pen drive it.
///
/// What the hardware itself guarantees (and nothing more): the e-stop button cuts motor power
/// directly. Everything else — stopping on the over-depth switch, on a stalled tachometer, on
/// a released pedal — is the host's job, which is exactly what the daemon must be tested for.
public struct GPIOPenSimulator: Sendable {
    public enum Line: String, CaseIterable, Sendable {
        case motorEnable = "motor_enable"
        case statusLED = "status_led"
        case pedal
        case estop
        case tachometer
        case overDepth = "over_depth"

        /// Lines the host drives.
        public var isOutput: Bool { self == .motorEnable || self == .statusLED }
    }

    /// An edge on an input line, timestamped like a gpiod line event.
    public struct Edge: Hashable, Sendable {
        public var line: Line
        public var rising: Bool
        public var time: MonotonicInstant
    }

    public struct Config: Hashable, Sendable {
        /// Stroke rate set by the pen's speed dial.
        public var rateHz = 120.0
        /// Protrusion set by the pen's depth dial.
        public var depthUm = 800.0
        /// The over-depth switch closes when a stroke protrudes beyond this.
        public var overDepthSwitchUm = 1300
        /// Tachometer pulse width.
        public var tachPulse = Duration.microseconds(500)
        public var mechanics = PenMechanics.Parameters()
        public init() {}
    }

    public let config: Config
    public private(set) var now = MonotonicInstant.zero
    public private(set) var mechanics: PenMechanics
    private var levels: [Line: Bool] = [:]
    private var edges: [Edge] = []
    private var tachHighUntil: MonotonicInstant?

    public init(config: Config = Config(), seed: UInt64 = 1) {
        self.config = config
        mechanics = PenMechanics(parameters: config.mechanics, rng: SimRandom(seed: seed))
        for line in Line.allCases { levels[line] = false }
    }

    /// The level of any line (outputs as last set by the host).
    public func level(_ line: Line) -> Bool { levels[line] ?? false }

    /// The host drives an output line.
    public mutating func setOutput(_ line: Line, _ high: Bool) {
        precondition(line.isOutput, "\(line) is an input of the host")
        levels[line] = high
    }

    /// The world acts on an input (pedal, e-stop button).
    public mutating func setInput(_ line: Line, _ high: Bool) {
        precondition(!line.isOutput && line != .tachometer && line != .overDepth, "\(line) is driven by the pen")
        change(line, high)
    }

    /// Whether the motor is powered: enable high and the e-stop not pressed (hardware interlock).
    public var motorPowered: Bool { level(.motorEnable) && !level(.estop) }

    public var strokeCount: UInt32 { mechanics.strokeCount }

    public mutating func inject(_ fault: PenFault) {
        if mechanics.apply(fault) { return }
        // Of the rest, only the e-stop exists on a GPIO pen; firmware and cartridge-chip faults do not.
        if case .estopPressed = fault { change(.estop, true) }
    }

    /// Input edges since the last call, oldest first.
    public mutating func takeEdges() -> [Edge] {
        defer { edges.removeAll(keepingCapacity: true) }
        return edges
    }

    public mutating func advance(to target: MonotonicInstant) {
        while now < target {
            var end = min(target, now + .milliseconds(2))
            if let toStroke = mechanics.timeToStroke { end = min(end, now + toStroke) }
            if let high = tachHighUntil, high > now { end = min(end, high) }
            let stroked = mechanics.integrate(end - now, driven: motorPowered, commandedHz: config.rateHz)
            now = end
            if let high = tachHighUntil, now >= high {
                change(.tachometer, false)
                tachHighUntil = nil
            }
            if stroked {
                let protrusion = mechanics.completeStroke(depthUm: config.depthUm)
                change(.tachometer, true)
                tachHighUntil = now + config.tachPulse
                change(.overDepth, protrusion > config.overDepthSwitchUm)
            }
        }
    }

    private mutating func change(_ line: Line, _ high: Bool) {
        guard levels[line] != high else { return }
        levels[line] = high
        if !line.isOutput { edges.append(Edge(line: line, rising: high, time: now)) }
    }
}
