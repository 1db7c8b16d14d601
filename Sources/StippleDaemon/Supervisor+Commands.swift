import StippleAPI
import StippleSafety
import StippleSupervision
import StippleWire

/// What a stop answers: the status, and — only when its record could not be written — that the
/// needle stopped anyway (`stopped_unrecorded`). Encoded flat: the status's fields plus
/// `unrecorded`.
public struct StopResult: Encodable, Sendable {
    public typealias Unrecorded = StopUnrecorded
    public var status: StatusView
    public var unrecorded: Unrecorded?

    enum Key: String, CodingKey { case unrecorded }

    public func encode(to encoder: any Encoder) throws {
        try status.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encodeIfPresent(unrecorded, forKey: .unrecorded)
    }
}

/// The API's commands: each one goes to `SupervisorCore.command`, which decides, and whose
/// answer comes once what it changed is durable (see `SupervisorCore`). These only unwrap it.
extension Supervisor {
    /// Answers with the status once the command's answer is `.done`.
    func status(of command: SupervisorCore.Command) async throws(CommandError) -> StatusView {
        let (result, status) = await perform(command)
        _ = try result.get()
        return status
    }

    /// Opens a session. An empty `sessionID` lets the daemon choose one; an empty `penSerial`
    /// binds the session to the identified pen.
    ///
    /// With a clinic database, the client and the cartridge are claimed there first (a refused
    /// claim refuses the open); the safety core then applies its own rules as always, and a
    /// session it refuses gives its claims back.
    public func openSession(_ request: SessionRequest, actor: String) async throws(CommandError) -> StatusView {
        var request = request
        if request.sessionID.isEmpty { request.sessionID = Self.newSessionID(wall: clock.wallNow()) }
        guard let clinic, machine.recordsOpen, let client = Identifier.canonical(request.clientID),
              let cartridge = Identifier.canonical(request.cartridgeID), Identifier.canonical(request.sessionID) != nil else {
            // Without a clinic — or without records, or with identifiers the core refuses anyway —
            // nothing is claimed (a claim for a session that cannot open would only block the
            // client), and an offline reason means nothing.
            request.clinicOfflineReason = nil
            return try await status(of: .openSession(request, actor: actor))
        }
        let limits = core.limits
        let claim = SessionClaim(
            sessionID: request.sessionID, clientID: client, cartridgeID: cartridge,
            gapSeconds: Int64(limits.minimumSessionGap.wholeSeconds), maxSessionSeconds: Int64(limits.sessionLength.wholeSeconds),
            gapOverrideReason: request.gapOverrideReason, simulatedTime: clock.isAccelerated ? clock.wallNow().secondsSince1970 : nil,
            offlineReason: request.clinicOfflineReason)
        switch await clinic.claimSession(claim) {
        case .granted:
            request.clinicOfflineReason = nil
        case .refused(let why):
            throw CommandError(.conflict, .clinicRefused, "the clinic refused this session: \(why)")
        case .unreachable(let why):
            throw CommandError(.unavailable, .clinicUnreachable, why)
        case .deferred(let why):
            logger.warning("session opened without the clinic's claim (offline, engineer's reason): claimed when the database is back",
                           metadata: ["session": "\(request.sessionID)", "why": "\(why)"])
        }
        do {
            return try await status(of: .openSession(request, actor: actor))
        } catch {
            if core.snapshot?.session.request.sessionID != request.sessionID { await clinic.releaseSession(request.sessionID) }
            throw error
        }
    }

