import StippleWire

/// Simulated time: microseconds since the simulated pen was powered.
public typealias SimTime = UInt64

extension SimTime {
    public static func ms(_ value: Double) -> SimTime { SimTime(value * 1000) }
}

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
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        needleCount = try c.decodeIfPresent(Int.self, forKey: .needleCount) ?? 3
        needleDiameterUm = try c.decodeIfPresent(Int.self, forKey: .needleDiameterUm) ?? 250
        lot = try c.decodeIfPresent(String.self, forKey: .lot) ?? "L2026-11"
        expiryDays = try c.decodeIfPresent(Int.self, forKey: .expiryDays) ?? 21_500
    }
}

/// What kind of pen to simulate and how its firmware is built. Defaults describe a typical
/// serial pen with every sensor.
public struct PenConfig: Hashable, Sendable, Codable {
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
    public var motorTimeConstantMs = 60.0
    public var depthNoiseUm = 8.0
    public var depthDriftUm = 0.05
    public var ambientDc = 250.0
    public var thermalTimeConstantS = 600.0
    /// Watchdog: a hung firmware is reset after this long (0 = never).
    public var watchdogMs = 500.0
    /// A cartridge in the slot at power-up (nil: empty slot).
    public var cartridge: SimCartridge? = SimCartridge(id: "SIM-CART-0001")

    public init() {}

    enum CodingKeys: String, CodingKey {
        case serial, firmware, protocolMajor = "protocol_major", protocolMinor = "protocol_minor"
        case hasDepthSensor = "depth_sensor", hasCartridgeReader = "cartridge_reader", depthCeilingUm = "depth_ceiling_um"
        case overCurrentMa = "over_current_ma", overTemperatureDc = "over_temperature_dc"
        case motorTimeConstantMs = "motor_time_constant_ms", depthNoiseUm = "depth_noise_um", depthDriftUm = "depth_drift_um"
        case ambientDc = "ambient_dc", thermalTimeConstantS = "thermal_time_constant_s", watchdogMs = "watchdog_ms", cartridge
    }

    /// Every key is optional in scenario files; absent keys keep the defaults.
    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serial = try c.decodeIfPresent(String.self, forKey: .serial) ?? serial
        firmware = try c.decodeIfPresent([Int].self, forKey: .firmware) ?? firmware
        protocolMajor = try c.decodeIfPresent(Int.self, forKey: .protocolMajor) ?? protocolMajor
        protocolMinor = try c.decodeIfPresent(Int.self, forKey: .protocolMinor) ?? protocolMinor
        hasDepthSensor = try c.decodeIfPresent(Bool.self, forKey: .hasDepthSensor) ?? hasDepthSensor
        hasCartridgeReader = try c.decodeIfPresent(Bool.self, forKey: .hasCartridgeReader) ?? hasCartridgeReader
        depthCeilingUm = try c.decodeIfPresent(Int.self, forKey: .depthCeilingUm) ?? depthCeilingUm
        overCurrentMa = try c.decodeIfPresent(Int.self, forKey: .overCurrentMa) ?? overCurrentMa
        overTemperatureDc = try c.decodeIfPresent(Int.self, forKey: .overTemperatureDc) ?? overTemperatureDc
        motorTimeConstantMs = try c.decodeIfPresent(Double.self, forKey: .motorTimeConstantMs) ?? motorTimeConstantMs
        depthNoiseUm = try c.decodeIfPresent(Double.self, forKey: .depthNoiseUm) ?? depthNoiseUm
        depthDriftUm = try c.decodeIfPresent(Double.self, forKey: .depthDriftUm) ?? depthDriftUm
        ambientDc = try c.decodeIfPresent(Double.self, forKey: .ambientDc) ?? ambientDc
        thermalTimeConstantS = try c.decodeIfPresent(Double.self, forKey: .thermalTimeConstantS) ?? thermalTimeConstantS
        watchdogMs = try c.decodeIfPresent(Double.self, forKey: .watchdogMs) ?? watchdogMs
        if c.contains(.cartridge) {
            cartridge = try c.decodeIfPresent(SimCartridge.self, forKey: .cartridge)
        }
    }

    var capabilities: Capabilities {
        var caps: Capabilities = [.pedal, .estopInput, .currentSensor, .temperatureSensor, .identifyLed]
        if hasDepthSensor { caps.insert(.depthSensor) }
        if hasCartridgeReader { caps.insert(.cartridgeReader) }
        return caps
    }
}
