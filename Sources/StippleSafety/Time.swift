// The core's instant and its Duration helpers (`totalNanoseconds`, `wholeSeconds`,
// `milliseconds`, `clockText`) live in StippleWire/MonotonicInstant.swift, so that the simulator
// and the link keep time in the same type. The core's API is stated in StippleWire's types (its
// instant, fault codes, messages); its clients import StippleWire themselves, so the layer they
// lean on is written where they lean on it.
import StippleWire

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
