import Foundation
import StippleClinicDatabase
import StippleDaemon
import StippleRecords
import StippleSafety
import StippleSupervision
import Synchronization
import Testing

/// A clinic whose answers the test scripts, and which remembers what it was asked.
final class ScriptedClinic: ClinicClaims {
    let sessionAnswer: Mutex<ClaimOutcome>
    let cartridgeAnswer: Mutex<ClaimOutcome>
    let asked = Mutex<[String]>([])

    init(session: ClaimOutcome = .granted, cartridge: ClaimOutcome = .granted) {
        sessionAnswer = Mutex(session)
        cartridgeAnswer = Mutex(cartridge)
    }

    func claimSession(_ claim: SessionClaim) async -> ClaimOutcome {
        asked.withLock { $0.append("session \(claim.sessionID) \(claim.clientID) \(claim.cartridgeID) gap \(claim.gapSeconds) max \(claim.maxSessionSeconds)") }
        return sessionAnswer.withLock { $0 }
    }

    func claimCartridge(_ cartridgeID: String, sessionID: String) async -> ClaimOutcome {
        asked.withLock { $0.append("cartridge \(cartridgeID) \(sessionID)") }
        return cartridgeAnswer.withLock { $0 }
    }

    func releaseSession(_ sessionID: String) async {
        asked.withLock { $0.append("release \(sessionID)") }
    }

    func releaseCartridge(_ cartridgeID: String, sessionID: String) async {
        asked.withLock { $0.append("release cartridge \(cartridgeID) \(sessionID)") }
    }
}

/// Issue 20: the supervisor asks the clinic before a session opens, and the clinic's answer
/// decides whether it opens; the safety core still applies every rule of its own.
@Suite(.serialized) struct ClinicClaimsTests {
    func request(_ id: String, client: String = "c-1", cartridge: String = "SIM-CART-0001", offline: String? = nil) -> SessionRequest {
        SessionRequest(sessionID: id, clientID: client, technician: "ana", zone: .crown, cartridgeID: cartridge,
                       pigmentLots: ["P"], penSerial: "", clinicOfflineReason: offline)
    }

    @Test("a refused claim refuses the open, in the clinic's words, and nothing is recorded")
    func refusedClaimRefusesTheOpen() async throws {
        let rig = try await DaemonRig()
        let clinic = ScriptedClinic(session: .refused("client C-1 had a session at workstation chair_a that ended …"))
        await rig.supervisor.useClinic(clinic)
        do {
            _ = try await rig.supervisor.openSession(request("S-1"), actor: "test")
            Issue.record("opened against the clinic's refusal")
        } catch {
            #expect(error.code.rawValue == "clinic_refused" && error.kind == .conflict)
            #expect(error.message.contains("chair_a"))
        }
        #expect(try rig.store.session("S-1") == nil)
        // Identifiers go to the clinic in their canonical form, with the limits in force.
        let gap = Int64(SafetyLimits.defaults.minimumSessionGap.wholeSeconds)
        #expect(clinic.asked.withLock { $0 } == ["session S-1 C-1 SIM-CART-0001 gap \(gap) max 14400"])
    }

    @Test("the database away: refused (503) unless the policy defers on an engineer's reason, which is recorded")
    func unreachableAndDeferred() async throws {
        let rig = try await DaemonRig()
        let clinic = ScriptedClinic(session: .unreachable("no answer within 2 s"))
        await rig.supervisor.useClinic(clinic)
        do {
            _ = try await rig.supervisor.openSession(request("S-2"), actor: "test")
            Issue.record("opened with the clinic unreachable")
        } catch {
            #expect(error.code.rawValue == "clinic_unreachable" && error.kind == .unavailable)
        }
        clinic.sessionAnswer.withLock { $0 = .deferred("no answer within 2 s") }
        let status = try await rig.supervisor.openSession(request("S-3", offline: "network down; Dr. K"), actor: "eng")
        #expect(status.session?.id == "S-3")
        let opened = try #require(try rig.store.auditEntries(sessionID: "S-3").first { $0.kind == "session_opened" })
        #expect(opened.payload.contains("\"clinic_offline_reason\":\"network down; Dr. K\""))
    }

    @Test("a granted claim the safety core then refuses is given back; a granted one that opens is not")
    func coreRefusalReleasesTheClaim() async throws {
        let rig = try await DaemonRig()
        let clinic = ScriptedClinic()
        await rig.supervisor.useClinic(clinic)
        _ = try await rig.supervisor.openSession(request("S-4", offline: "ignored when the clinic answers"), actor: "test")
        let opened = try #require(try rig.store.auditEntries(sessionID: "S-4").first { $0.kind == "session_opened" })
        #expect(!opened.payload.contains("clinic_offline_reason"), "an offline reason means nothing once the clinic granted the claim")
        // A second session while S-4 is open: the clinic (scripted) grants it, the core refuses it.
        do {
            _ = try await rig.supervisor.openSession(request("S-5", client: "C-2", cartridge: "K-9"), actor: "test")
            Issue.record("two sessions open at once")
        } catch {
            #expect(error.code.rawValue == "session_already_open")
        }
        let asked = clinic.asked.withLock { $0 }
        #expect(asked.contains("release S-5") && !asked.contains("release S-4"))
    }

