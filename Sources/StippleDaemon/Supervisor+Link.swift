import StippleLink
import StippleSafety
import StippleSupervision
import StippleTransport
import StippleWire

// The pen's side of the shell: a transport attached or gone, the bytes read from it, the ticks,
// and the writes — the stop path's steps 1 and 5 (docs/architecture.md).
extension Supervisor {
    /// A transport to a pen is open: start a new link with HELLO (PROTOCOL.md section 6).
    /// A GPIO pen passes its own link; a serial pen (the default) gets a `HostLink`.
    public func attach(_ transport: any PenTransport, link makeLink: @escaping @Sendable () -> any PenLink = { HostLink() }) {
        self.transport = transport
        self.makeLink = makeLink
        run(machine.linkOpened(at: now()))
        logger.info("pen link opened", metadata: ["transport": "\(transport.description)"])
    }

    /// The transport failed or closed: the link is lost (H5/H6/H7). Stops, latches, records.
    public func detach(reason: String) {
        transport?.close()
        transport = nil
        link = nil
        run(machine.linkLost(reason: reason, at: now()))
    }

    /// Runs `body` on the supervisor's thread in one hop: the in-process simulator feeds a
    /// batch of pen steps at a time instead of hopping threads twice a step.
    public func isolated<T: Sendable>(_ body: @Sendable (isolated Supervisor) throws -> T) rethrows -> T {
        try body(self)
    }

    /// Bytes from the pen, read at `time`: the start of the stop path.
    public func received(_ bytes: [UInt8], at time: MonotonicInstant) {
        let entered = SystemClock.monotonicNow()
        let stopsBefore = stopsWritten
        let now = now(reading: time)
        let (coreTime, effects) = machine.advance(now)
        run(effects)
        guard var link else { return }
        let events = link.receive(bytes, at: coreTime)
        self.link = link
        for event in events { handle(event, at: now, coreTime: coreTime) }
        flush()
        if stopsWritten != stopsBefore {
            // From the read, when its time is a CLOCK_MONOTONIC reading; otherwise from entry (a
            // simulated pen's times are virtual, and may be ahead of the real clock).
            let start = clock.isAccelerated || time > entered ? entered : time
            metrics.recordStopReaction(lastStopWrittenAt - start)
        }
    }

    /// One event from the link: the core decides; telemetry is then aggregated and published.
    func handle(_ event: HostLink.Event, at now: SupervisorCore.Now, coreTime: MonotonicInstant) {
        run(machine.penEvent(event, at: now))
        switch event {
        case .telemetry(let telemetry):
            let sample = TelemetrySample(telemetry)
            aggregateTelemetry(telemetry, sample: sample, at: coreTime)
            publishTelemetry(telemetry, sample: sample, at: coreTime)
        case .rejected(let rejection):
            metrics.rejected(reason: "\(rejection.reason)")
        default:
            break
        }
    }

    /// The timer: retransmissions and heartbeats, the core's silence and session-time checks,
    /// client presence, command deadlines, and a link restart after the pen stopped answering.
    public func step(at time: MonotonicInstant) {
        let now = now(reading: time)
        run(machine.tick(at: now))
        retryRecordsIfDue()
        flush()
        let coreTime = machine.lastNow
        metrics.sessionTime.record(Double(core.sessionElapsed(at: coreTime).milliseconds) / 1000)
        metrics.mayMove.record(core.mayMove ? 1 : 0)
        notifier.petWatchdog()
        hub.tick()
    }

    /// Writes whatever the link has to send now; events that time produced go to the core.
    func flush() {
        guard var link, let transport else { return }
        let coreTime = machine.lastNow
        let (bytes, events) = link.poll(at: coreTime)
        self.link = link
        if !bytes.isEmpty {
            do { try transport.write(bytes) } catch {
                detach(reason: "\(error)")
                return
            }
        }
        metrics.link(link.statistics)
        guard !events.isEmpty else { return }
        let now = now(reading: machine.lastReading)
        for event in events { handle(event, at: now, coreTime: coreTime) }
    }
}
