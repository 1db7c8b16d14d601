import StippleTransport
import StippleWire
import Synchronization

/// The in-process pen for a host that reads with a timeout, as from a device (the conformance
/// suite): reading runs the pen's virtual clock 1 ms at a time until the pen says something or
/// the timeout passes, so the whole suite runs in milliseconds. The bytes cross the
/// `InProcessPenTransport`'s `SimLink`, so link faults can be injected there.
public final class VirtualTimePenTransport: PenTransport, Sendable {
    public let inProcess: InProcessPenTransport
    private let clock = Mutex(MonotonicInstant.zero)

    public init(config: PenConfig = PenConfig(), seed: UInt64 = 1) {
        inProcess = InProcessPenTransport(PenSimulator(config: config, seed: seed), seed: seed)
    }

    public var description: String { "sim (virtual time)" }

    /// The pen's clock: zero at power-up, advanced only by `read(timeout:)`.
    public var now: MonotonicInstant { clock.withLock { $0 } }

    public func write(_ bytes: [UInt8]) throws(SystemCallError) { try inProcess.write(bytes) }

    public func read(timeout: Duration) throws(SystemCallError) -> [UInt8] {
        clock.withLock { now in
            let deadline = now + timeout
            var out = inProcess.step(to: now)
            while out.isEmpty && now < deadline {
                now += .milliseconds(1)
                out = inProcess.step(to: now)
            }
            return out
        }
    }

    public func close() {}
}
