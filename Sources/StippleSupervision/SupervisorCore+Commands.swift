import StippleAPI
import StippleLink
import StippleSafety
import StippleWire

extension ProblemCode {
    /// The safety core's refusal codes are the spec's codes of the same name (`ProblemCodeTests`
    /// holds every one of them to it); one the spec lacked would be a bad request, never a crash.
    public init(_ refusal: SafetyRefusal.Code) {
        self = ProblemCode(rawValue: refusal.rawValue) ?? .badRequest
    }
}

/// One append to the records, as the core asks for it; the shell maps it onto `RecordStore`.
public enum RecordRequest: Sendable {
    case openSession(SessionSnapshot, wall: Int64, actor: String)
    case closeSession(SessionSnapshot, reason: CloseReason, closedAt: Int64, actor: String)
    case persist(SessionSnapshot, wall: Int64, actor: String)
    case warning(kind: String, detail: String, sessionID: String?, wall: Int64)
    case fault(reason: String, detail: String, sessionID: String?, wall: Int64)
    case audit(kind: String, actor: String, sessionID: String?, payload: [String: String], wall: Int64)
    /// The setpoint and the session's state carrying it, in one write.
    case setpoint(Setpoint, sessionID: String, sessionTimeMs: Int64, wall: Int64, actor: String, snapshot: SessionSnapshot)
    case cartridgeUse(cartridgeID: String, sessionID: String, cartridge: CartridgeInfo?, wall: Int64, actor: String)
    case pen(serial: String, firmware: String, protocolVersion: String, wall: Int64)
    case runtimeLimits(SafetyLimits, actor: String, wall: Int64)
    case limitsReset(actor: String, reason: String, wall: Int64)
    /// Writes nothing: its outcome says every earlier record is durable.
    case barrier

    /// What a command asks for before it takes effect is dropped if it fails (the command is
    /// refused, and nothing of it may appear later); what happened is kept and retried.
    public var retry: Bool {
        switch self {
        case .setpoint, .cartridgeUse, .runtimeLimits, .limitsReset, .barrier: false
        default: true
        }
    }

    /// A name for logs and the status's list of records kept in memory.
    public var what: String {
        switch self {
        case .openSession: "open"
        case .closeSession: "close"
        case .persist: "persist"
        case .warning: "warning"
        case .fault: "fault"
        case .audit(let kind, _, _, _, _): "audit \(kind)"
        case .setpoint: "setpoint"
        case .cartridgeUse: "cartridge"
        case .pen(let serial, _, _, _): "pen \(serial)"
        case .runtimeLimits, .limitsReset: "limits"
        case .barrier: "barrier"
        }
    }
}

/// A cartridge as the technician gives it: for a pen without a reader every field arming checks.
public struct CartridgeEntry: Sendable, Equatable {
    public var id: String
    public var lot: String?
    public var expiryDay: Int?
    public var needleCount: Int?
    public var needleDiameterUm: Int?

    public init(id: String, lot: String?, expiryDay: Int?, needleCount: Int?, needleDiameterUm: Int?) {
        self.id = id
        self.lot = lot
        self.expiryDay = expiryDay
        self.needleCount = needleCount
        self.needleDiameterUm = needleDiameterUm
    }
}

/// What the pen answered to a command, or that it did not.
public enum AckOutcome: Sendable, Equatable {
    case answered(AckStatus, detail: UInt8)
    case noAnswer
}

extension SupervisorCore {
    /// A command waiting for something, and what for.
    enum Pending: Sendable {
        /// Answers `answer` once `awaiting` (a barrier) is durable and no record since `mark` failed.
        case durable(awaiting: RecordID, mark: Int, answer: Answer, failure: String)
        case open(awaiting: RecordID, mark: Int, sessionID: String, actor: String)
        case setpoint(Setpoint, record: RecordID, sessionID: String?, actor: String)
        case cartridge(awaiting: RecordID, mark: Int, entry: CartridgeEntry, typed: CartridgeInfo?, hasReader: Bool, actor: String)
        case arm(ArmProgress)
        case stop(StopKind, awaiting: RecordID, mark: Int)
        case clearFault(ClearProgress)
        case limits(SafetyLimits, record: RecordID, actor: String)
        case exchange(MessageID, sentAt: MonotonicInstant)
    }

    struct ArmProgress: Sendable {
        enum Step: Sendable {
            /// The cartridge binding (if any) and every record of the arm decision.
            case recording(binding: RecordID?, barrier: RecordID, bindingFailure: String?)
            case awaitingPen(arm: AckOutcome?, run: AckOutcome?)
            case recordingArmed(barrier: RecordID)
        }
        var holder: PresenceTable.Holder
        var actor: String
        var connection: ConnectionID?
        var armCount: Int
        var mark: Int
        var step: Step
    }

    struct ClearProgress: Sendable {
        enum Step: Sendable {
            case awaitingAck
            /// The pen cleared its latch: a frame newer than `after` is the evidence the core needs.
            case awaitingTelemetry(after: MonotonicInstant, deadline: MonotonicInstant)
        }
        var actor: String
        var faults: String
        var mark: Int
        /// `latches` when the technician asked: a fault after that is one they have not seen.
        var latches: Int
        var step: Step
    }

