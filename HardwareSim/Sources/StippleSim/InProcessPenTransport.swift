import StippleTransport
import StippleWire
import Synchronization

/// The simulated pen as a `PenTransport`, for the daemon's `sim` backend and its tests: the
/// daemon's link and codec talk to it exactly as to a serial pen. The bytes pass through a
/// `SimLink`, so a scenario's link faults (lost bytes, flipped bits, garbage, latency, a pulled
/// cable) reach the daemon as they would from a damaged cable. Whoever owns the clock calls
/// `step(to:)` and hands the pen's bytes to the host.
public final class InProcessPenTransport: PenTransport, Sendable {
    private struct World: Sendable {
        var pen: PenSimulator
        var link: SimLink
        var now: MonotonicInstant
    }

    private let world: Mutex<World>

    public init(_ pen: PenSimulator, seed: UInt64 = 1) {
        world = Mutex(World(pen: pen, link: SimLink(seed: seed), now: pen.now))
    }

    public var description: String { "sim" }

    /// Runs `body` on the pen under its lock (the host may write from another thread).
    public func withPen<T>(_ body: (inout PenSimulator) -> T) -> T { world.withLock { body(&$0.pen) } }

    /// Applies a link fault from now on.
    public func inject(_ fault: LinkFault) { world.withLock { $0.link.apply(fault, at: $0.now) } }

    /// Runs the pen and the link up to `instant` (the pen's own timeline, zero at power-up) and
    /// returns what reaches the host.
    public func step(to instant: MonotonicInstant) -> [UInt8] {
        world.withLock { world in
            world.now = max(world.now, instant)
            world.pen.advance(to: world.now)
            let toPen = world.link.deliverToPen(upTo: world.now)
            if !toPen.isEmpty { world.pen.receive(toPen) }
            let out = world.pen.takeOutput()
            if !out.isEmpty { world.link.penSends(out, at: world.now) }
            world.link.expire(at: world.now)
            return world.link.deliverToHost(upTo: world.now)
        }
    }

    public func write(_ bytes: [UInt8]) throws(SystemCallError) {
        world.withLock { $0.link.hostSends(bytes, at: $0.now) }
    }

    /// Not used: `step(to:)` hands the pen's output to the host.
    public func read(timeout: Duration) throws(SystemCallError) -> [UInt8] { [] }

    public func close() {}
}
