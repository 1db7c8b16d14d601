import Foundation
import Logging
import ServiceLifecycle
import StippleSafety
import StippleTransport
import StippleWire
import Synchronization

/// Keeps a link to a real pen (or a pty): opens the device, has the supervisor's own thread
/// (`SupervisorLoop`) read it the moment bytes arrive — stamped with the monotonic time and
/// handled in the same call, so the stop path never changes threads — ticks the supervisor every
/// 5 ms, and reopens the device with backoff when it goes away. A reconnect is a new link: it
/// never re-arms (H11).
public struct PenLinkService: Service {
    public let supervisor: Supervisor
    public let clock: any DaemonClock
    public let open: @Sendable () throws -> any PenTransport
    public let logger: Logger
    public var tick = Duration.milliseconds(5)
    let stopping = Stopping()

    public init(supervisor: Supervisor, clock: any DaemonClock, logger: Logger, open: @escaping @Sendable () throws -> any PenTransport) {
        self.supervisor = supervisor
        self.clock = clock
        self.open = open
        self.logger = logger
    }

    public func run() async throws {
        supervisor.startTicking(every: tick, clock: clock)
        defer { supervisor.stopTicking() }
        // The pen link goes down last (services stop in reverse order): end the reading in
        // progress and open the device no more.
        await withGracefulShutdownHandler {
            await linking()
        } onGracefulShutdown: {
            stopping.stop()
        }
    }

    /// Ends the reading in progress, and any later one at once, when the service stops.
    final class Stopping: Sendable {
        private let state = Mutex<(stopped: Bool, reading: Reading?)>((false, nil))

        var isStopped: Bool { state.withLock { $0.stopped } }

        func stop() {
            state.withLock { $0.stopped = true; return $0.reading }?.finish("stopped")
        }

        /// Registers the reading in progress; finishes it at once if the service has stopped.
        func register(_ reading: Reading?) {
            let stopped = state.withLock { state in
                state.reading = reading
                return state.stopped
            }
            if stopped { reading?.finish("stopped") }
        }
    }

    func linking() async {
        await PenReopening(logger: logger, what: "the pen").run(while: { !stopping.isStopped }) {
            // Released to a bring-up tool (`stipplectl selftest`): leave the device alone.
            await supervisor.bringUp.waitUntilHeld()
            return try open()
        } use: { transport in
            await supervisor.attach(transport)
            let reason = await read(transport)
            await supervisor.detach(reason: reason)
        }
    }

    /// Reads until the device fails; returns why. A device with a descriptor is read by the
    /// supervisor's own thread; anything else by a reader thread of its own.
    func read(_ transport: any PenTransport) async -> String {
        guard let descriptor = transport.descriptor else { return await readOnThread(transport) }
        let supervisor = supervisor
        let clock = clock
        let bringUp = supervisor.bringUp
        let reading = Reading(loop: supervisor.loop)
        defer { stopping.register(nil) }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                reading.begin(continuation)
                stopping.register(reading)
                supervisor.loop.watch(descriptor: descriptor) {
                    if bringUp.releaseRequested { return reading.finish("released to a bring-up tool") }
                    do {
                        let bytes = try transport.read(timeout: .zero)
                        let time = clock.now()
                        if !bytes.isEmpty { supervisor.assumeIsolated { $0.received(bytes, at: time) } }
                    } catch {
                        reading.finish("\(error)")
                    }
                }
                // Finished (stopped, or released) before the watch was in place: take it away.
                if reading.isFinished { supervisor.loop.unwatch() }
                // A release asked for while no byte comes is noticed within 50 ms.
                Task {
                    while !reading.isFinished {
                        try? await Task.sleep(for: .milliseconds(50))
                        if bringUp.releaseRequested { reading.finish("released to a bring-up tool") }
                    }
                }
            }
        } onCancel: {
            reading.finish("stopped")
        }
    }

    /// One device's reading on the supervisor's thread, and how it ended.
    final class Reading: Sendable {
        let loop: SupervisorLoop
        private let ended = Mutex<CheckedContinuation<String, Never>?>(nil)
        private let finished = Atomic<Bool>(false)

        init(loop: SupervisorLoop) { self.loop = loop }

        var isFinished: Bool { finished.load(ordering: .relaxed) }

        func begin(_ continuation: CheckedContinuation<String, Never>) {
            ended.withLock { $0 = continuation }
            if isFinished { ended.withLock { $0.take() }?.resume(returning: "stopped") }
        }

        func finish(_ reason: String) {
            guard !finished.exchange(true, ordering: .relaxed) else { return }
            loop.unwatch()
            ended.withLock { $0.take() }?.resume(returning: reason)
        }
    }

    /// Reads on a thread of its own (a transport without a descriptor).
    func readOnThread(_ transport: any PenTransport) async -> String {
        let (stream, continuation) = AsyncStream<([UInt8], MonotonicInstant)>.makeStream()
        let clock = clock
        let bringUp = supervisor.bringUp
        let stopping = stopping
        let reader = ReaderThread(name: "stipple-pen-reader", keepGoing: { !bringUp.releaseRequested && !stopping.isStopped }, step: {
            let bytes = try transport.read(timeout: .milliseconds(50))
            if !bytes.isEmpty { continuation.yield((bytes, clock.now())) }
        }, finished: { continuation.finish() })
        await withTaskCancellationHandler {
            for await (bytes, time) in stream {
                await supervisor.received(bytes, at: time)
            }
        } onCancel: {
            reader.stop()
        }
        reader.stop()
        return reader.failure ?? (bringUp.releaseRequested ? "released to a bring-up tool" : "stopped")
    }
}