    struct AckWait: Sendable {
        var message: MessageID
        var command: CommandID
        /// Real time.
        var deadline: MonotonicInstant
    }

    func error(_ kind: CommandError.Kind, _ code: ProblemCode, _ message: String, violations: [LimitViolation] = []) -> CommandError {
        CommandError(kind, code, message, state: safety.phase.rawValue, violations: violations)
    }

    func refusal(_ refusal: SafetyRefusal) -> CommandError {
        let kind: CommandError.Kind = switch refusal.code {
        case .badRequest, .setpointOutOfLimits: .unprocessable
        default: .conflict
        }
        return CommandError(kind, ProblemCode(refusal.code), refusal.message, state: safety.phase.rawValue,
                            violations: refusal.violations, armingFailures: refusal.armingFailures)
    }

    func answer(_ id: CommandID, _ result: Result<Answer, CommandError>, _ effects: inout [Effect]) {
        effects.append(.answer(id, result))
    }

    mutating func audit(_ kind: String, actor: String, _ payload: [String: String] = [:], wall: WallTime, _ effects: inout [Effect]) {
        _ = record(.audit(kind: kind, actor: actor, sessionID: safety.session?.request.sessionID, payload: payload,
                          wall: wall.secondsSince1970), &effects)
    }

    /// Waits for every record so far, then answers `answer` (or `records_unavailable`).
    mutating func answerWhenDurable(_ id: CommandID, mark: Int, _ answer: Answer, failure: String = "the change was made but could not be recorded",
                                    _ effects: inout [Effect]) {
        let awaiting = barrier(&effects)
        pending[id] = .durable(awaiting: awaiting, mark: mark, answer: answer, failure: failure)
    }

    func recordsFailed(since mark: Int) -> Bool { recordFailures > mark }

    func unrecordedError(_ failure: String) -> CommandError {
        error(.unavailable, .recordsUnavailable, "\(failure) (\(lastRecordFailure ?? "a write failed")); check the disk, then look at the status")
    }

    // MARK: - Commands

    /// An API command. Its answer comes as an `.answer(id, …)` effect, now or after the inputs
    /// it waits for.
    public mutating func command(_ id: CommandID, _ command: Command, at now: Now) -> [Effect] {
        finish(run(id, command, at: now))
    }

    mutating func run(_ id: CommandID, _ command: Command, at now: Now) -> [Effect] {
        var effects: [Effect] = []
        let time = stamp(now, &effects)
        let mark = recordFailures
        switch command {
        case .openSession(let request, let actor):
            openSession(id, request, actor: actor, at: time, now: now, mark: mark, &effects)
        case .setSetpoint(let setpoint, let actor):
            setSetpoint(id, setpoint, actor: actor, at: time, now: now, &effects)
        case .setCartridge(let entry, let actor):
            setCartridge(id, entry, actor: actor, at: time, now: now, mark: mark, &effects)
        case .arm(let holder, let actor, let unwritable):
            arm(id, holder, actor: actor, recordsUnwritable: unwritable, at: time, now: now, mark: mark, &effects)
        case .stop(let kind, let actor):
            latches += 1  // a stop while a clear is in flight: the clear gives way
            decide(kind == .estop ? .emergencyStop(.api) : .disarm, at: time, wall: now.wall, actor: actor, &effects)
            audit(kind.rawValue, actor: actor, wall: now.wall, &effects)
            pending[id] = .stop(kind, awaiting: barrier(&effects), mark: mark)
        case .clearFault(let actor, let unwritable):
            clearFault(id, actor: actor, recordsUnwritable: unwritable, at: time, now: now, mark: mark, &effects)
        case .closeSession(let actor):
            let decision = decide(.closeSession, at: time, wall: now.wall, actor: actor, &effects)
            if let refused = decision.refusal { return effects + [.answer(id, .failure(refusal(refused)))] }
            answerWhenDurable(id, mark: mark, .done, &effects)
        case .changeLimits(let limits, let actor):
            let problems = limits.validate() + limits.loosenings(comparedTo: safety.limits)
            guard problems.isEmpty else {
                answer(id, .failure(error(.unprocessable, .limitsRefused, "the limit set is refused", violations: problems)), &effects)
                break
            }
            replaceLimits(id, limits, .runtimeLimits(limits, actor: actor, wall: now.wall.secondsSince1970), actor: actor, &effects)
        case .resetLimits(let reason, let actor):
            let trimmed = reason.trimmingWhitespace
            guard !trimmed.isEmpty else {
                answer(id, .failure(error(.badRequest, .reasonMissing, "a reset needs a reason, which is recorded",
                                          violations: [LimitViolation(field: "reason", value: "missing", allowed: "1...1000 characters")])), &effects)
                break
            }
            replaceLimits(id, settings.configuredLimits, .limitsReset(actor: actor, reason: trimmed, wall: now.wall.secondsSince1970),
                          actor: actor, &effects)
        case .exchange(let message):
            guard linkOpen else {
                answer(id, .failure(error(.unavailable, .penNotConnected, "no pen link is open (`stipplectl status`)")), &effects)
                break
            }
            expectAck(message.id, for: id, at: now)
            effects.append(.send(message))
            effects.append(.flush(stops: false))
            pending[id] = .exchange(message.id, sentAt: now.real)
        case .audit(let kind, let actor, let payload):
            audit(kind, actor: actor, payload, wall: now.wall, &effects)
            answerWhenDurable(id, mark: mark, .done, &effects)
        }
        return effects
    }

