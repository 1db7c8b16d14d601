import Foundation
import StippleTransport
import StippleWire
import Synchronization

/// What the engineers' bring-up calls need beside the supervisor: a tap on the bytes of the pen
/// link (for `trace` and `raw`), and the gate that lets the daemon release a serial port to a
/// tool that talks to the pen directly (`stipplectl selftest`) and take it back afterwards.
///
/// The tap costs one atomic load per read and write while nobody traces.
public final class BringUp: Sendable {
    /// Bytes on the link, as they went: which way, when (the daemon's monotonic clock), what.
    public struct Chunk: Sendable {
        public enum Direction: String, Sendable { case toPen = "to_pen", fromPen = "from_pen" }
        public var direction: Direction
        public var at: MonotonicInstant
        public var bytes: [UInt8]
    }

    /// Where the serial port stands.
    public enum PortState: Sendable, Equatable {
        /// The daemon drives the pen (or is trying to open it).
        case held
        /// A release was asked for: the reader lets go at its next poll.
        case releasing
        /// Closed and left alone until `reclaim` or `until`.
        case released(until: ContinuousClock.Instant)
    }

    private struct State: Sendable {
        var nextID = 0
        var subscribers: [Int: @Sendable (Chunk) -> Void] = [:]
        var port = PortState.held
        /// The device path when the backend is a serial port (nil: the in-process simulator).
        var releasablePath: String?
    }

    private let state = Mutex(State())
    private let tracing = Atomic<Bool>(false)

    public init() {}

    // MARK: - The tap

    /// A transport whose reads and writes also go to the tap. `releasable`: a serial device the
    /// daemon may hand over to a bring-up tool.
    public func tapped(_ transport: any PenTransport, releasable: Bool) -> any PenTransport {
        if releasable { state.withLock { $0.releasablePath = transport.description } }
        return TappedTransport(inner: transport, bringUp: self)
    }

    /// Records bytes (the simulator backend's reads, which do not pass a transport's `read`).
    @inline(__always)
    public func record(_ direction: Chunk.Direction, _ bytes: [UInt8]) {
        guard tracing.load(ordering: .relaxed), !bytes.isEmpty else { return }
        let chunk = Chunk(direction: direction, at: SystemClock.monotonicNow(), bytes: bytes)
        state.withLock { state in for sink in state.subscribers.values { sink(chunk) } }
    }

    /// Every chunk from now on, until the stream is dropped. A slow reader loses the oldest.
    public func subscribe() -> AsyncStream<Chunk> {
        let (stream, continuation) = AsyncStream<Chunk>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        let id = add { continuation.yield($0) }
        continuation.onTermination = { [weak self] _ in self?.remove(id) }
        return stream
    }

    /// Collects chunks until `stop()` (a `raw` call's answer).
    public final class Recording: Sendable {
        let chunks = Mutex<[Chunk]>([])
        let stopper: @Sendable () -> Void
        init(stopper: @escaping @Sendable () -> Void) { self.stopper = stopper }
        /// Stops collecting; returns what came.
        public func stop() -> [Chunk] {
            stopper()
            return chunks.withLock { $0 }
        }
    }

    public func record() -> Recording {
        let box = Mutex<Int?>(nil)
        let recording = Recording { [weak self] in if let id = box.withLock({ $0 }) { self?.remove(id) } }
        let id = add { chunk in recording.chunks.withLock { $0.append(chunk) } }
        box.withLock { $0 = id }
        return recording
    }

    private func add(_ sink: @escaping @Sendable (Chunk) -> Void) -> Int {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = sink
            tracing.store(true, ordering: .relaxed)
            return id
        }
    }

    private func remove(_ id: Int) {
        state.withLock { state in
            state.subscribers.removeValue(forKey: id)
            tracing.store(!state.subscribers.isEmpty, ordering: .relaxed)
        }
    }

    // MARK: - Releasing the port

    public var portState: PortState { state.withLock { $0.port } }
    public var releasablePath: String? { state.withLock { $0.releasablePath } }

    /// Whether the pen link's reader should let go of the port now.
    public var releaseRequested: Bool {
        state.withLock { state in
            if case .held = state.port { return false }
            return true
        }
    }

    func requestRelease(for duration: Duration) {
        state.withLock { $0.port = .released(until: .now + duration) }
    }

    public func reclaim() {
        state.withLock { $0.port = .held }
    }

    /// Waits while the port is released (the pen link calls this before it opens the device);
    /// a release runs out by itself at its deadline, so a crashed tool never keeps the pen.
    public func waitUntilHeld() async {
        while true {
            let wait: Bool = state.withLock { state in
                switch state.port {
                case .held: return false
                case .releasing: return true
                case .released(let until):
                    if ContinuousClock.now >= until {
                        state.port = .held
                        return false
                    }
                    return true
                }
            }
            guard wait, !Task.isCancelled else { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// A transport that copies what it reads and writes to the bring-up tap.
final class TappedTransport: PenTransport, Sendable {
    let inner: any PenTransport
    let bringUp: BringUp

    init(inner: any PenTransport, bringUp: BringUp) {
        self.inner = inner
        self.bringUp = bringUp
    }

    var description: String { inner.description }

    var descriptor: Int32? { inner.descriptor }

    func write(_ bytes: [UInt8]) throws(SystemCallError) {
        try inner.write(bytes)
        bringUp.record(.toPen, bytes)
    }

    func read(timeout: Duration) throws(SystemCallError) -> [UInt8] {
        let bytes = try inner.read(timeout: timeout)
        bringUp.record(.fromPen, bytes)
        return bytes
    }

    func close() { inner.close() }
}
