import Foundation
import Logging
import ServiceLifecycle
import StippleGPIO
import StippleLink
import StippleTransport
import StippleWire
import Synchronization

/// Drives a GPIO pen (`stippled --pen gpio`): requests its lines (the motor line inactive from
/// the first instant), runs the line reader on a thread of its own — edges with the kernel's
/// timestamps into the pen's rules, and the rules' deadman, stall check and telemetry every
/// 5 ms — and hands the supervisor a `GPIOPenLink`, through which every command (stops
/// included) reaches the lines at once. If the lines fail (the chip went away), the link is
/// lost (the supervisor stops, latches and records) and the lines are requested again with
/// backoff; a new link never re-arms (H11).
public struct GPIOPenService: Service {
    public let supervisor: Supervisor
    public let clock: any DaemonClock
    public let settings: GPIOPenSettings
    public let logger: Logger
    public let open: @Sendable () throws -> any GPIOLineIO
    /// How long the reader waits for edges before it looks at the time again.
    public var readerPeriod = Duration.milliseconds(5)

    public init(supervisor: Supervisor, clock: any DaemonClock, settings: GPIOPenSettings, logger: Logger,
                open: (@Sendable () throws -> any GPIOLineIO)? = nil) {
        self.supervisor = supervisor
        self.clock = clock
        self.settings = settings
        self.logger = logger
        if let open {
            self.open = open
        } else {
            self.open = { try LibgpiodLines(settings: settings) }
        }
    }

    public func run() async throws {
        supervisor.startTicking(clock: clock)
        defer { supervisor.stopTicking() }
        // The pen goes down last (services stop in reverse order): the reader ends, and the
        // lines are requested no more.
        await cancelWhenGracefulShutdown { await linking() }
    }

    func linking() async {
        let clock = clock
        let settings = settings
        var reopening = PenReopening(logger: logger, what: "the GPIO pen")
        reopening.level = .error
        await reopening.run(while: { true }) {
            try GPIOPen(lines: try open(), settings: settings, clock: { clock.now() })
        } use: { pen in
            logger.notice("GPIO pen lines requested (motor line inactive)", metadata: ["lines": "\(pen.description)", "pen_serial": "\(settings.serial)"])
            await supervisor.attach(gpio: pen)
            let reason = await read(pen)
            await supervisor.detach(reason: reason)
        }
    }

    /// Runs the line reader until the lines fail or the service stops; returns why.
    func read(_ pen: GPIOPen) async -> String {
        let (stream, continuation) = AsyncStream<MonotonicInstant>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let clock = clock
        let period = readerPeriod
        let reader = ReaderThread(name: "stipple-gpio-reader", step: {
            if try pen.pump(timeout: period) { continuation.yield(clock.now()) }
        }, finished: { continuation.finish() })
        await withTaskCancellationHandler {
            // Each wake-up hands the pen's messages to the supervisor: the stop path.
            for await time in stream { await supervisor.received([], at: time) }
        } onCancel: {
            reader.stop()
        }
        reader.stop()
        return reader.failure ?? "stopped"
    }
}

extension Supervisor {
    /// A GPIO pen's lines are held: start a link to it (HELLO, limits, setpoint — as for any pen).
    public func attach(gpio pen: GPIOPen) {
        attach(GPIOPenTransport(pen), link: { GPIOPenLink(pen: pen) })
    }
}

/// The supervisor holds a transport for every pen; a GPIO pen's carries no bytes (its link
/// drives the lines). Closing it — link lost, shutdown — drives the motor line inactive and
/// gives the lines back to the kernel.
final class GPIOPenTransport: PenTransport {
    let pen: GPIOPen

    init(_ pen: GPIOPen) { self.pen = pen }

    var description: String { pen.description }

    func write(_ bytes: [UInt8]) throws(SystemCallError) {
        if !bytes.isEmpty { throw SystemCallError("write \(description) (a GPIO pen takes no bytes)", errno: EINVAL) }
    }

    func read(timeout: Duration) throws(SystemCallError) -> [UInt8] { [] }

    func close() { pen.close() }
}
