#if canImport(Glibc)
import Glibc
#endif
import Foundation
import StippleSafety
import StippleTransport
import StippleWire

/// Where the daemon's time comes from. The safety core never reads a clock: the supervisor
/// stamps every event with `now()`.
public protocol DaemonClock: Sendable {
    /// Monotonic time for session time, timeouts and the link.
    func now() -> MonotonicInstant
    /// Calendar time for records, expiry and the gap rule.
    func wallNow() -> WallTime
    /// Identifies the boot the monotonic readings belong to.
    var bootID: String { get }
    /// Whether this clock runs faster than real time (only ever with the simulator).
    var isAccelerated: Bool { get }
    /// A short description for logs and status ("real", "accelerated x60").
    var description: String { get }
}

/// CLOCK_MONOTONIC and the system's wall clock: the only clock a real pen ever runs on.
public struct SystemClock: DaemonClock {
    public let bootID: String

    public init() {
        bootID = Self.readBootID()
    }

    public func now() -> MonotonicInstant { Self.monotonicNow() }

    public func wallNow() -> WallTime { WallTime(secondsSince1970: Int64(Date().timeIntervalSince1970.rounded(.down))) }

    public var isAccelerated: Bool { false }
    public var description: String { "real" }

    public static func monotonicNow() -> MonotonicInstant { MonotonicClock.now() }

    /// Linux's per-boot id; a constant fallback keeps restarts on one boot exact elsewhere.
    static func readBootID() -> String {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown-boot"
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Simulated time running `factor` times faster than real time, for test rigs with the
/// simulator only (`--clock accelerated=N`; `stippled` refuses it with a real pen).
///
/// Its origin is kept in the state directory, so that a restarted daemon continues the same
/// virtual timeline (the same "boot"): a session's four hours survive SIGKILL exactly as on the
/// real clock. Virtual wall time runs from the real wall time at the origin.
public struct AcceleratedClock: DaemonClock {
    public let factor: Int
    let originMonotonic: MonotonicInstant
    let originWall: WallTime
    public let bootID: String

    /// Reads (or creates) the origin in `stateFile`.
    public init(factor: Int, stateFile: String) throws {
        self.factor = factor
        let realBoot = SystemClock.readBootID()
        if let text = try? String(contentsOfFile: stateFile, encoding: .utf8) {
            let parts = text.split(separator: " ").map(String.init)
            if parts.count == 4, parts[0] == realBoot, Int(parts[3]) == factor,
               let mono = Int64(parts[1]), let wall = Int64(parts[2]) {
                originMonotonic = MonotonicInstant(nanoseconds: mono)
                originWall = WallTime(secondsSince1970: wall)
                bootID = "accelerated-\(realBoot)-\(mono)"
                return
            }
        }
        originMonotonic = SystemClock.monotonicNow()
        originWall = SystemClock().wallNow()
        bootID = "accelerated-\(realBoot)-\(originMonotonic.nanoseconds)"
        try "\(realBoot) \(originMonotonic.nanoseconds) \(originWall.secondsSince1970) \(factor)"
            .write(toFile: stateFile, atomically: true, encoding: .utf8)
    }

    public func now() -> MonotonicInstant {
        let real = SystemClock.monotonicNow() - originMonotonic
        return MonotonicInstant(nanoseconds: Int64(saturating: real.attoseconds / 1_000_000_000 * Int128(factor)))
    }

    public func wallNow() -> WallTime { originWall + (now() - .zero) }

    public var isAccelerated: Bool { true }
    public var description: String { "accelerated x\(factor)" }
}

extension Int64 {
    init(saturating value: Int128) {
        self = value > Int128(Int64.max) ? .max : value < Int128(Int64.min) ? .min : Int64(value)
    }
}
