import Foundation
import Logging
import ServiceLifecycle
import StippleSafety
import StippleTransport
import Synchronization

/// Keeps a link to a real pen (or a pty): opens the device, reads it on a thread of its own
/// (stamping each read with the monotonic time it arrived), feeds the supervisor, ticks it every
/// 5 ms, and reopens the device with backoff when it goes away. A reconnect is a new link: it
/// never re-arms (H11).
public struct PenLinkService: Service {
    public let supervisor: Supervisor
    public let clock: any DaemonClock
    public let open: @Sendable () throws -> any PenTransport
    public let logger: Logger
    public var tick = Duration.milliseconds(5)

    public init(supervisor: Supervisor, clock: any DaemonClock, logger: Logger, open: @escaping @Sendable () throws -> any PenTransport) {
        self.supervisor = supervisor
        self.clock = clock
        self.open = open
        self.logger = logger
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await ticking() }
            group.addTask { await linking() }
            try await group.next()
            group.cancelAll()
        }
    }

    func ticking() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try await Task.sleep(for: tick)
            await supervisor.step(at: clock.now())
        }
    }

    func linking() async {
        var backoff = Duration.milliseconds(250)
        var reported = ""
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // Released to a bring-up tool (`stipplectl selftest`): leave the device alone.
            await supervisor.bringUp.waitUntilHeld()
            let transport: any PenTransport
            do {
                transport = try open()
            } catch {
                let text = "\(error)"
                if text != reported {
                    logger.warning("cannot open the pen; retrying", metadata: ["error": "\(text)"])
                    reported = text
                }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
                continue
            }
            backoff = .milliseconds(250)
            reported = ""
            await supervisor.attach(transport)
            let reason = await read(transport)
            await supervisor.detach(reason: reason)
        }
    }

    /// Reads until the device fails; returns why.
    func read(_ transport: any PenTransport) async -> String {
        let (stream, continuation) = AsyncStream<([UInt8], MonotonicInstant)>.makeStream()
        let failure = Mutex<String?>(nil)
        let stop = Atomic<Bool>(false)
        let clock = clock
        let bringUp = supervisor.bringUp
        let thread = Thread {
            while !stop.load(ordering: .relaxed) && !bringUp.releaseRequested {
                do {
                    let bytes = try transport.read(timeout: .milliseconds(50))
                    if !bytes.isEmpty { continuation.yield((bytes, clock.now())) }
                } catch {
                    failure.withLock { $0 = "\(error)" }
                    break
                }
            }
            continuation.finish()
        }
        thread.name = "stipple-pen-reader"
        thread.start()
        await withTaskCancellationHandler {
            for await (bytes, time) in stream {
                await supervisor.received(bytes, at: time)
            }
        } onCancel: {
            stop.store(true, ordering: .relaxed)
        }
        stop.store(true, ordering: .relaxed)
        return failure.withLock { $0 } ?? (bringUp.releaseRequested ? "released to a bring-up tool" : "stopped")
    }
}