    @Test("a cartridge set in a session is claimed clinic-wide first; a refusal changes nothing")
    func cartridgeClaim() async throws {
        let rig = try await DaemonRig()
        let clinic = ScriptedClinic(cartridge: .refused("cartridge K-2 was already used at workstation chair_b"))
        await rig.supervisor.useClinic(clinic)
        _ = try await rig.supervisor.openSession(request("S-6"), actor: "test")
        do {
            _ = try await rig.supervisor.setCartridge(id: "k-2", lot: "L", expiryDay: 30_000, needleCount: 3, needleDiameterUm: 300, actor: "test")
            Issue.record("a cartridge used elsewhere was set")
        } catch {
            #expect(error.code.rawValue == "clinic_refused")
        }
        #expect(clinic.asked.withLock { $0 }.last == "cartridge K-2 S-6")
        #expect(try rig.store.auditEntries(sessionID: "S-6").allSatisfy { $0.kind != "cartridge_used" })
    }

    @Test("without a clinic nothing is claimed and an offline reason is not recorded")
    func noClinic() async throws {
        let rig = try await DaemonRig()
        _ = try await rig.supervisor.openSession(request("S-7", offline: "no clinic here"), actor: "test")
        let opened = try #require(try rig.store.auditEntries(sessionID: "S-7").first { $0.kind == "session_opened" })
        #expect(!opened.payload.contains("clinic_offline_reason"))
    }
}

/// The connection file: every problem named, none fatal to the reading of the rest.
@Suite struct ClinicConnectionTests {
    @Test("a complete file parses; quotes, comments and a socket directory are understood")
    func parses() throws {
        let text = "# clinic\nhost = /run/postgresql\ndbname=stipple\nuser=chair_a\npassword='s p a c e'\n"
        let connection = try ClinicConnection.parse(text).get()
        #expect(connection.isUnixSocket && connection.socketPath == "/run/postgresql/.s.PGSQL.5432")
        #expect(connection.password == "s p a c e" && connection.tls == .verifyFull)
    }

    @Test("every problem at once: missing keys, unknown keys, twice, bad port, clear text over a network")
    func problems() {
        let text = "host=db.clinic.lan\nport=70000\nuser=a\nuser=b\nsslmode=disable\ncolour=blue\nnonsense\n"
        guard case .failure(let error) = ClinicConnection.parse(text) else { Issue.record("accepted"); return }
        let fields = Set(error.problems.map(\.field))
        #expect(fields.isSuperset(of: ["dbname", "port", "user", "sslmode", "colour", "line 7"]))
        #expect(error.problems.contains { $0.field == "sslmode" && $0.allowed.contains("never cross a network in the clear") })
        #expect(error.description.contains("70000") && error.description.contains("1...65535"))
    }

    @Test("the file must be the daemon's own and private: it holds the workstation's password")
    func permissions() throws {
        let path = NSTemporaryDirectory() + "clinic-\(UUID().uuidString).conf"
        try "host=/tmp\ndbname=d\nuser=u\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        chmod(path, 0o644)
        guard case .failure(let error) = ClinicConnection.load(path: path, owner: geteuid()) else { Issue.record("accepted 0644"); return }
        #expect(error.problems.contains { $0.value == "mode 644" })
        chmod(path, 0o600)
        #expect((try? ClinicConnection.load(path: path, owner: geteuid()).get()) != nil)
        guard case .failure(let other) = ClinicConnection.load(path: path, owner: geteuid() + 1) else { Issue.record("accepted another owner"); return }
        #expect(other.problems.contains { $0.value.hasPrefix("owner uid") })
    }

    @Test("the configuration's clinic section: every field checked, with its range")
    func settings() {
        var configuration = DaemonConfiguration()
        var problems: [DaemonConfiguration.Problem] = []
        configuration.apply(file: ["clinic": ["connection_file": "relative.conf", "offline": "maybe", "claim_timeout_ms": 5, "colour": 1]],
                            source: "test", problems: &problems)
        problems += configuration.validate()
        let fields = problems.map(\.field)
        for field in ["clinic.offline", "clinic.colour", "clinic.connection_file", "clinic.claim_timeout_ms"] {
            #expect(fields.contains(field), "\(field) in \(fields)")
        }
    }
}
