import Logging
import StippleWire

/// How long to wait before the next attempt at a device that failed to open: 250 ms, doubling up
/// to 5 s, back to 250 ms after a success. Shared by every pen backend, so a pen that is
/// unplugged, rebooting or held by another program is retried the same way everywhere.
struct Backoff: Sendable {
    static let initial = Duration.milliseconds(250)
    static let maximum = Duration.seconds(5)
    private(set) var delay = Backoff.initial

    /// The delay to wait now; the next one is longer.
    mutating func next() -> Duration {
        defer { delay = min(delay * 2, Self.maximum) }
        return delay
    }

    mutating func reset() { delay = Self.initial }
}

/// The reconnect loop of a pen backend: open the device, hand it over until its link ends, open
/// it again — with `Backoff` while it cannot be opened, logging each new error once (a pen left
/// unplugged does not fill the journal). A new link is a new handshake: it never re-arms (H11).
struct PenReopening {
    let logger: Logger
    /// What is opened, for the log ("the pen", "the GPIO pen").
    let what: String
    var level = Logger.Level.warning

    /// Runs until `shouldRun` says no (checked before every attempt) or the task is cancelled.
    func run<Device>(while shouldRun: () -> Bool,
                     open: () async throws -> Device,
                     use: (Device) async -> Void) async {
        var backoff = Backoff()
        var reported = ""
        while !Task.isCancelled && shouldRun() {
            let device: Device
            do {
                device = try await open()
            } catch {
                let text = "\(error)"
                if text != reported {
                    logger.log(level: level, "cannot open \(what); retrying", metadata: ["error": "\(text)"])
                    reported = text
                }
                try? await Task.sleep(for: backoff.next())
                continue
            }
            backoff.reset()
            reported = ""
            await use(device)
        }
    }
}

extension Supervisor {
    /// The supervisor's timer — retransmissions, heartbeats, silence, session time, presence —
    /// every `period` on the supervisor's own thread, until `stopTicking()`. Every pen backend
    /// uses it; a tick is a call on that thread, not a task hopping onto it.
    public nonisolated func startTicking(every period: Duration = .milliseconds(5), clock: any DaemonClock) {
        loop.tick(every: period) { [self] in
            assumeIsolated { $0.step(at: clock.now()) }
        }
    }

    public nonisolated func stopTicking() {
        loop.untick()
    }
}
