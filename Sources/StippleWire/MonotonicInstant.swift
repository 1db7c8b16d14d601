/// A reading of a monotonic clock (CLOCK_MONOTONIC, or the simulator's virtual clock).
///
/// Stipple's one representation of time, from the codec up: a point in time is this instant, an
/// interval is a Swift `Duration`. The safety core never reads a clock itself: every event
/// carries the time it happened, so a four-hour session can be driven in milliseconds and a
/// wall-clock change can never move session time. The simulator's virtual clock is the same
/// type, so a simulated pen and the core can be put on one timeline. The protocol's millisecond
/// constants are `Duration`s in `ProtocolTiming` (generated beside the integers); a duration goes
/// back to protocol milliseconds through `Duration.milliseconds`; the pen's 32-bit `pen_time_us`
/// is derived from an instant where a frame is built.
///
/// Arithmetic saturates instead of trapping: an instant comes from outside (a persisted record,
/// a test rig, a caller) and no value of it may stop the process. It lives in the codec module,
/// the bottom of the stack, so that every layer above can share it without Foundation.
public struct MonotonicInstant: Comparable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var nanoseconds: Int64

    @inlinable
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = MonotonicInstant(nanoseconds: 0)

    @inlinable
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Saturates at the ends of the Int64 range. The simulator adds a duration to an instant
    /// several times per simulated stroke, so the usual case is one 64-bit addition; only an
    /// overflow takes the pinned result.
    @inlinable @inline(__always)
    public static func + (lhs: Self, rhs: Duration) -> Self {
        let step = rhs.totalNanoseconds
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(step)
        return MonotonicInstant(nanoseconds: overflow ? (step < 0 ? .min : .max) : sum)
    }

    @inlinable
    public static func += (lhs: inout Self, rhs: Duration) { lhs = lhs + rhs }

    /// Exact for every pair of instants (the difference of two Int64s fits a Duration).
    @inlinable @inline(__always)
    public static func - (lhs: Self, rhs: Self) -> Duration {
        let (difference, overflow) = lhs.nanoseconds.subtractingReportingOverflow(rhs.nanoseconds)
        if !overflow { return .nanoseconds(difference) }
        return wideDifference(lhs, rhs)
    }

    @usableFromInline
    static func wideDifference(_ lhs: Self, _ rhs: Self) -> Duration {
        .nanoseconds(Int128(lhs.nanoseconds) - Int128(rhs.nanoseconds))
    }

    public var description: String { "t+\(Duration.nanoseconds(nanoseconds).clockText)" }
}

extension Int64 {
    /// `value`, pinned to the ends of Int64 instead of trapping.
    @inlinable
    public init(saturating value: Int128) {
        self = value > Int128(Int64.max) ? .max : value < Int128(Int64.min) ? .min : Int64(value)
    }
}

/// Durations may come from records and configuration files, so nothing reads
/// `Duration.components`, which traps beyond Int64 seconds: everything goes through the exact
/// `attoseconds` count.
extension Duration {
    /// Whole seconds, rounded toward zero.
    @inlinable
    public var wholeSeconds: Int128 { attoseconds / 1_000_000_000_000_000_000 }

    /// Whole nanoseconds, rounded toward zero and pinned to the Int64 range (292 years either
    /// way). Durations under about nine seconds — every step of a simulation — take one 64-bit
    /// division instead of a 128-bit one.
    @inlinable
    public var totalNanoseconds: Int64 {
        let attoseconds = self.attoseconds
        let low = Int64(truncatingIfNeeded: attoseconds)
        if Int128(low) == attoseconds { return low / 1_000_000_000 }
        return Self.pinnedNanoseconds(attoseconds)
    }

    /// The 128-bit path, out of line so that the fast path stays small enough to inline.
    @usableFromInline
    static func pinnedNanoseconds(_ attoseconds: Int128) -> Int64 {
        Int64(saturating: attoseconds / 1_000_000_000)
    }

    /// Whole milliseconds, the unit of the protocol's timing fields.
    @inlinable
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
