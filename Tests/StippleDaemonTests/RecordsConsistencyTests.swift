import Foundation
import Logging
import StippleDaemon
import StippleRecords
import StippleSafety
import StippleSupervision
import StippleWire
import Testing

/// Issue 15 items 13 and 14: the audit chain is the authority over the tables.
@Suite("Records checked against the audit chain")
struct RecordsConsistencyTests {
    static let wall: Int64 = 1_790_000_000

    /// A store holding one open session whose row says 0 s of session time.
    func storeWithOpenSession() throws -> RecordStore {
        let store = try RecordStore(path: DaemonRig.temporaryDirectory() + "/stipple.db")
        var core = try SafetyCore(limits: .defaults, history: SafetyHistory())
        let request = SessionRequest(sessionID: "S-1", clientID: "C-1", technician: "ana", zone: .crown, cartridgeID: "CART-1",
                                     pigmentLots: ["P-1"], penSerial: "PEN-1")
        _ = core.handle(.openSession(request, wall: WallTime(secondsSince1970: Self.wall), bootID: "boot-A"), at: .zero)
        try store.openSession(try #require(core.snapshot), at: Self.wall, actor: "test")
        return store
    }

    @Test("a checkpoint behind the chain: the larger session time wins and arming is refused as records_inconsistent")
    func sessionTimeBehindTheChain() async throws {
        let store = try storeWithOpenSession()
        // The chain saw two hours of session time; the row's checkpoint was rolled back to zero.
        try store.audit(kind: "session_state", actor: "stippled", sessionID: "S-1",
                        payload: ["from": "armed", "to": "open", "session_time_ms": "7200000"], at: Self.wall + 7200)
        let facts = try store.chainFacts()
        #expect(facts.sessions["S-1"]?.maxSessionTimeMs == 7_200_000)
        let problems = try store.inconsistencies(with: facts)
        #expect(problems.count == 1 && problems[0].contains("7200 s"), "\(problems)")

        let supervisor = try Supervisor(clock: SystemClock(), settings: .init(limits: .defaults), records: RecordWriter(store: store),
                                        recordsProblems: [], hub: EventHub(), logger: RealTimeSupervisor.quietLogger)
        await supervisor.start()
        let status = await supervisor.status()
        #expect((status.session?.elapsedMs ?? 0) >= 7_200_000, "session time given back: \(status.session?.elapsedMs ?? -1)")
        #expect(status.records.hasPrefix("inconsistent"), "\(status.records)")
        do {
            _ = try await supervisor.arm(PresenceTable.Holder(uid: 1, pid: 1, client: "gui"), actor: "test")
            Issue.record("armed on inconsistent records")
        } catch {
            #expect(error.code.rawValue == "records_inconsistent")
        }
        await supervisor.shutdown()
    }

    @Test("a chain truncated behind its witnessed head fails verification")
    func truncationAgainstTheWitness() throws {
        let store = try storeWithOpenSession()
        let head = try #require(try store.auditHead())
        #expect(try store.missing(head) == nil)
        let later = AuditHead(seq: head.seq + 2, hash: String(repeating: "a", count: 64))
        #expect(try store.missing(later)?.contains("truncated") == true)
        store.expect(later)
        let verification = try store.verifyAudit()
        #expect(!verification.ok && verification.brokenSeq == later.seq)
    }

    @Test("the witness keeps only newer heads, and a restore resets it")
    func witnessFile() throws {
        let directory = DaemonRig.temporaryDirectory()
        let witness = AuditWitness(stateDirectory: directory, logger: RealTimeSupervisor.quietLogger)
        let a = AuditHead(seq: 5, hash: String(repeating: "1", count: 64))
        let b = AuditHead(seq: 3, hash: String(repeating: "2", count: 64))
        witness.record(a)
        witness.record(b)
        #expect(AuditWitness.witnessed(stateDirectory: directory)?.seq == 5)
        witness.reset(to: b)
        #expect(AuditWitness.witnessed(stateDirectory: directory) == b)
    }
}
