/// A reading of a monotonic clock (CLOCK_MONOTONIC, or the simulator's virtual clock).
///
/// The safety core never reads a clock itself: every event carries the time it happened, so a
/// four-hour session can be driven in milliseconds and a wall-clock change can never move
/// session time.
public struct MonotonicInstant: Comparable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = MonotonicInstant(nanoseconds: 0)

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: Self, rhs: Duration) -> Self {
        MonotonicInstant(nanoseconds: lhs.nanoseconds + rhs.totalNanoseconds)
    }

    public static func - (lhs: Self, rhs: Self) -> Duration { .nanoseconds(lhs.nanoseconds - rhs.nanoseconds) }

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
        WallTime(secondsSince1970: lhs.secondsSince1970 + rhs.components.seconds)
    }
}

extension Int64 {
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

extension Duration {
    /// Whole nanoseconds (durations here are far below the 292-year range of Int64).
    public var totalNanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    /// h:mm:ss, the way session time is shown to a technician.
    public var clockText: String {
        let total = components.seconds
        let sign = total < 0 ? "-" : ""
        let seconds = abs(total)
        let minutes = (seconds / 60) % 60
        let secs = seconds % 60
        return "\(sign)\(seconds / 3600):\(minutes < 10 ? "0" : "")\(minutes):\(secs < 10 ? "0" : "")\(secs)"
    }
}
