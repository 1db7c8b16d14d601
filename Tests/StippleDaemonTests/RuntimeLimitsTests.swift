import Foundation
import StippleDaemon
import StippleRecords
import StippleSafety
import StippleSupervision
import Testing

/// Issue 15 items 5, 6 and 16: run-time limits are recorded before they take effect, kept in the
/// records with their audit entry, and read back only when the chain agrees.
@Suite("Run-time limits in the records")
struct RuntimeLimitsTests {
    func store() throws -> RecordStore { try RecordStore(path: DaemonRig.temporaryDirectory() + "/stipple.db") }

    @Test("saved limits read back; a reset returns to none; both are in the audit chain")
    func saveAndReset() throws {
        let store = try store()
        #expect(try store.runtimeLimits() == nil)
        var limits = SafetyLimits.defaults
        limits.crownMaxUm = 800
        try store.saveRuntimeLimits(limits, actor: "eng", at: 1)
        #expect(try store.runtimeLimits() == limits)
        try store.resetRuntimeLimits(actor: "eng", reason: "trial over", at: 2)
        #expect(try store.runtimeLimits() == nil)
        #expect(try store.auditEntries(limit: 10).map(\.kind) == ["limits_changed", "limits_reset"])
        #expect(try store.verifyAudit().ok)
    }

    @Test("the supervisor records a tightening before it takes effect, and says so when it cannot")
    func recordedBeforeEffect() async throws {
        let (supervisor, store) = try await RealTimeSupervisor.make()
        var limits = SafetyLimits.defaults
        limits.crownMaxUm = 800
        let inForce = try await supervisor.changeLimits(limits, actor: "eng")
        #expect(inForce.crownMaxUm == 800)
        #expect(try store.runtimeLimits()?.crownMaxUm == 800, "durable before the answer")
        var looser = limits
        looser.crownMaxUm = 1000
        await #expect(throws: CommandError.self) { try await supervisor.changeLimits(looser, actor: "eng") }
        #expect(try store.runtimeLimits()?.crownMaxUm == 800)
        await #expect(throws: CommandError.self) { try await supervisor.resetLimits(reason: "  ", actor: "eng") }
        let reset = try await supervisor.resetLimits(reason: "back to the site's", actor: "eng")
        #expect(reset.crownMaxUm == SafetyLimits.defaults.crownMaxUm)
        await supervisor.shutdown()
    }
}