    mutating func openSession(_ id: CommandID, _ request: SessionRequest, actor: String, at time: MonotonicInstant, now: Now,
                              mark: Int, _ effects: inout [Effect]) {
        guard recordsOpen else {
            return answer(id, .failure(error(.unavailable, .recordsUnavailable, "sessions need the records: \(recordsProblems.joined(separator: "; "))")), &effects)
        }
        guard !limitsChanging else {
            return answer(id, .failure(error(.conflict, .limitsChanging, "an engineer is changing the limits: try again in a moment")), &effects)
        }
        var request = request
        if request.penSerial.isEmpty { request.penSerial = pen.identity?.serial ?? "" }
        let before = safety.phase
        let decision = safety.handle(.openSession(request, wall: now.wall, bootID: bootID), at: time)
        if let refused = decision.refusal {
            if refused.code == .badRequest && request.penSerial.isEmpty {
                return answer(id, .failure(error(.conflict, .penNotIdentified,
                                                 "no pen is identified, so the session cannot be bound to one: connect the pen or give pen_serial")), &effects)
            }
            return answer(id, .failure(refusal(refused)), &effects)
        }
        if let snapshot = safety.snapshot {
            _ = record(.openSession(snapshot, wall: now.wall.secondsSince1970, actor: actor), &effects)
        }
        apply(decision, phaseBefore: before, at: time, wall: now.wall, actor: actor, &effects)
        pending[id] = .open(awaiting: barrier(&effects), mark: mark, sessionID: request.sessionID, actor: actor)
    }

    /// A new setpoint lets the needle do something else: it is recorded **before** it takes
    /// effect. The safety core decides on a copy first (a refusal changes nothing); the setpoint
    /// and the session's state carrying it are one write; only once it is durable does the core
    /// take it and the pen get it.
    mutating func setSetpoint(_ id: CommandID, _ setpoint: Setpoint, actor: String, at time: MonotonicInstant, now: Now,
                              _ effects: inout [Effect]) {
        var trial = safety
        let decision = trial.handle(.setSetpoint(setpoint), at: time)
        if let refused = decision.refusal { return answer(id, .failure(refusal(refused)), &effects) }
        guard recordsOpen, let session = trial.session, let snapshot = trial.snapshot else {
            return applySetpoint(id, setpoint, sessionID: trial.session?.request.sessionID, actor: actor, at: time, wall: now.wall, &effects)
        }
        let elapsed = Int64(safety.sessionElapsed(at: time).milliseconds)
        let sessionID = session.request.sessionID
        let write = record(.setpoint(setpoint, sessionID: sessionID, sessionTimeMs: elapsed, wall: now.wall.secondsSince1970,
                                     actor: actor, snapshot: snapshot), &effects)
        pending[id] = .setpoint(setpoint, record: write, sessionID: sessionID, actor: actor)
    }

    /// The setpoint's record is durable: the real core takes it, unless the session changed while
    /// it was written — then the record says it was withdrawn.
    mutating func applySetpoint(_ id: CommandID, _ setpoint: Setpoint, sessionID: String?, actor: String, at time: MonotonicInstant,
                                wall: WallTime, _ effects: inout [Effect]) {
        let withdrawn = ["depth_um": String(setpoint.depthUm), "layer": setpoint.layer.rawValue]
        guard safety.session?.request.sessionID == sessionID else {
            audit("setpoint_withdrawn", actor: actor, withdrawn.merging(["why": "the session changed"]) { a, _ in a }, wall: wall, &effects)
            return answer(id, .failure(error(.conflict, .stateChanged, "the session changed while the setpoint was recorded; it was not applied")), &effects)
        }
        let applied = decide(.setSetpoint(setpoint), at: time, wall: wall, actor: actor, &effects)
        if let refused = applied.refusal {
            audit("setpoint_withdrawn", actor: actor, withdrawn.merging(["why": refused.message]) { a, _ in a }, wall: wall, &effects)
            return answer(id, .failure(refusal(refused)), &effects)
        }
        // The pen's answer to SET_SETPOINTS is not awaited: arming checks the read-back.
        answer(id, .success(.done), &effects)
    }

