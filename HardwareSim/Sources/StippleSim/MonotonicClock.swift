#if canImport(Glibc)
import Glibc
import StippleWire

/// CLOCK_MONOTONIC: real time, for a pen served on a pty and a host talking to a device (never
/// the virtual clock of the in-process rigs).
public enum MonotonicClock {
    public static func now() -> MonotonicInstant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicInstant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }
}
#endif
