/// A cartridge as the pen's reader (or the technician, for GPIO pens) reports it.
public struct CartridgeInfo: Hashable, Sendable, Codable {
    public var id: String
    public var needleCount: Int
    public var needleDiameterUm: Int
    public var lot: String
    /// Last valid day, in days since 1970-01-01; nil if unknown.
    public var expiryDay: Int?

    public init(id: String, needleCount: Int, needleDiameterUm: Int, lot: String, expiryDay: Int?) {
        self.id = id
        self.needleCount = needleCount
        self.needleDiameterUm = needleDiameterUm
        self.lot = lot
        self.expiryDay = expiryDay
    }
}

/// The pen as identified by the handshake.
public struct PenIdentity: Hashable, Sendable, Codable {
    public var serial: String
    public var protocolMajor: Int
    public var protocolMinor: Int
    /// Whether the pen measures each stroke's protrusion. A pen that does must report a
    /// reading for every stroke while running; one that does not (GPIO pens, serial pens
    /// with only a mechanical over-depth switch) has its depth set mechanically.
    public var hasDepthSensor: Bool

    public init(serial: String, protocolMajor: Int, protocolMinor: Int, hasDepthSensor: Bool = true) {
        self.serial = serial
        self.protocolMajor = protocolMajor
        self.protocolMinor = protocolMinor
        self.hasDepthSensor = hasDepthSensor
    }
}

/// An API client connection (the GUI); the one that arms must stay connected.
public struct ConnectionID: Hashable, Sendable, Codable, CustomStringConvertible {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public var description: String { "connection \(value)" }
}

/// Everything the daemon observed that arming depends on, gathered at the moment of arming.
public struct ArmingFacts: Hashable, Sendable {
    /// The pen's identity from the handshake; nil when no handshake has completed.
    public var pen: PenIdentity?
    /// The protocol version this daemon speaks.
    public var hostProtocolMajor: Int
    public var hostProtocolMinor: Int
    /// The limits checksum the pen read back (LIMITS or HELLO_REPLY). The core compares it
    /// with the checksum of the limits it decided to push itself, never with a caller's number.
    public var readBackLimitsCRC: UInt32?
    /// The cartridge in the pen; nil when none.
    public var cartridge: CartridgeInfo?
    public var pedalPressed: Bool
    public var estopPressed: Bool
    /// Whether the pen reports a latched fault of its own.
    public var penFaultLatched: Bool
    /// The API connection asking to arm, and whether it is still connected.
    public var connection: ConnectionID?
    public var connectionAlive: Bool
    /// Today's date (for cartridge expiry).
    public var today: Int

    public init(
        pen: PenIdentity?, hostProtocolMajor: Int, hostProtocolMinor: Int,
        readBackLimitsCRC: UInt32?, cartridge: CartridgeInfo?,
        pedalPressed: Bool, estopPressed: Bool, penFaultLatched: Bool,
        connection: ConnectionID?, connectionAlive: Bool, today: Int
    ) {
        self.pen = pen
        self.hostProtocolMajor = hostProtocolMajor
        self.hostProtocolMinor = hostProtocolMinor
        self.readBackLimitsCRC = readBackLimitsCRC
        self.cartridge = cartridge
        self.pedalPressed = pedalPressed
        self.estopPressed = estopPressed
        self.penFaultLatched = penFaultLatched
        self.connection = connection
        self.connectionAlive = connectionAlive
        self.today = today
    }
}

/// One failed arming check: a stable code for programs and a sentence for the technician.
public struct ArmingFailure: Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, CaseIterable {
        case notOpen = "session_not_open"
        case penNotIdentified = "pen_not_identified"
        case protocolIncompatible = "protocol_incompatible"
        case wrongPen = "wrong_pen"
        case limitsUnverified = "limits_unverified"
        case setpointMissing = "setpoint_missing"
        case setpointInvalid = "setpoint_invalid"
        case noCartridge = "no_cartridge"
        case needleCount = "needle_count"
        case needleDiameter = "needle_diameter"
        case cartridgeExpired = "cartridge_expired"
        case cartridgeExpiryUnknown = "cartridge_expiry_unknown"
        case cartridgeReused = "cartridge_reused"
        case cartridgeMismatch = "cartridge_mismatch"
        case pedalPressed = "pedal_pressed"
        case estopPressed = "estop_pressed"
        case faultLatched = "fault_latched"
        case sessionTimeExhausted = "session_time_exhausted"
        case clientNotConnected = "client_not_connected"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