    /// For a pen without a reader (GPIO pens) the technician's typed cartridge, which arming then
    /// checks like a read one: every field arming checks must be given, never assumed (H9).
    mutating func setCartridge(_ id: CommandID, _ entry: CartridgeEntry, actor: String, at time: MonotonicInstant, now: Now,
                               mark: Int, _ effects: inout [Effect]) {
        let hasReader = pen.capabilities?.contains(.cartridgeReader) ?? false
        var typed: CartridgeInfo?
        if !hasReader {
            var missing: [LimitViolation] = []
            if entry.needleCount == nil { missing.append(LimitViolation(field: "needle_count", value: "missing", allowed: "the count printed on the cartridge (\(AbsoluteLimits.needleCount) for SMP)")) }
            if entry.needleDiameterUm == nil { missing.append(LimitViolation(field: "needle_diameter_um", value: "missing", allowed: "the diameter printed on the cartridge (\(AbsoluteLimits.needleDiameterUm.lowerBound)...\(AbsoluteLimits.needleDiameterUm.upperBound) µm)")) }
            if entry.expiryDay == nil { missing.append(LimitViolation(field: "expiry_day", value: "missing", allowed: "the expiry date, in days since 1970-01-01")) }
            if (entry.lot ?? "").trimmingWhitespace.isEmpty { missing.append(LimitViolation(field: "lot", value: "missing", allowed: "the lot printed on the cartridge")) }
            guard missing.isEmpty, let needleCount = entry.needleCount, let diameter = entry.needleDiameterUm else {
                return answer(id, .failure(CommandError(.badRequest, .cartridgeIncomplete, "this pen has no cartridge reader: type every field of the cartridge",
                                                        violations: missing)), &effects)
            }
            typed = CartridgeInfo(id: entry.id, needleCount: needleCount, needleDiameterUm: diameter, lot: entry.lot ?? "", expiryDay: entry.expiryDay)
        }
        let decision = decide(.changeCartridge(entry.id), at: time, wall: now.wall, actor: actor, &effects)
        if let refused = decision.refusal { return answer(id, .failure(refusal(refused)), &effects) }
        pending[id] = .cartridge(awaiting: barrier(&effects), mark: mark, entry: entry, typed: typed, hasReader: hasReader, actor: actor)
    }

    /// What refuses an arm before the safety core is asked: records that cannot be trusted or
    /// written, a pen whose protocol cannot be spoken. Shared by `arm` and the checklist.
    func armingBlocked(recordsUnwritable: String?) -> CommandError? {
        if !recordsInconsistencies.isEmpty {
            return error(.conflict, .recordsInconsistent, "arming is refused while the records disagree with the audit log: "
                         + recordsInconsistencies.joined(separator: "; "))
        }
        if !recordsProblems.isEmpty {
            return error(.conflict, .recordsUnhealthy, "arming is refused while the records cannot be trusted: "
                         + recordsProblems.joined(separator: "; "))
        }
        if let why = recordsUnwritable {
            return error(.conflict, .recordsUnavailable, "arming is refused while the records cannot be written: \(why)")
        }
        if let refusal = pen.versionRefusal { return error(.conflict, .protocolIncompatible, refusal) }
        return nil
    }

    /// The facts the safety core decides an arm on, as they are now, and the presence table's
    /// word on `holder`'s stream. Shared by `arm` and the checklist, so the two never disagree.
    func armingFacts(for holder: PresenceTable.Holder?, now: Now) -> (ArmingFacts, Result<ConnectionID, PresenceTable.Refusal>?) {
        let candidate = holder.map { presence.candidate(for: $0, at: now.real) }
        let connection = candidate.flatMap { try? $0.get() }
        let flags = pen.telemetry?.flags ?? pen.status?.flags ?? []
        let facts = ArmingFacts(
            pen: pen.identity, hostProtocolMajor: Int(ProtocolVersion.major), hostProtocolMinor: Int(ProtocolVersion.minor),
            readBackLimitsCRC: pen.readBackLimitsCRC, cartridge: pen.cartridge,
            pedalPressed: flags.contains(.pedalPressed), estopPressed: flags.contains(.estopPressed),
            penFaultLatched: (pen.status?.fault ?? .none) != .none || flags.contains(.faultLatched),
            connection: connection, connectionAlive: connection != nil, today: now.wall.day)
        return (facts, candidate)
    }

    /// Every check an arm asked now would run, and what it would say, changing nothing: the
    /// console's pre-arm checklist. The presence check is `holder`'s (the asking page's stream).
    public func armingChecklist(for holder: PresenceTable.Holder?, recordsUnwritable: String?, now: Now, at time: MonotonicInstant)
        -> (blocked: CommandError?, failures: [ArmingFailure]) {
        let (facts, candidate) = armingFacts(for: holder, now: now)
        let failures = safety.armingFailures(facts, at: time).map { failure in
            if failure.code == .clientNotConnected, case .failure(let why)? = candidate { return ArmingFailure(.clientNotConnected, why.description) }
            return failure
        }
        return (armingBlocked(recordsUnwritable: recordsUnwritable), failures)
    }

