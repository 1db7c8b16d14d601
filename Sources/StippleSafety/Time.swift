/// A reading of a monotonic clock (CLOCK_MONOTONIC, or the simulator's virtual clock).
///
/// The safety core never reads a clock itself: every event carries the time it happened, so a
/// four-hour session can be driven in milliseconds and a wall-clock change can never move
/// session time. The core's one representation of time is this instant plus `Duration`;
/// conversions to and from protocol milliseconds happen in `Duration.milliseconds` only.
///
/// Arithmetic saturates instead of trapping: an instant comes from outside (a persisted record,
/// a test rig, a caller) and no value of it may stop the process.
public struct MonotonicInstant: Comparable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = MonotonicInstant(nanoseconds: 0)

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: Self, rhs: Duration) -> Self {
        MonotonicInstant(nanoseconds: Int64(saturating: Int128(lhs.nanoseconds) + Int128(rhs.totalNanoseconds)))
    }

    /// Exact for every pair of instants (the difference of two Int64s fits a Duration).
    public static func - (lhs: Self, rhs: Self) -> Duration {
        .nanoseconds(Int128(lhs.nanoseconds) - Int128(rhs.nanoseconds))
    }

    public var description: String { "t+\(Duration.nanoseconds(nanoseconds).clockText)" }
}

/// Wall-clock time in seconds since 1970-01-01 UTC. Used only for what is about the calendar —
/// cartridge expiry, the days between a client's sessions, and records — never to measure how
/// long the needle has run.
public struct WallTime: Comparable, Hashable, Sendable, Codable {
    public var secondsSince1970: Int64

    public init(secondsSince1970: Int64) { self.secondsSince1970 = secondsSince1970 }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.secondsSince1970 < rhs.secondsSince1970 }

    /// Days since 1970-01-01 (UTC), the unit of cartridge expiry dates.
    public var day: Int { Int(secondsSince1970.floorDivided(by: 86_400)) }

    public static func + (lhs: Self, rhs: Duration) -> Self {
        WallTime(secondsSince1970: Int64(saturating: Int128(lhs.secondsSince1970) + rhs.wholeSeconds))
    }

    /// The time between two wall times, pinned to ±292 billion years.
    public static func - (lhs: Self, rhs: Self) -> Duration {
        .seconds(Int64(saturating: Int128(lhs.secondsSince1970) - Int128(rhs.secondsSince1970)))
    }
}

extension Int64 {
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }

    init(saturating value: Int128) {
        self = value > Int128(Int64.max) ? .max : value < Int128(Int64.min) ? .min : Int64(value)
    }
}

extension Int {
    /// `self - other`, pinned to the ends of Int instead of trapping.
    func saturatingMinus(_ other: Int) -> Int {
        let (result, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : result
    }

    /// `self + other`, pinned to the ends of Int instead of trapping.
    func saturatingPlus(_ other: Int) -> Int {
        let (result, overflow) = addingReportingOverflow(other)
        return overflow ? (other < 0 ? .min : .max) : result
    }
}

/// Durations here may come from records and configuration files, so nothing reads
/// `Duration.components`, which traps beyond Int64 seconds: everything goes through the exact
/// `attoseconds` count.
extension Duration {
    /// Whole seconds, rounded toward zero.
    public var wholeSeconds: Int128 { attoseconds / 1_000_000_000_000_000_000 }

    /// Whole nanoseconds, pinned to the Int64 range (292 years either way).
    public var totalNanoseconds: Int64 { Int64(saturating: attoseconds / 1_000_000_000) }

    /// Whole milliseconds, the unit of the protocol's timing fields.
    public var milliseconds: Int64 { totalNanoseconds / 1_000_000 }

    /// h:mm:ss, the way session time is shown to a technician.
    public var clockText: String {
        let total = wholeSeconds
        let sign = total < 0 ? "-" : ""
        let seconds = total.magnitude
        let minutes = (seconds / 60) % 60
        let secs = seconds % 60
        return "\(sign)\(seconds / 3600):\(minutes < 10 ? "0" : "")\(minutes):\(secs < 10 ? "0" : "")\(secs)"
    }
}
