import StippleRequests
import StippleWire

/// A needle cartridge as its chip describes it.
public struct SimCartridge: Hashable, Sendable, Codable {
    public var id: String
    public var needleCount: Int
    public var needleDiameterUm: Int
    public var lot: String
    /// Last valid day, days since 1970-01-01; 0 = unknown.
    public var expiryDays: Int

    public init(id: String, needleCount: Int = 3, needleDiameterUm: Int = 250, lot: String = "L2026-11", expiryDays: Int = 21_500) {
        self.id = id
        self.needleCount = needleCount
        self.needleDiameterUm = needleDiameterUm
        self.lot = lot
        self.expiryDays = expiryDays
    }

    enum CodingKeys: String, CodingKey {
        case id, needleCount = "needle_count", needleDiameterUm = "needle_diameter_um", lot, expiryDays = "expiry_days"
    }

    public init(from decoder: any Decoder) throws {
        var c = try KeyedReader(decoder, keyedBy: CodingKeys.self)
        id = try c.decode(String.self, .id)
        needleCount = try c.decodeIfPresent(Int.self, .needleCount) ?? 3
        needleDiameterUm = try c.decodeIfPresent(Int.self, .needleDiameterUm) ?? 250
        lot = try c.decodeIfPresent(String.self, .lot) ?? "L2026-11"
        expiryDays = try c.decodeIfPresent(Int.self, .expiryDays) ?? 21_500
        try c.finish("a cartridge")
    }
}

/// What kind of pen to simulate and how its firmware is built. Defaults describe a typical
/// serial pen with every sensor.
public struct PenConfig: Hashable, Sendable, Decodable {
    public var serial = "SIM-0001"
    public var firmware: [Int] = [1, 0, 0]
    public var protocolMajor = Int(ProtocolVersion.major)
    public var protocolMinor = Int(ProtocolVersion.minor)
    public var hasDepthSensor = true
    public var hasCartridgeReader = true
    public var depthCeilingUm = 2000
    /// Firmware limits of its own (PROTOCOL.md rule 8).
    public var overCurrentMa = 1500
    public var overTemperatureDc = 600
    /// Physics.
    public var motorTimeConstant = Duration.milliseconds(60)
    public var depthNoiseUm = 8.0
    public var depthDriftUm = 0.05
    public var ambientDc = 250.0
    public var thermalTimeConstant = Duration.seconds(600)
    /// Watchdog: a hung firmware is reset after this long (zero: never).
    public var watchdog = Duration.milliseconds(500)
    /// A cartridge in the slot at power-up (nil: empty slot).
    public var cartridge: SimCartridge? = SimCartridge(id: "SIM-CART-0001")

    public init() {}

    enum CodingKeys: String, CodingKey {
        case serial, firmware, protocolMajor = "protocol_major", protocolMinor = "protocol_minor"
        case hasDepthSensor = "depth_sensor", hasCartridgeReader = "cartridge_reader", depthCeilingUm = "depth_ceiling_um"
        case overCurrentMa = "over_current_ma", overTemperatureDc = "over_temperature_dc"
        case motorTimeConstant = "motor_time_constant_ms", depthNoiseUm = "depth_noise_um", depthDriftUm = "depth_drift_um"
        case ambientDc = "ambient_dc", thermalTimeConstant = "thermal_time_constant_s", watchdog = "watchdog_ms", cartridge
    }

    /// Every key is optional in scenario files; absent keys keep the defaults, unknown keys are refused.
    public init(from decoder: any Decoder) throws {
        self.init()
        var c = try KeyedReader(decoder, keyedBy: CodingKeys.self)
        serial = try c.decodeIfPresent(String.self, .serial) ?? serial
        firmware = try c.decodeIfPresent([Int].self, .firmware) ?? firmware
        guard firmware.count == 3, firmware.allSatisfy({ (0...255).contains($0) }) else {
            throw c.invalid(.firmware, "\(firmware) is not three numbers 0...255 ([major, minor, patch])")
        }
        protocolMajor = try c.decodeIfPresent(Int.self, .protocolMajor, in: 0...255) ?? protocolMajor
        protocolMinor = try c.decodeIfPresent(Int.self, .protocolMinor, in: 0...255) ?? protocolMinor
        hasDepthSensor = try c.decodeIfPresent(Bool.self, .hasDepthSensor) ?? hasDepthSensor
        hasCartridgeReader = try c.decodeIfPresent(Bool.self, .hasCartridgeReader) ?? hasCartridgeReader
        depthCeilingUm = try c.decodeIfPresent(Int.self, .depthCeilingUm, in: 0...Int(FirmwareAbsoluteLimits.depthCeilingUm)) ?? depthCeilingUm
        overCurrentMa = try c.decodeIfPresent(Int.self, .overCurrentMa, in: 0...20000) ?? overCurrentMa
        overTemperatureDc = try c.decodeIfPresent(Int.self, .overTemperatureDc, in: -400...2000) ?? overTemperatureDc
        motorTimeConstant = try c.milliseconds(.motorTimeConstant, in: 0.001...60_000) ?? motorTimeConstant
        depthNoiseUm = try c.decodeIfPresent(Double.self, .depthNoiseUm, in: 0...1000) ?? depthNoiseUm
        depthDriftUm = try c.decodeIfPresent(Double.self, .depthDriftUm, in: -2000...2000) ?? depthDriftUm
        ambientDc = try c.decodeIfPresent(Double.self, .ambientDc, in: -400...1000) ?? ambientDc
        thermalTimeConstant = try c.duration(.thermalTimeConstant, unit: ("s", 1_000_000_000), in: 0.001...86_400) ?? thermalTimeConstant
        watchdog = try c.milliseconds(.watchdog, in: 0...scenarioDayMs) ?? watchdog
        if let slot = try c.decodeNullable(SimCartridge.self, .cartridge) {
            cartridge = slot  // null: an empty slot
        }
        try c.finish("the pen")
    }

    var capabilities: Capabilities {
        var caps: Capabilities = [.pedal, .estopInput, .currentSensor, .temperatureSensor, .identifyLed]
        if hasDepthSensor { caps.insert(.depthSensor) }
        if hasCartridgeReader { caps.insert(.cartridgeReader) }
        return caps
    }
}
