import StippleRecords
import StippleSupervision
import StippleWire

/// The records' side of the shell: the core's `record` effects go to `RecordWriter`'s queue, and
/// their outcomes come back to the core on the supervisor's thread.
extension Supervisor {
    /// Hands a record to the writer; its outcome comes back to the core on the supervisor's
    /// thread, in the urgent lane (a stop's answer waits for it), with no task on the way.
    func submit(_ id: SupervisorCore.RecordID, _ request: RecordRequest) {
        switch request {
        case .closeSession: flushAggregate()
        case .fault(let reason, _, _, _): metrics.fault(reason)
        default: break
        }
        let back: @Sendable (Result<Void, any Error>) -> Void = { [loop] result in
            loop.enqueueUrgent { [self] in
                assumeIsolated { supervisor in
                    supervisor.run(supervisor.machine.recorded(id, result.mapError { RecordFailure("\($0)") }, at: supervisor.now()))
                }
            }
        }
        guard let records else {
            // No records at all (the core is faulted for it): nothing to wait for.
            back(.success(()))
            return
        }
        if case .barrier = request {
            records.submit("barrier", retry: false, touchesDisk: false, { _ in }, then: back)
            return
        }
        records.submit(request.what, retry: request.retry, { store in try Self.write(request, to: store) }, then: back)
    }

    static func write(_ request: RecordRequest, to store: RecordStore) throws {
        switch request {
        case .openSession(let snapshot, let wall, let actor): try store.openSession(snapshot, at: wall, actor: actor)
        case .closeSession(let snapshot, let reason, let closedAt, let actor): try store.closeSession(snapshot, reason: reason, at: closedAt, actor: actor)
        case .persist(let snapshot, let wall, let actor): try store.persist(snapshot, at: wall, actor: actor)
        case .warning(let kind, let detail, let sessionID, let wall): try store.recordWarning(kind, detail: detail, sessionID: sessionID, at: wall)
        case .fault(let reason, let detail, let sessionID, let wall): try store.recordFault(reason, detail: detail, sessionID: sessionID, at: wall)
        case .audit(let kind, let actor, let sessionID, let payload, let wall):
            try store.audit(kind: kind, actor: actor, sessionID: sessionID, payload: payload, at: wall)
        case .setpoint(let setpoint, let sessionID, let elapsed, let wall, let actor, let snapshot):
            try store.recordSetpoint(setpoint, sessionID: sessionID, sessionTimeMs: elapsed, at: wall, actor: actor, snapshot: snapshot)
        case .cartridgeUse(let cartridgeID, let sessionID, let cartridge, let wall, let actor):
            try store.recordCartridgeUse(cartridgeID, sessionID: sessionID, cartridge: cartridge, at: wall, actor: actor)
        case .pen(let serial, let firmware, let protocolVersion, let wall):
            try store.recordPen(serial: serial, firmware: firmware, protocolVersion: protocolVersion, at: wall)
        case .runtimeLimits(let limits, let actor, let wall): try store.saveRuntimeLimits(limits, actor: actor, at: wall)
        case .limitsReset(let actor, let reason, let wall): try store.resetRuntimeLimits(actor: actor, reason: reason, at: wall)
        case .barrier: break
        }
    }

    /// While the records cannot be written, about once a second (real time): the kept records
    /// again, then a probe. Arming works again once they land, without a restart.
    func retryRecordsIfDue() {
        guard let records, !records.isWritable else { return }
        let real = SystemClock.monotonicNow()
        guard real - lastRecordsRetry >= .seconds(1) else { return }
        lastRecordsRetry = real
        records.retryPending(at: clock.wallNow().secondsSince1970)
    }

    /// Waits until every record submitted so far is on disk (tests, shutdown).
    public func flushRecords() async {
        try? await records?.barrier().durable()
    }
}