    /// Arms on behalf of `holder`: the lease goes to that peer's own event stream, and only to it.
    mutating func arm(_ id: CommandID, _ holder: PresenceTable.Holder, actor: String, recordsUnwritable: String?, at time: MonotonicInstant,
                      now: Now, mark: Int, _ effects: inout [Effect]) {
        if let blocked = armingBlocked(recordsUnwritable: recordsUnwritable) { return answer(id, .failure(blocked), &effects) }
        let (facts, candidate) = armingFacts(for: holder, now: now)
        let connection = facts.connection
        let before = safety.phase
        let decision = safety.handle(.arm(facts), at: time)
        if let refused = decision.refusal {
            var failure = refusal(refused)
            if case .failure(let why)? = candidate {
                // The core says the check failed; the presence table says what to do about it.
                failure.armingFailures = failure.armingFailures.map {
                    $0.code == .clientNotConnected ? ArmingFailure(.clientNotConnected, why.description) : $0
                }
            }
            return answer(id, .failure(failure), &effects)
        }
        // From this moment the lease is that one stream's: if it closes or goes quiet while the
        // records are written or the pen answers, the core stops and latches.
        if let connection { presence.bind(connection) }
        // The cartridge binds to the session durably before the pen is armed.
        var binding: RecordID?
        for case .recordCartridgeUse(let cartridgeID, let sessionID) in decision.actions {
            binding = record(.cartridgeUse(cartridgeID: cartridgeID, sessionID: sessionID, cartridge: pen.cartridge,
                                           wall: now.wall.secondsSince1970, actor: actor), &effects)
        }
        apply(decision, phaseBefore: before, at: time, wall: now.wall, actor: actor, &effects)
        pending[id] = .arm(ArmProgress(holder: holder, actor: actor, connection: connection, armCount: safety.armCount, mark: mark,
                                       step: .recording(binding: binding, barrier: barrier(&effects), bindingFailure: nil)))
    }

    /// Arms waiting for the pen's answers that a stop, a fault or another arm has overtaken: they
    /// are answered now, and their ACK waits dropped — the link abandons a queued ARM when a stop
    /// goes out, and a wait left behind would take the next arm's ACK for its own.
    mutating func abandonOvertakenArms(_ effects: inout [Effect]) {
        for (id, command) in pending {
            guard case .arm(let progress) = command, case .awaitingPen = progress.step,
                  !(safety.isArmedPhase && stillOurs(progress)) else { continue }
            pending[id] = nil
            ackWaits.removeAll { $0.command == id }
            answer(id, .failure(error(.conflict, .stateChanged,
                                      "the session became \(safety.phase.rawValue) while the pen answered the arm; the pen is disarmed")), &effects)
        }
    }

    /// Whether the core is still armed by this very arm (not disarmed and armed again since).
    func stillOurs(_ arm: ArmProgress) -> Bool { safety.armedBy == arm.connection && safety.armCount == arm.armCount }

    /// Undoes this arm, and only this arm: if another arm came meanwhile, that one is theirs.
    mutating func undo(_ arm: ArmProgress, at now: Now, _ effects: inout [Effect]) {
        guard stillOurs(arm) else { return }
        decide(.disarm, at: lastNow, wall: now.wall, actor: arm.actor, &effects)
        presence.release()
    }

    /// Clears a latched fault: first the pen's own latch (CLEAR_FAULT, refused by the pen while
    /// the cause persists), then — once a telemetry frame newer than the pen's answer shows the
    /// cause gone — the core's. Never re-arms.
    mutating func clearFault(_ id: CommandID, actor: String, recordsUnwritable: String?, at time: MonotonicInstant, now: Now,
                             mark: Int, _ effects: inout [Effect]) {
        guard safety.phase == .faulted else {
            return answer(id, .failure(error(.conflict, .illegalTransition, "no fault is latched")), &effects)
        }
        let unwritable = recordsOpen ? recordsUnwritable : "they cannot be opened (restart once the disk has room)"
        if safety.faults.contains(.recordsUnavailable), let why = unwritable {
            return answer(id, .failure(error(.conflict, .faultPersists, "the records still cannot be written: \(why)")), &effects)
        }
        let progress = ClearProgress(actor: actor, faults: safety.faults.map(\.rawValue).joined(separator: ","), mark: mark,
                                     latches: latches, step: .awaitingAck)
        guard linkOpen else {
            return finishClear(id, progress, at: now, &effects)
        }
        expectAck(.clearFault, for: id, at: now)
        effects.append(.send(.clearFault(.init())))
        effects.append(.flush(stops: false))
        pending[id] = .clearFault(progress)
    }

    mutating func finishClear(_ id: CommandID, _ progress: ClearProgress, at now: Now, _ effects: inout [Effect]) {
        pending[id] = nil
        // A fault that latched while the pen was clearing is not the one the technician looked
        // at: clearing it unseen would lose a latch. They look, and clear again.
        guard latches == progress.latches else {
            return answer(id, .failure(error(.conflict, .faultPersists,
                                             "another fault latched while clearing (\(safety.faults.map(\.rawValue).joined(separator: ", "))): look at it, then clear again")), &effects)
        }
        let decision = decide(.clearFault, at: lastNow, wall: now.wall, actor: progress.actor, &effects)
        if let refused = decision.refusal { return answer(id, .failure(refusal(refused)), &effects) }
        audit("fault_cleared", actor: progress.actor, ["faults": progress.faults], wall: now.wall, &effects)
        answerWhenDurable(id, mark: progress.mark, .done, &effects)
    }

