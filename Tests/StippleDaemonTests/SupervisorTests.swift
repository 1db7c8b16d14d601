import Foundation
import StippleDaemon
import StippleRecords
import StippleSafety
import StippleSim
import StippleSupervision
import StippleWire
import Testing

/// The supervisor end to end in one process: the real link, core and records against the
/// simulated pen through the same bytes path as a serial pen, on a virtual clock. (The same
/// hazards across real processes and a real pty are in Tests/e2e.)
@Suite(.serialized) struct SupervisorTests {
    @Test("a full session: open, setpoint, arm, run with the pedal, stop, close, report; the audit chain verifies")
    func aFullSession() async throws {
        let rig = try await DaemonRig()
        try await rig.startRunning()
        #expect(await rig.phase == "running")
        #expect(rig.pen.withPen { $0.motorDriven })
        await rig.run(for: .seconds(3))
        #expect(rig.pen.withPen { $0.strokeCount } > 200)
        _ = try await rig.supervisor.disarm(actor: "test")
        await rig.run(for: .milliseconds(100))
        #expect(!rig.pen.withPen { $0.motorDriven } && !rig.pen.withPen { $0.armed })
        let status = try await rig.supervisor.closeSession(actor: "test")
        #expect(status.phase == "closed")
        let id = try #require(status.session?.id)
        let report = try #require(try rig.store.report(id))
        #expect(report.cartridges.map(\.cartridgeID) == ["SIM-CART-0001"])
        #expect(report.setpoints.map(\.depthUm) == [800])
        #expect(report.telemetry.count >= 3, "per-second aggregates, not every stroke")
        #expect(report.telemetry.contains { ($0.depthMaxUm ?? 0) > 700 })
        #expect(report.session.closeReason == "technician")
        let audit = try rig.store.verifyAudit()
        #expect(audit.ok && audit.entries >= 6)
        let kinds = try rig.store.auditEntries(limit: 100).map(\.kind)
        #expect(kinds.contains("session_opened") && kinds.contains("cartridge_used") && kinds.contains("armed") && kinds.contains("session_closed"))
    }

    @Test("H1: a stroke beyond the active band stops the needle from the daemon side, below the pen's own trip")
    func h1OverDepthStopsFromTheDaemon() async throws {
        let rig = try await DaemonRig()
        try await rig.startRunning()
        // 800 + 300 µm: beyond the daemon's 1050 µm trip, short of the pen's 1150 µm.
        rig.pen.withPen { $0.inject(.overDepth(extraUm: 300, strokes: 1)) }
        let stopped = await rig.run(until: .seconds(1)) { await rig.faults.contains("over_depth") }
        #expect(stopped)
        await rig.run(for: .milliseconds(30))
        #expect(!rig.pen.withPen { $0.motorDriven }, "the daemon's stop reached the pen")
        #expect(rig.pen.withPen { $0.latchedFault } == .none, "the pen's own trip was not needed")
    }

    @Test("H3: a runaway motor stops at once; H10: the cartridge pulled mid-run stops; H12: the pen's e-stop button latches")
    func h3h10h12PenFaultsStop() async throws {
        for (fault, expected) in [(PenFault.rateRunaway(hz: 175), "rate_runaway"), (.cartridgeRemoved, "cartridge_removed"), (.estopPressed, "emergency_stop")] {
            let rig = try await DaemonRig()
            try await rig.startRunning()
            rig.pen.withPen { $0.inject(fault) }
            let latched = await rig.run(until: .seconds(1)) { await rig.faults.contains(expected) }
            #expect(latched, "\(fault)")
            await rig.run(for: .milliseconds(50))
            #expect(!rig.pen.withPen { $0.motorDriven }, "\(fault)")
        }
    }

    @Test("H12: clearing is refused while the e-stop button is still pressed, allowed once released; it never re-arms")
    func h12ClearNeedsTheButtonReleased() async throws {
        let rig = try await DaemonRig()
        try await rig.startRunning()
        rig.pen.withPen { $0.setEstopButton(true) }
        await rig.run(for: .milliseconds(200))
        await #expect(throws: CommandError.self) { _ = try await rig.whileRunning { try await rig.supervisor.clearFault(actor: "test") } }
        rig.pen.withPen { $0.setEstopButton(false) }
        await rig.run(for: .milliseconds(200))
        let status = try await rig.whileRunning { try await rig.supervisor.clearFault(actor: "test") }
        #expect(status.phase == "open")
        await rig.run(for: .milliseconds(300))
        #expect(!rig.pen.withPen { $0.armed } && rig.pen.withPen { $0.latchedFault } == .none)
    }

