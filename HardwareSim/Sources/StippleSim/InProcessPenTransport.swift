import StippleTransport
import StippleWire
import Synchronization

/// The simulated pen as a `PenTransport`, for the daemon's `sim` backend and its tests: the
/// daemon's link and codec talk to it exactly as to a serial pen. Writes reach the pen at once;
/// whoever steps the pen's time (`withPen { $0.advance(to:) }`) carries its output to the host.
public final class InProcessPenTransport: PenTransport, Sendable {
    private let pen: Mutex<PenSimulator>

    public init(_ pen: PenSimulator) { self.pen = Mutex(pen) }

    public var description: String { "sim" }

    /// Runs `body` on the pen under its lock (the host may write from another thread).
    public func withPen<T>(_ body: (inout PenSimulator) -> T) -> T { pen.withLock { body(&$0) } }

    public func write(_ bytes: [UInt8]) throws(SystemCallError) { pen.withLock { $0.receive(bytes) } }

    /// Not used: the stepping loop hands the pen's output to the host.
    public func read(timeout: Duration) throws(SystemCallError) -> [UInt8] { [] }

    public func close() {}
}
