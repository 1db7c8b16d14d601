import StippleWire

/// Where on the scalp the technician works. Each zone has its own protrusion maximum because
/// the scalp is thinner at the front and scar tissue wants a shallow touch.
public enum Zone: String, CaseIterable, Hashable, Sendable, Codable {
    case frontTemples = "front_temples"
    case crown
    case backSides = "back_sides"
    case scar
}

/// The skin layer the pigment is meant for.
public enum Layer: String, CaseIterable, Hashable, Sendable, Codable {
    case epidermis
    case upperDermis = "upper_dermis"
}

/// A protrusion band in micrometres, both ends included.
public struct DepthBand: Hashable, Sendable, Codable, CustomStringConvertible {
    public var minUm: Int
    public var maxUm: Int

    public init(minUm: Int, maxUm: Int) {
        self.minUm = minUm
        self.maxUm = maxUm
    }

    public func contains(_ um: Int) -> Bool { um >= minUm && um <= maxUm }

    /// Whether `other` lies inside this band (a site may tighten a band, never widen it).
    public func encloses(_ other: DepthBand) -> Bool { other.minUm >= minUm && other.maxUm <= maxUm }

    public var description: String { "\(minUm)...\(maxUm) µm" }
}

/// Limits nobody can configure. The firmware's own absolute limits are read from the protocol
/// definition (`messages.json`, generated into `FirmwareAbsoluteLimits` and `ProtocolTiming`),
/// so the daemon and the pen can never drift apart; the rest are the ceilings of
/// `../shared/domain.md`.
public enum AbsoluteLimits {
    /// No protrusion setpoint, band or ceiling may exceed this (the firmware's compiled ceiling).
    public static let depthCeilingUm = Int(FirmwareAbsoluteLimits.depthCeilingUm)
    /// No zone maximum may exceed this, whatever the site ceiling says (domain.md).
    public static let zoneCeilingUm = 1500
    /// The domain's band for each layer: a site may tighten a band, never widen it.
    public static func band(_ layer: Layer) -> DepthBand {
        switch layer {
        case .epidermis: DepthBand(minUm: 200, maxUm: 400)
        case .upperDermis: DepthBand(minUm: 400, maxUm: 1000)
        }
    }
    /// How far a measured stroke may overshoot the active band before it counts as over-depth:
    /// the site chooses within this range (the sensor's stated accuracy plus stroke-to-stroke
    /// scatter); the zone maximum itself never has a tolerance.
    public static let depthToleranceUm = 0...100
    /// Above this stroke rate: runaway, stop at once, also during spin-up.
    public static let runawayHz = Double(FirmwareAbsoluteLimits.rateRunawayMaxDhz) / 10
    /// Below this stroke rate while running (after spin-up): stall, stop at once.
    public static let stallHz = Double(FirmwareAbsoluteLimits.rateStallMinDhz) / 10
    /// The domain's stroke-rate window: a site may narrow it, never widen it.
    public static let rateWindowHz = 50.0...150.0
    /// No session runs longer, whatever the site configures. Pauses count.
    public static let sessionLength = Duration.seconds(4 * 3600)
    /// Warnings every session gets, counted back from its end (3:00 and 3:45 of a 4:00
    /// session): a site may add warnings, never remove these.
    public static let warningsBeforeEnd: [Duration] = [.seconds(3600), .seconds(15 * 60)]
    /// Needles per cartridge (3RL).
    public static let needleCount = Int(FirmwareAbsoluteLimits.needleCount)
    /// Acceptable needle diameters.
    public static let needleDiameterUm =
        Int(FirmwareAbsoluteLimits.needleDiameterUm.lowerBound)...Int(FirmwareAbsoluteLimits.needleDiameterUm.upperBound)
    /// The shortest gap between two sessions of one client without a recorded override.
    public static let minimumSessionGap = Duration.seconds(5 * 86_400)
    /// The pen's deadman timeout range (PROTOCOL.md section 7).
    public static let deadmanMs = ProtocolTiming.deadmanRangeMs
    /// The longest telemetry silence the daemon tolerates (PROTOCOL.md section 8): a site may
    /// shorten it, never lengthen it.
    public static let telemetrySilence = Duration.milliseconds(ProtocolTiming.hostTelemetrySilenceMs)
}

/// A limit set or a setpoint that is refused, naming the field, the value and what is allowed.
public struct LimitViolation: Error, Hashable, Sendable, CustomStringConvertible {
    public var field: String
    public var value: String
    public var allowed: String

    public init(field: String, value: String, allowed: String) {
        self.field = field
        self.value = value
        self.allowed = allowed
    }

    public var description: String { "\(field): \(value) is outside the allowed range \(allowed)" }
}

/// What the technician asks the needle to do.
public struct Setpoint: Hashable, Sendable, Codable {
    public var layer: Layer
    public var depthUm: Int
    public var rateHz: Double

    public init(layer: Layer, depthUm: Int, rateHz: Double) {
        self.layer = layer
        self.depthUm = depthUm
        self.rateHz = rateHz
    }
}

/// The limit set pushed to the pen (the SET_LIMITS fields), in protocol units.
public struct PenLimits: Hashable, Sendable, Codable {
    public var depthMinUm: Int
    public var depthMaxUm: Int
    public var depthTripUm: Int
    public var rateMinDhz: Int
    public var rateMaxDhz: Int
    public var rateStallDhz: Int
    public var rateRunawayDhz: Int
    public var deadmanMs: Int

    /// The SET_LIMITS message that carries these limits.
    public var message: Message.SetLimits {
        Message.SetLimits(
            depthMinUm: UInt16(clamping: depthMinUm), depthMaxUm: UInt16(clamping: depthMaxUm),
            depthTripUm: UInt16(clamping: depthTripUm), rateMinDhz: UInt16(clamping: rateMinDhz),
            rateMaxDhz: UInt16(clamping: rateMaxDhz), rateStallDhz: UInt16(clamping: rateStallDhz),
            rateRunawayDhz: UInt16(clamping: rateRunawayDhz), deadmanMs: UInt16(clamping: deadmanMs))
    }

    /// The checksum a pen holding exactly these limits reads back (PROTOCOL.md section 4).
    public var checksum: UInt32 { message.checksum }
}