    @Test("H6: a pen that goes silent while running is stopped and latched by the daemon")
    func h6SilentPen() async throws {
        let rig = try await DaemonRig()
        try await rig.startRunning()
        rig.pen.withPen { $0.inject(.firmwareHang) }
        let latched = await rig.run(until: .seconds(1)) { await rig.faults.contains("telemetry_silence") }
        #expect(latched)
    }

    @Test("H8: a session bound to one pen refuses to arm another")
    func h8WrongPen() async throws {
        let rig = try await DaemonRig()
        try await rig.startRunning()
        _ = try await rig.supervisor.disarm(actor: "test")
        var other = PenConfig()
        other.serial = "SIM-OTHER"
        await rig.supervisor.detach(reason: "cable swapped")
        let swapped = InProcessPenTransport(PenSimulator(config: other, seed: 9))
        var moved = rig
        moved.pen = swapped
        await rig.supervisor.attach(swapped)
        await moved.run(for: .milliseconds(300))
        let status = await rig.supervisor.status()
        #expect(status.pen.serial == "SIM-OTHER")
        do {
            try await moved.arm()
            Issue.record("armed the wrong pen")
        } catch let error as CommandError {
            #expect(error.armingFailures.map(\.code).contains(.wrongPen) || error.code.rawValue == "fault_latched" || !error.armingFailures.isEmpty)
        }
        #expect(!swapped.withPen { $0.armed })
    }

    @Test("H11: a daemon restart while running comes back faulted, the pen is stopped by the new HELLO, and only a fresh arm runs it")
    func h11RestartNeverRearms() async throws {
        let rig = try await DaemonRig()
        try await rig.startRunning()
        let directory = rig.directory
        // The old daemon is gone (no shutdown): a new one on the same records and the same pen.
        let restarted = try await DaemonRig(directory: directory, clock: rig.clock, attach: false)
        var again = restarted
        again.pen = rig.pen
        await restarted.supervisor.attach(rig.pen)
        await again.run(for: .milliseconds(300))
        #expect(await restarted.faults == ["daemon_restarted"])
        #expect(!rig.pen.withPen { $0.motorDriven } && !rig.pen.withPen { $0.armed }, "HELLO disarmed the pen")
        _ = try await again.whileRunning { try await restarted.supervisor.clearFault(actor: "test") }
        await again.run(for: .milliseconds(300))
        #expect(!rig.pen.withPen { $0.motorDriven }, "the pedal is still down, but nothing moves without an arm")
    }

    @Test("operator presence: the client that armed vanishing stops the needle and records operator_lost")
    func operatorPresence() async throws {
        let rig = try await DaemonRig()
        try await rig.startRunning()
        let lease = try #require(await rig.supervisor.leaseHolder)
        await rig.supervisor.presenceClosed(lease)  // the lease is lost at once: no grace period
        #expect(await rig.faults == ["operator_lost"])
        await rig.run(for: .milliseconds(30))
        #expect(!rig.pen.withPen { $0.motorDriven })
        await rig.supervisor.flushRecords()
        #expect(try rig.store.auditEntries(limit: 100).contains { $0.kind == "fault" && $0.payload.contains("operator_lost") })
    }

    @Test("H13: arming sends the checksum the pen read back; a pen holding other limits refuses, and the session stays disarmed")
    func h13LimitsReadBack() async throws {
        let rig = try await DaemonRig()
        try await rig.startRunning()
        #expect(rig.pen.withPen { $0.limitsCRC } == SafetyLimits.defaults.penLimits(layer: .upperDermis, zone: .crown).checksum)
    }

