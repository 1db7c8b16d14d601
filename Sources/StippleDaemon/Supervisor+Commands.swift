import Foundation
import StippleAPI
import StippleLink
import StippleRecords
import StippleSafety
import StippleWire

/// What a stop answers: the status, and — only when its record could not be written — that the
/// needle stopped anyway (`stopped_unrecorded`). Encoded flat: the status's fields plus
/// `unrecorded`.
public struct StopResult: Encodable, Sendable {
    public struct Unrecorded: Encodable, Sendable {
        public var code: String
        public var detail: String
    }
    public var status: StatusView
    public var unrecorded: Unrecorded?

    enum Key: String, CodingKey { case unrecorded }

    public func encode(to encoder: any Encoder) throws {
        try status.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encodeIfPresent(unrecorded, forKey: .unrecorded)
    }
}

/// What the API asks to open a session with (the client id is pseudonymous).
public struct OpenSessionCommand: Sendable {
    public var sessionID: String?
    public var clientID: String
    public var technician: String
    public var zone: Zone
    public var cartridgeID: String
    public var pigmentLots: [String]
    public var penSerial: String?
    public var gapOverrideReason: String?

    public init(sessionID: String?, clientID: String, technician: String, zone: Zone, cartridgeID: String,
                pigmentLots: [String], penSerial: String?, gapOverrideReason: String?) {
        self.sessionID = sessionID
        self.clientID = clientID
        self.technician = technician
        self.zone = zone
        self.cartridgeID = cartridgeID
        self.pigmentLots = pigmentLots
        self.penSerial = penSerial
        self.gapOverrideReason = gapOverrideReason
    }
}

/// The API's commands. Each one: the core decides (refusals change nothing), the actions run
/// stops first, and the answer waits until what it changed is durable in the records.
extension Supervisor {
    func refusal(_ refusal: SafetyRefusal) -> CommandError {
        let kind: CommandError.Kind = switch refusal.code {
        case .badRequest, .setpointOutOfLimits: .unprocessable
        default: .conflict
        }
        return CommandError(kind, ProblemCode(refusal.code), refusal.message, state: core.phase.rawValue,
                            violations: refusal.violations, armingFailures: refusal.armingFailures)
    }

    /// Runs one event through the core and carries the decision out; waits for the records.
    func decide(_ event: SafetyEvent, actor: String) async throws(CommandError) -> Decision {
        let mark = failureMark
        let now = stamp(inputNow())
        let before = core.phase
        let decision = core.handle(event, at: now)
        apply(decision, phaseBefore: before, at: now, actor: actor)
        if let refusal = decision.refusal { throw self.refusal(refusal) }
        try await durable(since: mark)
        return decision
    }

    /// Waits for the records, failing if any write ever failed (for callers without a mark).
    func durable() async throws(CommandError) { try await durable(since: 0) }

    /// How many record writes have failed so far: a command notes it before it writes.
    var failureMark: Int { records?.failureCount ?? 0 }

    /// Waits until every record submitted so far is on disk, and fails if any write since
    /// `mark` failed: a change whose record was lost is never acknowledged (H15). (A failure of
    /// an unrelated write in the same moment fails the answer too: the doubt is on the safe side.)
    func durable(since mark: Int) async throws(CommandError) {
        guard let records else { return }
        do { try await records.barrier().durable() } catch {
            counters.recordFailures += 1
            throw CommandError(.unavailable, .recordsUnavailable, "the change was made but could not be recorded: \(error)", state: core.phase.rawValue)
        }
        if records.failureCount > mark {
            counters.recordFailures += 1
            let last = records.failedWrites.last ?? "a write failed"
            throw CommandError(.unavailable, .recordsUnavailable, "the change was made but could not be recorded (\(last)); check the disk, then look at the status", state: core.phase.rawValue)
        }
    }

    func audit(_ kind: String, actor: String, _ payload: [String: String] = [:]) {
        let wall = clock.wallNow().secondsSince1970
        let sessionID = core.session?.request.sessionID
        records?.submit("audit \(kind)") { try $0.audit(kind: kind, actor: actor, sessionID: sessionID, payload: payload, at: wall) }
    }

