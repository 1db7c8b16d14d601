#if canImport(Glibc)
import Glibc
import StippleWire

/// CLOCK_MONOTONIC: the one real clock of the daemon, the tools and the pen served on a pty
/// (never the virtual clock of the in-process rigs), as the pen protocol counts time.
public enum MonotonicClock {
    public static func now() -> MonotonicInstant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicInstant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }
}
#endif