    /// A session id nobody chose: the date and a random part (the core refuses a reused one).
    static func newSessionID(wall: WallTime) -> String {
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 36, uppercase: true)
        return "S-\(wall.day)-\(random)"
    }

    /// A new setpoint: recorded **before** it takes effect (`SupervisorCore.setSetpoint`).
    public func setSetpoint(_ setpoint: Setpoint, actor: String) async throws(CommandError) -> StatusView {
        try await status(of: .setSetpoint(setpoint, actor: actor))
    }

    /// Records the cartridge for the session; for a pen without a reader (GPIO pens) this is the
    /// technician's typed id, lot and expiry, which arming then checks like a read one.
    /// With a clinic database, a cartridge is claimed clinic-wide first (single use across chairs).
    public func setCartridge(id: String, lot: String?, expiryDay: Int?, needleCount: Int?, needleDiameterUm: Int?,
                             actor: String) async throws(CommandError) -> StatusView {
        let command = SupervisorCore.Command.setCartridge(
            CartridgeEntry(id: id, lot: lot, expiryDay: expiryDay, needleCount: needleCount, needleDiameterUm: needleDiameterUm), actor: actor)
        // Only where the core could take it (an open session), so a refusal it would make anyway
        // never leaves a claim behind; the session's own cartridge was claimed when it opened.
        guard let clinic, core.phase == .open, let cartridge = Identifier.canonical(id), let snapshot = core.snapshot,
              cartridge != snapshot.session.cartridgeID else {
            return try await status(of: command)
        }
        let session = snapshot.session.request.sessionID
        switch await clinic.claimCartridge(cartridge, sessionID: session) {
        case .granted, .deferred: break
        case .refused(let why): throw CommandError(.conflict, .clinicRefused, "the clinic refused this cartridge: \(why)")
        case .unreachable(let why): throw CommandError(.unavailable, .clinicUnreachable, why)
        }
        do {
            return try await status(of: command)
        } catch {
            await clinic.releaseCartridge(cartridge, sessionID: session)
            throw error
        }
    }

    /// Arms on behalf of `holder`: the peer (uid and pid from its socket) and client id that
    /// asked. The lease goes to that peer's own event stream under that client id, and only to it.
    public func arm(_ holder: PresenceTable.Holder, actor: String) async throws(CommandError) -> StatusView {
        try await status(of: .arm(holder, actor: actor, recordsUnwritable: records?.unwritableReason))
    }

    /// Every arming check as an arm now would run it, changing nothing (the console's checklist).
    public func armingChecklist(_ holder: PresenceTable.Holder?) -> (blocked: CommandError?, failures: [ArmingFailure]) {
        let time = stamp()
        return machine.armingChecklist(for: holder, recordsUnwritable: records?.unwritableReason, now: now(), at: time)
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
    /// (ahead of every queued job), and `answer` is called on a thread of its own once the record
    /// is written or failed — no task, no thread of Swift's cooperative pool on the way.
    public nonisolated func stopFromSocket(_ kind: StopKind, actor: String, executed: @escaping @Sendable () -> Void = {},
                                           answer: @escaping @Sendable (StopResult) -> Void) {
        loop.enqueueUrgent { [self] in
            assumeIsolated { supervisor in
                supervisor.stopNow(kind, actor: actor) { [answers] result in answers.async { answer(result) } }
                executed()
            }
        }
    }

    /// The stop itself, synchronous: the decision's stops are on the wire when this returns.
    func stopNow(_ kind: StopKind, actor: String, answer: @escaping @Sendable (StopResult) -> Void) {
        perform(.stop(kind, actor: actor)) { result, status in
            // A stop is never refused: the core answers it `.stopped`, recorded or not.
            let unrecorded: StopUnrecorded? = if case .success(.stopped(let unrecorded)) = result { unrecorded } else { nil }
            answer(StopResult(status: status, unrecorded: unrecorded))
        }
    }

    /// Clears a latched fault: the pen's latch first, then the core's, on fresh evidence. Never
    /// re-arms.
    public func clearFault(actor: String) async throws(CommandError) -> StatusView {
        try await status(of: .clearFault(actor: actor, recordsUnwritable: records?.unwritableReason))
    }

    /// Makes this workstation one of a clinic's: sessions and cartridges are claimed there first.
    public func useClinic(_ clinic: any ClinicClaims) { self.clinic = clinic }

    public func closeSession(actor: String) async throws(CommandError) -> StatusView {
        try await status(of: .closeSession(actor: actor))
    }

    /// Tightens the limits (engineers): only while no session is open, only tighter than now.
    /// Recorded durably, with its audit entry, before it takes effect.
    public func changeLimits(_ limits: SafetyLimits, actor: String) async throws(CommandError) -> SafetyLimits {
        try await newLimits(.changeLimits(limits, actor: actor))
    }

    /// An engineer's explicit, recorded reset: the run-time tightening is dropped and the
    /// configuration's limits apply again. The only way limits ever loosen.
    public func resetLimits(reason: String, actor: String) async throws(CommandError) -> SafetyLimits {
        try await newLimits(.resetLimits(reason: reason, actor: actor))
    }

    func newLimits(_ command: SupervisorCore.Command) async throws(CommandError) -> SafetyLimits {
        let (result, _) = await perform(command)
        guard case .limits(let limits) = try result.get() else { return core.limits }
        return limits
    }

    public var limits: SafetyLimits { core.limits }

    /// The stream that holds the lease, if any (tests, status).
    public var leaseHolder: ConnectionID? { machine.presence.lease }
}
