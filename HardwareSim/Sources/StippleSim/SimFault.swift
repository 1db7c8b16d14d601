import StippleWire

/// Faults the simulator can inject into the pen itself. Link faults (bytes lost, flipped,
/// delayed) belong to the link: see `LinkFault`.
public enum PenFault: Hashable, Sendable {
    /// The next `strokes` strokes protrude `extraUm` beyond the setpoint.
    case overDepth(extraUm: Int, strokes: Int)
    /// The needle drifts deeper by `umPerSecond` while the motor runs.
    case depthDrift(umPerSecond: Double)
    /// The depth sensor repeats one value (nil: the last reading) whatever the needle does.
    case depthSensorStuck(valueUm: Int?)
    /// The depth sensor stops giving readings.
    case depthSensorDropout
    /// The motor controller fails and drives the motor at `hz`.
    case rateRunaway(hz: Double)
    /// The mechanism jams: the motor is driven but stops turning.
    case stall
    /// The motor draws `ma` more than it should.
    case overCurrent(ma: Int)
    /// The pen heats `dc` (0.1 °C) above what the load explains.
    case overTemperature(dc: Int)
    /// The cartridge is pulled out of the slot.
    case cartridgeRemoved
    /// The e-stop button is pressed (and held).
    case estopPressed
    /// The firmware stops answering and sending; the motor keeps its last drive until the
    /// watchdog resets the pen.
    case firmwareHang
    /// The pen resets (brown-out, watchdog, ...) and comes back in `boot`, disarmed.
    case firmwareReset(ResetCause)
    /// From the next HELLO on, the pen speaks protocol `major`.0.
    case versionMismatch(major: Int)
    /// A cartridge goes into the slot (a reused, expired or wrong-size one, in the scenarios).
    case insertCartridge(SimCartridge)
    /// A hostile test double, not a firmware behaviour: the pen acknowledges MOTOR_STOP and
    /// DISARM and keeps the motor running. ESTOP still stops it (issue 15 item 9: the daemon
    /// must escalate to ESTOP and latch `pen_unresponsive`).
    case ignoresStops
}

/// Faults of the byte link between host and pen, applied by `SimLink`.
public enum LinkFault: Hashable, Sendable {
    public enum Direction: String, Hashable, Sendable, Codable { case toPen = "to_pen", toHost = "to_host", both }
    /// Each byte is lost with `probability` for `duration`.
    case byteLoss(probability: Double, direction: Direction, duration: Duration)
    /// Each bit of each byte flips with `probability` for `duration`.
    case bitFlips(probability: Double, direction: Direction, duration: Duration)
    /// `count` random bytes are inserted into the stream.
    case garbageBurst(count: Int, direction: Direction)
    /// Every byte is delayed by this much (from now on; zero removes it).
    case latency(Duration)
    /// Nothing gets through either way for `duration` (a pulled cable, a USB re-enumeration).
    case disconnect(duration: Duration)
}

/// Everything `stipple-sim list-faults` prints, and the names scenario files use.
public enum FaultCatalogue {
    public struct Entry: Sendable {
        public let name: String
        public let parameters: String
        public let summary: String
    }

    public static let entries: [Entry] = [
        Entry(name: "over_depth", parameters: "extra_um (default 400), strokes (default 1)", summary: "strokes protrude beyond the setpoint; the pen must stop within the first one over its trip (H1)"),
        Entry(name: "depth_drift", parameters: "um_per_s (default 50)", summary: "the needle creeps deeper while running (H1)"),
        Entry(name: "depth_sensor_stuck", parameters: "value_um (default: last reading)", summary: "the depth sensor repeats one value; the pen's plausibility check faults depth_sensor"),
        Entry(name: "depth_sensor_dropout", parameters: "", summary: "the depth sensor stops reading; the pen faults depth_sensor"),
        Entry(name: "rate_runaway", parameters: "hz (default 190)", summary: "the motor controller runs away (H3)"),
        Entry(name: "stall", parameters: "", summary: "the mechanism jams while driven (H3)"),
        Entry(name: "over_current", parameters: "ma (default 2000)", summary: "the motor draws too much current (H16)"),
        Entry(name: "over_temperature", parameters: "dc (default 500, in 0.1 degC)", summary: "the pen overheats (H16)"),
        Entry(name: "cartridge_removed", parameters: "", summary: "the cartridge is pulled out (H10)"),
        Entry(name: "estop_pressed", parameters: "", summary: "the e-stop button is pressed and held (H12)"),
        Entry(name: "firmware_hang", parameters: "", summary: "the firmware stops answering; the watchdog resets it (H5, H6)"),
        Entry(name: "firmware_reset", parameters: "cause: power_on|brownout|watchdog|software|pin (default brownout)", summary: "the pen resets and comes back disarmed (H11)"),
        Entry(name: "version_mismatch", parameters: "major (default 2)", summary: "the pen speaks another protocol major from the next HELLO (H17)"),
        Entry(name: "ignores_stops", parameters: "", summary: "a hostile pen: acknowledges MOTOR_STOP and DISARM and keeps stroking; only ESTOP stops it (the daemon escalates)"),
        Entry(name: "reused_cartridge", parameters: "id (default SIM-CART-0001)", summary: "a cartridge already used is inserted (H9; the daemon's ledger refuses it)"),
        Entry(name: "expired_cartridge", parameters: "id, expiry_days (default 19000)", summary: "an expired cartridge is inserted (H9; the daemon refuses it)"),
        Entry(name: "wrong_size_cartridge", parameters: "needles (default 5), diameter_um (default 350)", summary: "a non-conforming cartridge is inserted; the pen refuses to arm (H9)"),
        Entry(name: "byte_loss", parameters: "probability (default 0.01), direction to_pen|to_host|both, duration_ms", summary: "bytes vanish on the link (H7)"),
        Entry(name: "bit_flips", parameters: "probability (per bit, default 0.001), direction, duration_ms", summary: "bits flip on the link (H7)"),
        Entry(name: "garbage_burst", parameters: "count (default 64), direction", summary: "random bytes appear on the link (H7)"),
        Entry(name: "latency", parameters: "ms (default 30)", summary: "every byte arrives late"),
        Entry(name: "disconnect", parameters: "duration_ms (default 1000)", summary: "the cable is pulled, then reconnected (H5)"),
    ]
}