    /// Records the change first, then swaps the core's limits — only while no session is open,
    /// and with no session opening while the record is written.
    mutating func replaceLimits(_ id: CommandID, _ limits: SafetyLimits, _ request: RecordRequest, actor: String, _ effects: inout [Effect]) {
        guard !limitsChanging else {
            return answer(id, .failure(error(.conflict, .limitsChanging, "another limits change is being recorded: try again in a moment")), &effects)
        }
        guard safety.phase == .noSession || safety.phase == .closed else {
            // Faulted with no session (an e-stop between sessions) is a latch, not a session:
            // say which, so the engineer clears it rather than looks for a session to close.
            if safety.session == nil {
                return answer(id, .failure(error(.conflict, .faultLatched,
                                                 "limits change only with no fault latched (\(safety.faults.map(\.rawValue).joined(separator: ", "))): clear it first")), &effects)
            }
            return answer(id, .failure(error(.conflict, .sessionOpen, "limits change only while no session is open")), &effects)
        }
        do {
            _ = try SafetyCore(limits: limits, history: safety.history)  // refused before anything is recorded
        } catch {
            return answer(id, .failure(self.error(.unprocessable, .limitsRefused, "the limit set is refused", violations: error.violations)), &effects)
        }
        guard recordsOpen else {
            return answer(id, .failure(error(.unavailable, .recordsUnavailable, "limits change only with working records: \(recordsProblems.joined(separator: "; "))")), &effects)
        }
        limitsChanging = true
        pending[id] = .limits(limits, record: record(request, &effects), actor: actor)
    }

    // MARK: - The pen's answers

    mutating func expectAck(_ message: MessageID, for command: CommandID, at now: Now) {
        ackWaits.append(AckWait(message: message, command: command, deadline: now.real + settings.ackTimeout))
    }

    /// The pen answered (or gave up on) `message`: the oldest wait for it gets the outcome.
    mutating func answerAck(_ message: MessageID, _ outcome: AckOutcome, at now: Now, _ effects: inout [Effect]) {
        guard let index = ackWaits.firstIndex(where: { $0.message == message }) else { return }
        let wait = ackWaits.remove(at: index)
        acknowledged(wait, outcome, at: now, &effects)
    }

    mutating func failAckWaits(at now: Now, _ effects: inout [Effect]) {
        let waits = ackWaits
        ackWaits.removeAll()
        for wait in waits { acknowledged(wait, .noAnswer, at: now, &effects) }
    }

    mutating func expireAckWaits(at now: Now, _ effects: inout [Effect]) {
        guard ackWaits.contains(where: { $0.deadline <= now.real }) else { return }
        let expired = ackWaits.filter { $0.deadline <= now.real }
        ackWaits.removeAll { $0.deadline <= now.real }
        for wait in expired { acknowledged(wait, .noAnswer, at: now, &effects) }
    }

    mutating func acknowledged(_ wait: AckWait, _ outcome: AckOutcome, at now: Now, _ effects: inout [Effect]) {
        let id = wait.command
        switch pending[id] {
        case .exchange(_, let sentAt):
            pending[id] = nil
            switch outcome {
            case .answered(let status, let detail):
                answer(id, .success(.exchanged(status: status, detail: detail, roundTrip: now.real - sentAt)), &effects)
            case .noAnswer:
                answer(id, .success(.exchanged(status: nil, detail: 0, roundTrip: nil)), &effects)
            }
        case .arm(var progress):
            guard case .awaitingPen(var arm, var run) = progress.step else { return }
            if wait.message == .arm { arm = outcome } else { run = outcome }
            progress.step = .awaitingPen(arm: arm, run: run)
            pending[id] = .arm(progress)
            if let arm, let run { penAnsweredArm(id, progress, arm: arm, run: run, at: now, &effects) }
        case .clearFault(var progress):
            guard case .awaitingAck = progress.step else { return }
            switch outcome {
            case .answered(.ok, _):
                progress.step = .awaitingTelemetry(after: lastNow, deadline: now.real + settings.freshTelemetryWait)
                pending[id] = .clearFault(progress)
                resumeClearsWaitingForTelemetry(at: now, &effects)
            case .answered(let status, let detail):
                pending[id] = nil
                answer(id, .failure(error(.conflict, .faultPersists,
                                          "the pen refuses to clear its fault (\(status), fault \(FaultCode(rawValue: detail))): its cause is still there")), &effects)
            case .noAnswer:
                pending[id] = nil
                answer(id, .failure(error(.conflict, .faultPersists, "the pen did not answer CLEAR_FAULT: the cause cannot be seen to be gone")), &effects)
            }
        default:
            break
        }
    }

