import Foundation
import Logging
import ServiceLifecycle
import StippleDiscovery
import StippleSupervision
import StippleTransport
import Synchronization

/// Finds the pen by udev and follows it through hotplug (`stippled --pen auto`): enumerates
/// the tty devices, attaches the configured pen or the first that matches the pen table,
/// and then acts on udev's events — a pen plugged in is attached (handshake; a new link is
/// never armed, H11); the attached pen pulled out is a lost link (the supervisor stops,
/// latches and records) and the daemon waits for it to come back. While a session is open the
/// daemon waits for the pen the session is bound to (and the safety core refuses any other,
/// H8). The decisions are `PenHotplugTracker`'s; this service only carries them out.
public struct DiscoveryPenService: Service {
    public let supervisor: Supervisor
    public let clock: any DaemonClock
    public let logger: Logger
    public let matcher: PenMatcher
    public let enumerator: any DeviceEnumerator
    /// The hotplug events: udev's monitor where udevd runs, a rescan of /sys elsewhere.
    public let makeSource: @Sendable ([TTYDevice]) throws -> any HotplugEventSource
    public let open: @Sendable (String) throws -> any PenTransport

    public init(supervisor: Supervisor, clock: any DaemonClock, logger: Logger, matcher: PenMatcher,
                enumerator: any DeviceEnumerator = UdevEnumerator(),
                makeSource: (@Sendable ([TTYDevice]) throws -> any HotplugEventSource)? = nil,
                open: @escaping @Sendable (String) throws -> any PenTransport = { try SerialPort(path: $0) }) {
        self.supervisor = supervisor
        self.clock = clock
        self.logger = logger
        self.matcher = matcher
        self.enumerator = enumerator
        self.makeSource = makeSource ?? { present in
            if UdevMonitor.isAvailable { return try UdevMonitor() }
            return RescanEventSource(enumerator: enumerator, present: present)
        }
        self.open = open
    }

    enum Input: Sendable {
        case event(DeviceEvent)
        case linkEnded(generation: Int, reason: String)
        case retry
    }

    public func run() async throws {
        supervisor.startTicking(clock: clock)
        defer { supervisor.stopTicking() }
        try await cancelWhenGracefulShutdown { try await discovering() }
    }

    func discovering() async throws {
        let present: [TTYDevice]
        do { present = try enumerator.ttyDevices() } catch {
            logger.error("cannot enumerate tty devices; waiting for hotplug events", metadata: ["error": "\(error)"])
            present = []
        }
        var tracker = PenHotplugTracker(matcher: matcher, present: present, linkExists: { FileManager.default.fileExists(atPath: $0) })
        for candidate in tracker.candidates where candidate.device.isUSB {
            logger.info("serial device", metadata: ["device": "\(candidate)"])
        }
        let pens = tracker.candidates.filter(\.isPen)
        if pens.count > 1 && matcher.serial == nil {
            logger.warning("several pens are plugged in; the first is used (set discovery.serial to choose)",
                           metadata: ["pens": "\(pens.map { $0.serial ?? $0.devnode ?? "?" })"])
        }

        let source = try makeSource(present)
        let (inputs, feed) = AsyncStream<Input>.makeStream()
        let logger = logger
        // A failing monitor is retried, never the end of hotplug: the step keeps its errors.
        let reader = ReaderThread(name: "stipple-hotplug", step: {
            do {
                if let event = try source.next(timeout: .milliseconds(200)) { feed.yield(.event(event)) }
            } catch {
                logger.error("hotplug events failed; retrying", metadata: ["error": "\(error)"])
                Thread.sleep(forTimeInterval: 1)
            }
        })
        defer {
            reader.stop()
            source.close()
        }

        var current: (generation: Int, reader: Task<Void, Never>)?
        var generation = 0
        var unplugReason: String?
        var backoff = Backoff()

        func scheduleRetry() {
            let delay = backoff.next()
            Task {
                try? await Task.sleep(for: delay)
                feed.yield(.retry)
            }
        }

        func attach(_ candidate: PenCandidate) async {
            guard current == nil, let path = candidate.openPath else { return }
            let transport: any PenTransport
            do { transport = try open(path) } catch {
                logger.warning("cannot open the pen; retrying", metadata: ["device": "\(path)", "error": "\(error)"])
                scheduleRetry()
                return
            }
            backoff.reset()
            tracker.markAttached(candidate)
            generation += 1
            let mine = generation
            logger.notice("pen found", metadata: ["device": "\(path)", "usb_serial": "\(candidate.serial ?? "-")", "why": "\(candidate.reason)"])
            await supervisor.attach(transport)
            let reader = PenLinkService(supervisor: supervisor, clock: clock, logger: logger) { try open(path) }
            current = (mine, Task {
                let reason = await reader.read(transport)
                feed.yield(.linkEnded(generation: mine, reason: reason))
            })
        }

        func wanted() async -> String? {
            await supervisor.boundPenSerial ?? matcher.serial
        }

        tracker.want(serial: await wanted())
        if let candidate = tracker.choose() {
            await attach(candidate)
        } else {
            logger.notice("no pen plugged in; waiting for one", metadata: ["table": "\(matcher.table.entries.map(\.description))"])
        }

        for await input in inputs {
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            tracker.want(serial: await wanted())
            switch input {
            case .event(let event):
                logger.debug("hotplug event", metadata: ["event": "\(event)"])
                for decision in tracker.handle(event) {
                    switch decision {
                    case .attach(let candidate):
                        await attach(candidate)
                    case .detach(let reason):
                        // The reader ends (usually it already failed when the device hung up);
                        // the link is detached with this reason when it has.
                        unplugReason = reason
                        current?.reader.cancel()
                    case .renamed(let candidate):
                        logger.notice("pen node renamed; the link stays", metadata: ["device": "\(candidate)"])
                    case .ignored(let candidate):
                        logger.notice("pen not used", metadata: ["device": "\(candidate)"])
                        supervisor.hub.publish(DaemonEvent(.pen, ["state": "ignored", "device": .string(candidate.description)]))
                    }
                }
            case .linkEnded(let ended, let reason):
                guard let running = current, running.generation == ended else { continue }
                current = nil
                tracker.linkEnded()
                await supervisor.detach(reason: unplugReason ?? reason)
                unplugReason = nil
                // Still plugged in (a read error, the pen rebooting): open it again after a
                // pause; gone: udev will say when a pen is back.
                if tracker.choose() != nil { scheduleRetry() }
            case .retry:
                if current == nil, let candidate = tracker.choose() { await attach(candidate) }
            }
        }
        current?.reader.cancel()
    }
}

extension Supervisor {
    /// The serial the open session is bound to: pen discovery waits for this pen.
    public var boundPenSerial: String? {
        guard core.closeReason == nil, let serial = core.session?.request.penSerial, !serial.isEmpty else { return nil }
        return serial
    }
}
