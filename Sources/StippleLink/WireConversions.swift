import StippleSafety
import StippleWire

/// The one place where protocol units (tenths of a hertz, "not measured" sentinels, flag bits,
/// days since 1970) become the safety core's values, and back.
extension TelemetrySample {
    /// A TELEMETRY frame as the core sees it: 65535 µm is "not measured".
    public init(_ telemetry: Message.Telemetry) {
        self.init(
            peakProtrusionUm: telemetry.peakProtrusionUm == 0xFFFF ? nil : Int(telemetry.peakProtrusionUm),
            strokeRateHz: Double(telemetry.strokeRateDhz) / 10,
            motorOn: telemetry.flags.contains(.motorOn),
            pedalPressed: telemetry.flags.contains(.pedalPressed),
            estopPressed: telemetry.flags.contains(.estopPressed),
            cartridgePresent: telemetry.flags.contains(.cartridgePresent),
            penArmed: telemetry.flags.contains(.armed),
            penFaultLatched: telemetry.flags.contains(.faultLatched))
    }
}

extension PenIdentity {
    /// The pen as HELLO_REPLY describes it.
    public init(_ reply: Message.HelloReply) {
        self.init(
            serial: reply.serial.string, protocolMajor: Int(reply.protoMajor), protocolMinor: Int(reply.protoMinor),
            hasDepthSensor: reply.capabilities.contains(.depthSensor))
    }
}

extension CartridgeInfo {
    /// The cartridge a CARTRIDGE frame reports; nil for a removal. Expiry 0 is "unknown".
    public init?(_ cartridge: Message.Cartridge) {
        guard cartridge.event != .removed else { return nil }
        self.init(
            id: cartridge.cartridgeID.string, needleCount: Int(cartridge.needleCount),
            needleDiameterUm: Int(cartridge.needleDiameterUm), lot: cartridge.lot.string,
            expiryDay: cartridge.expiryDays == 0 ? nil : Int(cartridge.expiryDays))
    }
}

extension Message.SetSetpoints {
    /// The SET_SETPOINTS for a setpoint the core accepted (so it is inside the protocol ranges).
    public init(_ setpoint: Setpoint) {
        self.init(depthUm: UInt16(clamping: setpoint.depthUm), rateDhz: UInt16(clamping: SafetyLimits.deciHertz(setpoint.rateHz)))
    }
}