    mutating func resumeClearsWaitingForTelemetry(at now: Now, _ effects: inout [Effect]) {
        for (id, command) in pending {
            guard case .clearFault(let progress) = command, case .awaitingTelemetry(let after, let deadline) = progress.step else { continue }
            let fresh = pen.telemetryAt.map { $0 > after } ?? false
            if fresh {
                finishClear(id, progress, at: now, &effects)
            } else if now.real >= deadline {
                // No frame since the pen cleared its latch: nothing shows the cause gone, and an
                // older frame cannot (it may predate a newer fault). The latch stays.
                pending[id] = nil
                answer(id, .failure(error(.conflict, .faultPersists,
                                          "the pen cleared its latch but sent no telemetry since: the cause cannot be seen to be gone; try again")), &effects)
            }
        }
    }

    /// Both of the pen's answers to ARM and MOTOR_RUN are in.
    mutating func penAnsweredArm(_ id: CommandID, _ progress: ArmProgress, arm: AckOutcome, run: AckOutcome, at now: Now,
                                 _ effects: inout [Effect]) {
        pending[id] = nil
        for (command, outcome) in [("ARM", arm), ("MOTOR_RUN", run)] {
            guard case .answered(.ok, _) = outcome else {
                undo(progress, at: now, &effects)
                let reason = if case .answered(let status, let detail) = outcome { "\(status) (detail \(detail))" } else { "no answer" }
                return answer(id, .failure(error(.conflict, .penRefused, "the pen did not accept \(command): \(reason); the session is disarmed")), &effects)
            }
        }
        // A stop, a close or a fault may have come while the pen answered: the pen must not stay
        // armed for a session that is no longer armed (its DISARM already went out first, and the
        // link dropped the queued ARM; this makes sure and says so).
        guard safety.isArmedPhase else {
            effects.append(.send(.disarm(.init())))
            effects.append(.flush(stops: true))
            return answer(id, .failure(error(.conflict, .stateChanged, "the session became \(safety.phase.rawValue) while arming; the pen is disarmed")), &effects)
        }
        guard stillOurs(progress) else {
            // Disarmed and armed again by another client while the pen answered: that arm is
            // theirs (their lease); this one is not acknowledged.
            return answer(id, .failure(error(.conflict, .stateChanged, "the session was disarmed and armed again by another client while this arm waited")), &effects)
        }
        // A pen without a depth sensor (a GPIO pen) runs on its mechanical depth setting, guarded
        // by its over-depth switch: the record says so.
        audit("armed", actor: progress.actor, ["client": progress.holder.client, "pid": "\(progress.holder.pid)",
                                               "depth": pen.identity?.hasDepthSensor == false ? "mechanical" : "measured"], wall: now.wall, &effects)
        var next = progress
        next.step = .recordingArmed(barrier: barrier(&effects))
        pending[id] = .arm(next)
    }

    // MARK: - The records' answers

    /// The outcome of record `id`. Records complete in the order they were asked for, so an
    /// outcome means every earlier one's outcome has come in too.
    public mutating func recorded(_ id: RecordID, _ result: Result<Void, RecordFailure>, at now: Now) -> [Effect] {
        finish(outcome(id, result, at: now))
    }