    public func openSession(_ command: OpenSessionCommand, actor: String) async throws(CommandError) -> StatusView {
        guard records != nil else {
            throw CommandError(.unavailable, .recordsUnavailable, "sessions need the records: \(recordsProblems.joined(separator: "; "))")
        }
        guard !limitsChanging else {
            throw CommandError(.conflict, .limitsChanging, "an engineer is changing the limits: try again in a moment", state: core.phase.rawValue)
        }
        let mark = failureMark
        let wall = clock.wallNow()
        let id = command.sessionID ?? Self.newSessionID(wall: wall)
        let serial = command.penSerial ?? pen.identity?.serial ?? ""
        let request = SessionRequest(
            sessionID: id, clientID: command.clientID, technician: command.technician, zone: command.zone,
            cartridgeID: command.cartridgeID, pigmentLots: command.pigmentLots, penSerial: serial,
            gapOverrideReason: command.gapOverrideReason)
        let now = stamp(inputNow())
        let before = core.phase
        let decision = core.handle(.openSession(request, wall: wall, bootID: clock.bootID), at: now)
        if let refusal = decision.refusal {
            if refusal.code == .badRequest && serial.isEmpty {
                throw CommandError(.conflict, .penNotIdentified, "no pen is identified, so the session cannot be bound to one: connect the pen or give pen_serial", state: core.phase.rawValue)
            }
            throw self.refusal(refusal)
        }
        if let snapshot = core.snapshot {
            let wallSeconds = wall.secondsSince1970
            records?.submit("open") { try $0.openSession(snapshot, at: wallSeconds, actor: actor) }
        }
        apply(decision, phaseBefore: before, at: now, actor: actor)
        // A new session pushes its limits once it has a setpoint; nothing else to send yet.
        do { try await durable(since: mark) } catch {
            // Not recorded: do not leave a session the records do not know.
            let nowAfter = stamp(inputNow())
            let closing = core.phase
            apply(core.handle(.closeSession, at: nowAfter), phaseBefore: closing, at: nowAfter, actor: actor)
            throw error
        }
        hub.publish(DaemonEvent(.session, ["state": "open", "session_id": .string(id)]))
        return status()
    }

