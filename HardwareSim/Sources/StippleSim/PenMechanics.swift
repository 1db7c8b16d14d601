#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import StippleWire

/// The physical pen shared by the serial and the GPIO models: a motor that ramps toward its
/// target with inertia, a needle whose per-stroke peak protrusion follows the depth setting
/// with noise and slow drift, and current and temperature that rise with load and time.
public struct PenMechanics: Sendable {
    public struct Parameters: Hashable, Sendable {
        public var motorTimeConstant = Duration.milliseconds(60)
        public var depthNoiseUm = 8.0
        public var depthDriftUm = 0.05
        public var ambientDc = 250.0
        public var thermalTimeConstant = Duration.seconds(600)
        public init() {}
    }

    public let parameters: Parameters
    /// The time constants as the exponentials take them, converted once.
    private let motorTimeConstantMs: Double
    private let thermalTimeConstantS: Double
    public private(set) var rateHz = 0.0
    public private(set) var strokeCount: UInt32 = 0
    public private(set) var temperatureDc: Double
    public private(set) var currentMa = 0.0
    /// The true peak protrusion of the last stroke.
    public private(set) var lastProtrusionUm: Int?
    private var strokePhase = 0.0
    private var driftUm = 0.0
    private var rng: SimRandom

    // Injected mechanical faults.
    var overDepthExtraUm = 0
    var overDepthStrokes = 0
    var injectedDriftPerSecond = 0.0
    private var injectedDriftUm = 0.0
    var runawayHz: Double?
    var jammed = false
    var extraCurrentMa = 0.0
    var extraTemperatureDc = 0.0

    public init(parameters: Parameters, rng: SimRandom) {
        self.parameters = parameters
        motorTimeConstantMs = Double(parameters.motorTimeConstant.totalNanoseconds) / 1_000_000
        thermalTimeConstantS = Double(parameters.thermalTimeConstant.totalNanoseconds) / 1_000_000_000
        self.rng = rng
        temperatureDc = parameters.ambientDc
    }

    /// The rate the motor is driven toward, given the commanded rate.
    func target(commandedHz: Double, driven: Bool) -> Double {
        guard driven, !jammed else { return 0 }
        return runawayHz ?? commandedHz
    }

    /// The time until the next stroke completes at the present rate, in whole microseconds
    /// (the simulators' quantum), nil when stopped.
    var timeToStroke: Duration? {
        guard rateHz > 0.5 else { return nil }
        return .microseconds(max(1, Int64(((1 - strokePhase) / rateHz * 1_000_000).rounded(.up))))
    }

    /// Moves time on by `dt`; returns true when a stroke completed (call `completeStroke`).
    mutating func integrate(_ dt: Duration, driven: Bool, commandedHz: Double) -> Bool {
        let seconds = Double(dt.totalNanoseconds) / 1_000_000_000
        if driven {
            let target = target(commandedHz: commandedHz, driven: true)
            rateHz += (target - rateHz) * (1 - exp(-seconds * 1000 / motorTimeConstantMs))
            if jammed { rateHz = 0 }
            strokePhase += rateHz * seconds
            injectedDriftUm += injectedDriftPerSecond * seconds
            currentMa = 120 + 2.5 * rateHz + extraCurrentMa
        } else {
            brake()
            currentMa = 15 + extraCurrentMa
        }
        let heatTarget = parameters.ambientDc + currentMa / 3 + extraTemperatureDc
        temperatureDc += (heatTarget - temperatureDc) * (1 - exp(-seconds / thermalTimeConstantS))
        if extraTemperatureDc > 0 { temperatureDc = max(temperatureDc, parameters.ambientDc + extraTemperatureDc) }
        if strokePhase >= 1 {
            strokePhase -= 1
            return true
        }
        return false
    }

    /// The needle retracts and the motor stops within the stroke.
    mutating func brake() {
        rateHz = 0
        strokePhase = 0
    }

    /// Completes a stroke at depth setting `depthUm`; returns its true peak protrusion.
    mutating func completeStroke(depthUm: Double) -> Int {
        strokeCount &+= 1
        driftUm = max(-30, min(30, driftUm + rng.gaussian() * parameters.depthDriftUm))
        var protrusion = depthUm + driftUm + injectedDriftUm + rng.gaussian() * parameters.depthNoiseUm
        if overDepthStrokes > 0 {
            protrusion += Double(overDepthExtraUm)
            overDepthStrokes -= 1
        }
        let um = max(0, Int(saturating: protrusion.rounded()))
        lastProtrusionUm = um
        return um
    }

    /// Applies a mechanical fault; returns false for faults that are not mechanical.
    mutating func apply(_ fault: PenFault) -> Bool {
        switch fault {
        case .overDepth(let extra, let strokes):
            overDepthExtraUm = extra
            overDepthStrokes = strokes
        case .depthDrift(let rate): injectedDriftPerSecond = rate
        case .rateRunaway(let hz): runawayHz = hz
        case .stall: jammed = true
        case .overCurrent(let ma): extraCurrentMa = Double(ma)
        case .overTemperature(let dc): extraTemperatureDc = Double(dc)
        default: return false
        }
        return true
    }

    /// A current reading with sensor noise.
    mutating func measuredCurrentMa() -> Double { max(0, currentMa + rng.gaussian() * 4) }
}