    mutating func outcome(_ id: RecordID, _ result: Result<Void, RecordFailure>, at now: Now) -> [Effect] {
        var effects: [Effect] = []
        if case .failure(let failure) = result {
            recordFailures += 1
            lastRecordFailure = failure.description
        }
        guard let (command, waiting) = pending.first(where: { $0.value.awaits(id) }) else { return effects }
        let failed = if case .failure = result { true } else { false }
        switch waiting {
        case .durable(_, let mark, let answer, let failure):
            pending[command] = nil
            if failed || recordsFailed(since: mark) {
                self.answer(command, .failure(unrecordedError(failure)), &effects)
            } else {
                self.answer(command, .success(answer), &effects)
            }
        case .open(_, let mark, let sessionID, let actor):
            pending[command] = nil
            if failed || recordsFailed(since: mark) {
                // Not recorded: do not leave a session the records do not know.
                if safety.session?.request.sessionID == sessionID {
                    decide(.closeSession, at: stamp(now, &effects), wall: now.wall, actor: actor, &effects)
                }
                answer(command, .failure(unrecordedError("the change was made but could not be recorded")), &effects)
            } else {
                effects.append(.publish(DaemonEvent(.session, ["state": "open", "session_id": .string(sessionID)])))
                answer(command, .success(.done), &effects)
            }
        case .setpoint(let setpoint, _, let sessionID, let actor):
            pending[command] = nil
            if case .failure(let failure) = result {
                return effects + [.answer(command, .failure(error(.unavailable, .recordsUnavailable,
                                                                  "the setpoint was not changed: it could not be recorded (\(failure)); check the disk")))]
            }
            applySetpoint(command, setpoint, sessionID: sessionID, actor: actor, at: stamp(now, &effects), wall: now.wall, &effects)
        case .cartridge(_, let mark, let entry, let typed, let hasReader, let actor):
            pending[command] = nil
            if failed || recordsFailed(since: mark) {
                return effects + [.answer(command, .failure(unrecordedError("the change was made but could not be recorded")))]
            }
            if let typed {
                manualCartridge = typed
                pen.cartridge = typed
            }
            audit("cartridge_set", actor: actor, [
                "cartridge_id": entry.id, "lot": entry.lot ?? "", "typed": hasReader ? "false" : "true",
                "needle_count": entry.needleCount.map(String.init) ?? "", "needle_diameter_um": entry.needleDiameterUm.map(String.init) ?? "",
                "expiry_day": entry.expiryDay.map(String.init) ?? "",
            ], wall: now.wall, &effects)
            answerWhenDurable(command, mark: mark, .done, &effects)
        case .arm(var progress):
            switch progress.step {
            case .recording(let binding, let barrier, let bindingFailure):
                if id == binding {
                    if case .failure(let failure) = result {
                        progress.step = .recording(binding: binding, barrier: barrier, bindingFailure: failure.description)
                        pending[command] = .arm(progress)
                    }
                    return effects
                }
                if failed || bindingFailure != nil || recordsFailed(since: progress.mark) {
                    // Not recorded: not armed. The pen never got ARM (it goes out only after this).
                    pending[command] = nil
                    undo(progress, at: now, &effects)
                    let why = bindingFailure ?? lastRecordFailure ?? "a write failed"
                    return effects + [.answer(command, .failure(error(.unavailable, .recordsUnavailable,
                                                                      "not armed: the arm could not be recorded (\(why)); check the disk")))]
                }
                // Anything may have happened while the records were written (a fault, an e-stop,
                // a disarm and another client's arm): go on only if this is still this arm.
                guard safety.phase == .armed, stillOurs(progress) else {
                    pending[command] = nil
                    return effects + [.answer(command, .failure(error(.conflict, .stateChanged, "the session became \(safety.phase.rawValue) while arming")))]
                }
                expectAck(.arm, for: command, at: now)
                expectAck(.motorRun, for: command, at: now)
                effects.append(.send(.arm(.init(limitsCRC: pen.readBackLimitsCRC ?? 0))))
                effects.append(.send(.motorRun(.init())))
                effects.append(.flush(stops: false))
                progress.step = .awaitingPen(arm: nil, run: nil)
                pending[command] = .arm(progress)
            case .recordingArmed:
                pending[command] = nil
                if failed || recordsFailed(since: progress.mark) {
                    // A refusal means it did not happen: an arm that cannot be recorded is undone.
                    undo(progress, at: now, &effects)
                    return effects + [.answer(command, .failure(error(.unavailable, .recordsUnavailable,
                                                                      "not armed: the arm could not be recorded (\(lastRecordFailure ?? "a write failed")); the pen is disarmed")))]
                }
                // A stop, a fault or another console's arm while the armed record was written:
                // that one won (its stops are out); this arm is not acknowledged.
                guard safety.isArmedPhase, stillOurs(progress) else {
                    return effects + [.answer(command, .failure(error(.conflict, .stateChanged,
                                                                      "the session became \(safety.phase.rawValue) while the arm was recorded")))]
                }
                answer(command, .success(.done), &effects)
            case .awaitingPen:
                break
            }
        case .stop(let kind, _, let mark):
            pending[command] = nil
            guard failed || recordsFailed(since: mark) else {
                return effects + [.answer(command, .success(.stopped(unrecorded: nil)))]
            }
            log(.error, "stopped, but the record could not be written", ["kind": kind.rawValue], &effects)
            answer(command, .success(.stopped(unrecorded: StopUnrecorded(
                code: ProblemCode.stoppedUnrecorded.rawValue,
                detail: "stopped; the record could not be written (\(lastRecordFailure ?? "a write failed")): it is kept in memory and written as soon as the disk has room"))),
                   &effects)
        case .limits(let limits, _, let actor):
            pending[command] = nil
            limitsChanging = false
            if case .failure(let failure) = result {
                return effects + [.answer(command, .failure(error(.unavailable, .recordsUnavailable,
                                                                  "the limits were not changed: they could not be recorded (\(failure))")))]
            }
            // Only the limits change: a fault that latched while the record was written, and the
            // history that grew meanwhile, stay.
            do {
                safety = try safety.replacingLimits(limits)
            } catch {
                return effects + [.answer(command, .failure(self.error(.unprocessable, .limitsRefused, "the limit set is refused", violations: error.violations)))]
            }
            log(.notice, "limits changed", ["actor": actor], &effects)
            answer(command, .success(.limits(safety.limits)), &effects)
        case .clearFault, .exchange:
            break
        }
        return effects
    }
}

/// Why a record was not written, in words.
public struct RecordFailure: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension SupervisorCore.Pending {
    /// Whether this command waits for record `id`'s outcome.
    func awaits(_ id: SupervisorCore.RecordID) -> Bool {
        switch self {
        case .durable(let awaiting, _, _, _), .open(let awaiting, _, _, _), .cartridge(let awaiting, _, _, _, _, _), .stop(_, let awaiting, _):
            awaiting == id
        case .setpoint(_, let record, _, _), .limits(_, let record, _):
            record == id
        case .arm(let progress):
            switch progress.step {
            case .recording(let binding, let barrier, _): binding == id || barrier == id
            case .recordingArmed(let barrier): barrier == id
            case .awaitingPen: false
            }
        case .clearFault, .exchange:
            false
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