    /// A session id nobody chose: the date and a random part (the core refuses a reused one).
    static func newSessionID(wall: WallTime) -> String {
        let day = wall.day
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 36, uppercase: true)
        return "S-\(day)-\(random)"
    }

    /// A new setpoint lets the needle do something else: it is recorded **before** it takes
    /// effect (issue 15 item 16). The core decides on a copy first (a refusal changes nothing);
    /// the setpoint and the session's state carrying it are committed in one write; only then
    /// does the core take it and the pen get it. A write the disk refuses means it did not happen.
    public func setSetpoint(_ setpoint: Setpoint, actor: String) async throws(CommandError) -> StatusView {
        var trial = core
        let decision = trial.handle(.setSetpoint(setpoint), at: stamp(inputNow()))
        if let refusal = decision.refusal { throw self.refusal(refusal) }
        if let records, let session = trial.session, let snapshot = trial.snapshot {
            let wall = clock.wallNow().secondsSince1970
            let elapsed = Int64(core.sessionElapsed(at: lastNow).milliseconds)
            let id = session.request.sessionID
            do {
                // The saved state carries it too (same transaction), so a restart right after the
                // answer restores it.
                try await records.submit("setpoint", retry: false) { store in
                    try store.recordSetpoint(setpoint, sessionID: id, sessionTimeMs: elapsed, at: wall, actor: actor, snapshot: snapshot)
                }.durable()
            } catch {
                counters.recordFailures += 1
                throw CommandError(.unavailable, .recordsUnavailable,
                                   "the setpoint was not changed: it could not be recorded (\(error)); check the disk", state: core.phase.rawValue)
            }
        }
        // The record is on disk: now the real core, unless the session changed while it was
        // written (another command got in) — then the record must not say it took effect.
        let now = stamp(inputNow())
        let before = core.phase
        guard core.session?.request.sessionID == trial.session?.request.sessionID else {
            audit("setpoint_withdrawn", actor: actor, ["depth_um": String(setpoint.depthUm), "layer": setpoint.layer.rawValue, "why": "the session changed"])
            throw CommandError(.conflict, .stateChanged, "the session changed while the setpoint was recorded; it was not applied", state: core.phase.rawValue)
        }
        let applied = core.handle(.setSetpoint(setpoint), at: now)
        apply(applied, phaseBefore: before, at: now, actor: actor)
        if let refusal = applied.refusal {
            audit("setpoint_withdrawn", actor: actor, ["depth_um": String(setpoint.depthUm), "layer": setpoint.layer.rawValue, "why": refusal.message])
            throw self.refusal(refusal)
        }
        // The pen's answer to SET_SETPOINTS is not awaited: arming checks the read-back.
        return status()
    }

    /// Records the cartridge for the session; for a pen without a reader (GPIO pens) this is the
    /// technician's typed id, lot and expiry, which arming then checks like a read one.
    public func setCartridge(id: String, lot: String?, expiryDay: Int?, needleCount: Int?, needleDiameterUm: Int?, actor: String) async throws(CommandError) -> StatusView {
        let mark = failureMark
        let hasReader = pen.capabilities?.contains(.cartridgeReader) ?? false
        var typed: CartridgeInfo?
        if !hasReader {
            // Without a reader nothing checks the cartridge but what the technician types: every
            // field arming checks must be given, never assumed (H9).
            var missing: [LimitViolation] = []
            if needleCount == nil { missing.append(LimitViolation(field: "needle_count", value: "missing", allowed: "the count printed on the cartridge (\(AbsoluteLimits.needleCount) for SMP)")) }
            if needleDiameterUm == nil { missing.append(LimitViolation(field: "needle_diameter_um", value: "missing", allowed: "the diameter printed on the cartridge (\(AbsoluteLimits.needleDiameterUm.lowerBound)...\(AbsoluteLimits.needleDiameterUm.upperBound) µm)")) }
            if expiryDay == nil { missing.append(LimitViolation(field: "expiry_day", value: "missing", allowed: "the expiry date, in days since 1970-01-01")) }
            if (lot ?? "").trimmingCharacters(in: .whitespaces).isEmpty { missing.append(LimitViolation(field: "lot", value: "missing", allowed: "the lot printed on the cartridge")) }
            guard missing.isEmpty, let needleCount, let needleDiameterUm else {
                throw CommandError(.badRequest, .cartridgeIncomplete, "this pen has no cartridge reader: type every field of the cartridge", violations: missing)
            }
            typed = CartridgeInfo(id: id, needleCount: needleCount, needleDiameterUm: needleDiameterUm, lot: lot ?? "", expiryDay: expiryDay)
        }
        _ = try await decide(.changeCartridge(id), actor: actor)
        if let typed {
            manualCartridge = typed
            pen.cartridge = typed
        }
        audit("cartridge_set", actor: actor, ["cartridge_id": id, "lot": lot ?? "", "typed": hasReader ? "false" : "true",
                                             "needle_count": needleCount.map(String.init) ?? "", "needle_diameter_um": needleDiameterUm.map(String.init) ?? "",
                                             "expiry_day": expiryDay.map(String.init) ?? ""])
        try await durable(since: mark)
        return status()
    }

    /// Arms on behalf of `holder`: the peer (uid and pid from its socket) and client id that
    /// asked. The lease goes to that peer's own event stream under that client id, and only to it.
    public func arm(_ holder: PresenceTable.Holder, actor: String) async throws(CommandError) -> StatusView {
        let mark = failureMark
        if !recordsInconsistencies.isEmpty {
            throw CommandError(.conflict, .recordsInconsistent, "arming is refused while the records disagree with the audit log: " +
                               recordsInconsistencies.joined(separator: "; "), state: core.phase.rawValue)
        }
        if !recordsProblems.isEmpty {
            throw CommandError(.conflict, .recordsUnhealthy, "arming is refused while the records cannot be trusted: " +
                               recordsProblems.joined(separator: "; "), state: core.phase.rawValue)
        }
        if let why = records?.unwritableReason {
            throw CommandError(.conflict, .recordsUnavailable, "arming is refused while the records cannot be written: \(why)", state: core.phase.rawValue)
        }
        if let refusal = pen.versionRefusal {
            throw CommandError(.conflict, .protocolIncompatible, refusal, state: core.phase.rawValue)
        }
        let candidate = presence.candidate(for: holder, at: presenceNow())
        let connection = try? candidate.get()
        let flags = pen.telemetry?.flags ?? pen.status?.flags ?? []
        let facts = ArmingFacts(
            pen: pen.identity, hostProtocolMajor: Int(ProtocolVersion.major), hostProtocolMinor: Int(ProtocolVersion.minor),
            readBackLimitsCRC: pen.readBackLimitsCRC, cartridge: pen.cartridge,
            pedalPressed: flags.contains(.pedalPressed), estopPressed: flags.contains(.estopPressed),
            penFaultLatched: (pen.status?.fault ?? .none) != .none || flags.contains(.faultLatched),
            connection: connection, connectionAlive: connection != nil, today: clock.wallNow().day)
        let now = stamp(inputNow())
        let before = core.phase
        let decision = core.handle(.arm(facts), at: now)
        if let refusal = decision.refusal {
            var error = self.refusal(refusal)
            if case .failure(let why) = candidate {
                // The core says the check failed; the presence table says what to do about it.
                error.armingFailures = error.armingFailures.map { failure in
                    failure.code == .clientNotConnected ? ArmingFailure(.clientNotConnected, why.description) : failure
                }
            }
            throw error
        }
        // From this moment the lease is that one stream's: if it closes or goes quiet while the
        // records are written or the pen answers, the core stops and latches.
        if let connection { presence.bind(connection) }
        let thisArm = core.armCount
        /// Whether the core is still armed by this very arm (not disarmed and armed again since).
        func stillOurs() -> Bool { core.armedBy == connection && core.armCount == thisArm }
        /// Undoes this arm, and only this arm: if another arm came meanwhile, that one is theirs.
        func undo() {
            guard stillOurs() else { return }
            let nowFail = stamp(inputNow())
            let phase = core.phase
            apply(core.handle(.disarm, at: nowFail), phaseBefore: phase, at: nowFail, actor: actor)
            presence.release()
        }
        // The cartridge binds to the session durably before the pen is armed.
        let wall = clock.wallNow().secondsSince1970
        let cartridge = pen.cartridge
        var binding: RecordWriter.Ticket?
        for case .recordCartridgeUse(let cartridgeID, let sessionID) in decision.actions {
            binding = records?.submit("cartridge", retry: false) { try $0.recordCartridgeUse(cartridgeID, sessionID: sessionID, cartridge: cartridge, at: wall, actor: actor) }
        }
        apply(decision, phaseBefore: before, at: now, actor: actor)
        do {
            try await binding?.durable()
            try await durable(since: mark)
        } catch {
            // Not recorded: not armed. The pen never got ARM (it goes out only after this).
            undo()
            throw CommandError(.unavailable, .recordsUnavailable, "not armed: the arm could not be recorded (\(error)); check the disk", state: core.phase.rawValue)
        }
        // Anything may have happened while the records were written (a fault, an e-stop, a
        // disarm and another client's arm): go on only if this is still this client's arm.
        guard core.phase == .armed, stillOurs() else {
            throw CommandError(.conflict, .stateChanged, "the session became \(core.phase.rawValue) while arming", state: core.phase.rawValue)
        }
        let armTicket = expectAck(.arm)
        let runTicket = expectAck(.motorRun)
        link?.send(.arm(.init(limitsCRC: pen.readBackLimitsCRC ?? 0)))
        link?.send(.motorRun(.init()))
        flush(at: stamp(inputNow()))
        let armed = await armTicket.outcome()
        let running = await runTicket.outcome()
        for (command, outcome) in [("ARM", armed), ("MOTOR_RUN", running)] {
            guard case .answered(let status, let detail) = outcome, status == .ok else {
                undo()
                let reason = if case .answered(let status, let detail) = outcome { "\(status) (detail \(detail))" } else { "no answer" }
                throw CommandError(.conflict, .penRefused, "the pen did not accept \(command): \(reason); the session is disarmed", state: core.phase.rawValue)
            }
            _ = detail
        }
        // A stop, a close or a fault may have come while the pen answered: the pen must not stay
        // armed for a session that is no longer armed (its DISARM already went out first, and
        // the link dropped the queued ARM; this makes sure and says so).
        guard core.phase == .armed || core.phase == .running || core.phase == .paused else {
            link?.send(.disarm(.init()))
            flush(at: stamp(inputNow()))
            throw CommandError(.conflict, .stateChanged, "the session became \(core.phase.rawValue) while arming; the pen is disarmed", state: core.phase.rawValue)
        }
        guard stillOurs() else {
            // Disarmed and armed again by another client while the pen answered: that arm is
            // theirs (their lease); this one is not acknowledged.
            throw CommandError(.conflict, .stateChanged, "the session was disarmed and armed again by another client while this arm waited", state: core.phase.rawValue)
        }
        // A pen without a depth sensor (a GPIO pen) runs on its mechanical depth setting, guarded
        // by its over-depth switch: the record says so.
        audit("armed", actor: actor, ["client": holder.client, "pid": "\(holder.pid)", "depth": pen.identity?.hasDepthSensor == false ? "mechanical" : "measured"])
        do {
            try await durable(since: mark)
        } catch {
            // A refusal means it did not happen: an arm that cannot be recorded is undone.
            undo()
            throw CommandError(.unavailable, .recordsUnavailable, "not armed: the arm could not be recorded (\(error.message)); the pen is disarmed", state: core.phase.rawValue)
        }
        return status()
    }

    /// Stops always act: the needle stops and the pen is disarmed before anything is written.
    /// If the record then cannot be written, the answer still says it stopped — with
    /// `stopped_unrecorded` — and the record is kept in memory and written when the disk has room.
    public func disarm(actor: String, kind: String = "disarm") async throws(CommandError) -> StopResult {
        await stop(kind == "stop" ? .stop : .disarm, actor: actor)
    }

    public func emergencyStop(actor: String) async throws(CommandError) -> StopResult {
        await stop(.estop, actor: actor)
    }

    func stop(_ kind: StopKind, actor: String) async -> StopResult {
        await withCheckedContinuation { continuation in
            stopNow(kind, actor: actor) { continuation.resume(returning: $0) }
        }
    }

    /// The stop socket's way in: the stop runs on the supervisor's thread in the urgent lane
    /// (ahead of every queued job) and `answer` is called from the records' queue once the record
    /// is written or failed — no task, no thread of Swift's cooperative pool on the way.
    public nonisolated func stopFromSocket(_ kind: StopKind, actor: String, executed: @escaping @Sendable () -> Void = {},
                                           answer: @escaping @Sendable (StopResult) -> Void) {
        loop.enqueueUrgent { [self] in
            assumeIsolated { supervisor in
                supervisor.stopNow(kind, actor: actor, answer: answer)
                executed()
            }
        }
    }

    /// The stop itself, synchronous: the decision's stops are on the wire when this returns.
    func stopNow(_ kind: StopKind, actor: String, answer: @escaping @Sendable (StopResult) -> Void) {
        let mark = failureMark
        let now = stamp(inputNow())
        let before = core.phase
        apply(core.handle(kind == .estop ? .emergencyStop(.api) : .disarm, at: now), phaseBefore: before, at: now, actor: actor)
        audit(kind.rawValue, actor: actor)
        let answered = status()
        guard let records else {
            answer(StopResult(status: answered, unrecorded: nil))
            return
        }
        let logger = logger
        records.submit("barrier", retry: false, touchesDisk: false, { _ in }, then: { [records] result in
            var failed = records.failureCount > mark
            if case .failure = result { failed = true }
            guard failed else {
                answer(StopResult(status: answered, unrecorded: nil))
                return
            }
            logger.error("stopped, but the record could not be written", metadata: ["kind": "\(kind.rawValue)"])
            answer(StopResult(status: answered, unrecorded: .init(
                code: ProblemCode.stoppedUnrecorded.rawValue,
                detail: "stopped; the record could not be written (\(records.unwritableReason ?? "a write failed")): it is kept in memory and written as soon as the disk has room")))
        })
    }

    /// Clears a latched fault: first the pen's own latch (CLEAR_FAULT, which the pen refuses
    /// while the cause persists, by its own rules), then — once a telemetry frame newer than the
    /// pen's answer shows the cause gone — the core's. Never re-arms.
    public func clearFault(actor: String) async throws(CommandError) -> StatusView {
        let mark = failureMark
        guard core.phase == .faulted else {
            throw CommandError(.conflict, .illegalTransition, "no fault is latched", state: core.phase.rawValue)
        }
        if core.faults.contains(.recordsUnavailable), let why = records == nil ? "they cannot be opened (restart once the disk has room)" : records?.unwritableReason {
            throw CommandError(.conflict, .faultPersists, "the records still cannot be written: \(why)", state: core.phase.rawValue)
        }
        let faults = core.faults.map(\.rawValue).joined(separator: ",")
        if link != nil {
            let ticket = expectAck(.clearFault)
            link?.send(.clearFault(.init()))
            flush(at: stamp(inputNow()))
            switch await ticket.outcome() {
            case .answered(.ok, _):
                break
            case .answered(let status, let detail):
                throw CommandError(.conflict, .faultPersists, "the pen refuses to clear its fault (\(status), fault \(FaultCode(rawValue: detail))): its cause is still there", state: core.phase.rawValue)
            case .noAnswer:
                throw CommandError(.conflict, .faultPersists, "the pen did not answer CLEAR_FAULT: the cause cannot be seen to be gone", state: core.phase.rawValue)
            }
            // A frame after the pen's answer is the evidence the core needs.
            let answeredAt = lastNow
            for _ in 0..<60 where !(pen.telemetryAt.map { $0 > answeredAt } ?? false) {
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        _ = try await decide(.clearFault, actor: actor)
        audit("fault_cleared", actor: actor, ["faults": faults])
        try await durable(since: mark)
        return status()
    }

    public func closeSession(actor: String) async throws(CommandError) -> StatusView {
        _ = try await decide(.closeSession, actor: actor)
        return status()
    }

    /// Tightens the limits (engineers): only while no session is open, only tighter than now.
    /// Recorded durably, with its audit entry, before it takes effect: a refusal means nothing
    /// changed, and a restart never runs with looser limits (issue 15 items 5 and 16).
    public func changeLimits(_ limits: SafetyLimits, actor: String) async throws(CommandError) -> SafetyLimits {
        let problems = limits.validate() + limits.loosenings(comparedTo: core.limits)
        guard problems.isEmpty else {
            throw CommandError(.unprocessable, .limitsRefused, "the limit set is refused", violations: problems)
        }
        return try await replaceLimits(limits, actor: actor) { store, wall in
            try store.saveRuntimeLimits(limits, actor: actor, at: wall)
        }
    }

    /// An engineer's explicit, recorded reset: the run-time tightening is dropped and the
    /// configuration's limits apply again. The only way limits ever loosen.
    public func resetLimits(reason: String, actor: String) async throws(CommandError) -> SafetyLimits {
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else {
            throw CommandError(.badRequest, .reasonMissing, "a reset needs a reason, which is recorded",
                               violations: [LimitViolation(field: "reason", value: "missing", allowed: "1...1000 characters")])
        }
        let configured = settings.configuredLimits
        return try await replaceLimits(configured, actor: actor) { store, wall in
            try store.resetRuntimeLimits(actor: actor, reason: trimmed, at: wall)
        }
    }

    /// Records the change first, then swaps the core's limits — only while no session is open, and
    /// with no session opening while the record is written.
    func replaceLimits(_ limits: SafetyLimits, actor: String,
                       record: @escaping @Sendable (RecordStore, Int64) throws -> Void) async throws(CommandError) -> SafetyLimits {
        guard core.phase == .noSession || core.phase == .closed, !limitsChanging else {
            throw CommandError(.conflict, .sessionOpen, "limits change only while no session is open", state: core.phase.rawValue)
        }
        do {
            _ = try SafetyCore(limits: limits, history: core.history)  // refused before anything is recorded
        } catch {
            throw CommandError(.unprocessable, .limitsRefused, "the limit set is refused", violations: error.violations)
        }
        guard let records else {
            throw CommandError(.unavailable, .recordsUnavailable, "limits change only with working records: \(recordsProblems.joined(separator: "; "))")
        }
        limitsChanging = true
        defer { limitsChanging = false }
        let wall = clock.wallNow().secondsSince1970
        do {
            try await records.submit("limits", retry: false) { store in try record(store, wall) }.durable()
        } catch {
            counters.recordFailures += 1
            throw CommandError(.unavailable, .recordsUnavailable, "the limits were not changed: they could not be recorded (\(error))", state: core.phase.rawValue)
        }
        // The history may have grown while the record was written: keep the newest.
        do { core = try SafetyCore(limits: limits, history: core.history) } catch {
            throw CommandError(.unprocessable, .limitsRefused, "the limit set is refused", violations: error.violations)
        }
        logger.notice("limits changed", metadata: ["actor": "\(actor)"])
        return core.limits
    }

    public var limits: SafetyLimits { core.limits }

    /// The stream that holds the lease, if any (tests, status).
    public var leaseHolder: ConnectionID? { presence.lease }
}