    @Test("H17: a pen speaking another major is refused, naming both versions")
    func h17VersionMismatch() async throws {
        var config = PenConfig()
        config.protocolMajor = 2
        let rig = try await DaemonRig(penConfig: config)
        let status = await rig.supervisor.status()
        #expect(status.pen.refusal == "pen speaks protocol 2.0, stippled speaks 1.0")
    }

    @Test("H15: what the API acknowledged is already committed: another connection reads it at once")
    func h15DurableBeforeAcknowledged() async throws {
        let rig = try await DaemonRig()
        let status = try await rig.supervisor.openSession(
            SessionRequest(sessionID: "S-DURABLE", clientID: "C-9", technician: "ana", zone: .crown, cartridgeID: "SIM-CART-0001",
                               pigmentLots: ["P"], penSerial: "", gapOverrideReason: nil), actor: "test")
        #expect(status.session?.id == "S-DURABLE")
        let reader = try RecordStore(path: rig.directory + "/stipple.db")
        #expect(try reader.session("S-DURABLE")?.clientID == "C-9")
        #expect(try reader.auditEntries().contains { $0.kind == "session_opened" && $0.sessionID == "S-DURABLE" })
    }

    @Test("records that fail their checks refuse arming, say what is wrong, and are never recreated")
    func damagedRecordsRefuseArming() async throws {
        let directory = DaemonRig.temporaryDirectory()
        do {
            let first = try await DaemonRig(directory: directory)
            try await first.startRunning()
            _ = try await first.supervisor.disarm(actor: "test")
            _ = try await first.supervisor.closeSession(actor: "test")
        }
        // Someone edits the audit log behind the daemon's back.
        try RecordTampering.rewriteAuditPayload(path: directory + "/stipple.db", seq: 2)
        let rig = try await DaemonRig(directory: directory)
        #expect(!rig.store.health.isHealthy)
        #expect(rig.store.health.description.contains("entry 2 was altered"))
        let status = await rig.supervisor.status()
        #expect(status.records.hasPrefix("damaged"))
        _ = try await rig.supervisor.openSession(
            SessionRequest(sessionID: "", clientID: "C-2", technician: "ana", zone: .crown, cartridgeID: "SIM-CART-0009",
                               pigmentLots: ["P"], penSerial: "", gapOverrideReason: nil), actor: "test")
        do {
            try await rig.arm()
            Issue.record("armed on damaged records")
        } catch let error as CommandError {
            #expect(error.code.rawValue == "records_unhealthy")
        }
        #expect(FileManager.default.fileExists(atPath: directory + "/stipple.db"))
    }

    @Test("H4: the four-hour cutoff on the daemon's clock, and it survives a kill and restart at 3:50")
    func h4CutoffSurvivesARestart() async throws {
        let rig = try await DaemonRig()
        try await rig.startRunning()
        rig.pen.withPen { $0.setPedal(false) }
        await rig.run(for: .milliseconds(100))
        rig.clock.advance(.seconds(3 * 3600 + 50 * 60))
        await rig.run(for: .seconds(1))
        // Killed: a new supervisor on the same records and clock (same boot), just before 4:00.
        rig.clock.advance(.seconds(9 * 60 + 57))
        let restarted = try await DaemonRig(directory: rig.directory, clock: rig.clock, attach: false)
        var again = restarted
        again.pen = rig.pen
        await restarted.supervisor.attach(rig.pen)
        let before = await restarted.supervisor.status()
        #expect(before.session?.closeReason == nil, "\(before.session?.elapsedMs ?? -1) ms, \(before.phase) \(before.faults)")
        await again.run(for: .seconds(2))
        let status = await restarted.supervisor.status()
        #expect(status.session?.closeReason == "time_limit")
        let elapsed = try #require(status.session?.elapsedMs)
        #expect(elapsed >= 4 * 3600 * 1000 && elapsed < 4 * 3600 * 1000 + 5000)
    }
}

/// Edits the records the way an attacker with file access would (the triggers do not stop a
/// raw writer that drops them first).
enum RecordTampering {
    static func rewriteAuditPayload(path: String, seq: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("DROP TRIGGER audit_append_only_update")
            db.execute("UPDATE audit SET payload = '{}' WHERE seq = ?", (int(sys.argv[2]),))
            db.commit()
            """, path, String(seq)]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    }
}
