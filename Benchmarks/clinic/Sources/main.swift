import Foundation
import Logging
import PostgresNIO
import StippleClinic
import StippleClinicDatabase
import StippleDaemon
import StippleRecords

/// The clinic's claims and shipping against one real PostgreSQL (issue 20 item 7), run by
/// `Benchmarks/clinic/clinic_bench.py`, which starts the throw-away server and its roles.
///
/// Simulated workstations are the daemon's own shipping code — `AuditShipper` and `PostgresClinic`
/// over a real SQLite `RecordStore` each — in one process, without the pen simulator: 50 simulated
/// pens would spend this machine's two cores on the pens (each idle `stippled --pen sim` takes about
/// 5 % of a core) and measure that instead of the database.
///
/// Usage: clinic-bench HOST PORT DATABASE WORKSTATIONS (JSON on standard output: the figures, and
/// `written`, each live entry's workstation, sequence and the moment it was written, for the lag).
@main
struct ClinicBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 5, let port = Int(arguments[2]), let count = Int(arguments[4]) else {
            FileHandle.standardError.write(Data("usage: clinic-bench HOST PORT DATABASE WORKSTATIONS\n".utf8))
            exit(64)
        }
        let host = arguments[1], database = arguments[3]
        var logger = Logger(label: "clinic-bench")
        logger.logLevel = ProcessInfo.processInfo.environment["CLINIC_BENCH_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        let names = (1...count).map { String(format: "ws%02d", $0) }
        func configuration(_ name: String) throws -> PostgresClient.Configuration {
            try ClinicConnection(host: host, port: port, database: database, user: name, password: "pw-\(name)", tls: .disable).clientConfiguration()
        }
        let root = NSTemporaryDirectory() + "clinic-bench-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }

        let clients = try names.map { PostgresClient(configuration: try configuration($0), backgroundLogger: logger) }
        let stores = try names.map { try RecordStore(path: "\(root)/\($0).db") }
        let clinics = zip(clients, stores).map { client, store in
            PostgresClinic(client: client, policy: .refuse, timeout: .seconds(10), logger: logger,
                           sessionRecorded: { (try? store.hasSession($0)) ?? true }, cartridgeRecorded: { _ in true })
        }
        var report: [String: Any] = ["workstations": count]

        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients { group.addTask { await client.run() } }

            // 1. The claim, against a bare round trip on the same warm connection pool.
            let claims = clinics[0], client = clients[0]
            _ = try await client.query("SELECT 1", logger: logger)
            var claimTimes: [Double] = [], baseTimes: [Double] = []
            for n in 0..<500 {
                let start = ContinuousClock.now
                let outcome = await claims.claimSession(SessionClaim(
                    sessionID: "BENCH-\(n)", clientID: "CLAIM-\(n)", cartridgeID: "K-CLAIM-\(n)", gapSeconds: 432_000,
                    maxSessionSeconds: 14_400, gapOverrideReason: nil, simulatedTime: nil, offlineReason: nil))
                claimTimes.append((ContinuousClock.now - start).milliseconds)
                guard outcome == .granted else { throw BenchError("claim \(n): \(outcome)") }
                let base = ContinuousClock.now
                _ = try await client.query("SELECT 1", logger: logger)
                baseTimes.append((ContinuousClock.now - base).milliseconds)
            }
            report["claim_ms"] = ["p50": percentile(claimTimes, 50), "p99": percentile(claimTimes, 99)]
            report["round_trip_ms"] = ["p50": percentile(baseTimes, 50), "p99": percentile(baseTimes, 99)]

            // 2. A four-hour session's entries on every workstation, then all shipped at once.
            let start = Int64(Date().timeIntervalSince1970) - 5 * 3600
            for (index, store) in stores.enumerated() {
                try fourHourSession(store, index: index, start: start)
            }
            let backlog = try stores.reduce(0) { $0 + Int(try $1.auditHead()?.seq ?? 0) }
            let wall: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
            let drainStart = ContinuousClock.now
            for (index, store) in stores.enumerated() {
                let shipper = AuditShipper(client: clients[index], store: store, clinic: clinics[index], interval: .milliseconds(500),
                                           wallNow: wall, gapSeconds: { (432_000, 14_400) }, logger: logger)
                group.addTask { try await shipper.run() }
            }
            try await waitConfirmed(client, total: backlog, logger: logger)
            let drain = (ContinuousClock.now - drainStart).milliseconds / 1000
            report["backlog_entries"] = backlog
            report["entries_per_session"] = backlog / count
            report["drain_rows_per_second"] = Double(backlog) / drain

            // 3. Live: every workstation writes an entry every 200 ms for 20 s; each entry's lag is
            // its receipt in the database minus the moment it was written.
            var written: [(String, Int64, Double)] = []
            for tick in 0..<100 {
                for (index, store) in stores.enumerated() {
                    let entry = try store.audit(kind: "setpoint", actor: "uid:1000(ana)", sessionID: "S-\(index)",
                                                payload: ["layer": "upper_dermis", "depth_um": String(700 + tick % 100), "rate_hz": "120.0"],
                                                at: wall())
                    written.append((names[index], entry.seq, Date().timeIntervalSince1970))
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            try await waitConfirmed(client, total: backlog + written.count, logger: logger)
            // Each entry's receipt is read by the caller as the database's owner (a workstation's
            // role sees only its own entries): the moments they were written go out with the figures.
            report["live_entries"] = written.count
            report["live_rows_per_second"] = Double(written.count) / 20
            report["written"] = written.map { [$0.0, $0.1, $0.2] as [Any] }
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            // The figures are out; the shippers and the clients' connections end with the process.
            exit(0)
        }
    }

    /// The entries a four-hour session writes: open, cartridge, arm, a setpoint every 5 minutes,
    /// pauses and resumptions, the 3:00 and 3:45 warnings, the close.
    static func fourHourSession(_ store: RecordStore, index: Int, start: Int64) throws {
        let session = "S-\(index)"
        let actor = "uid:1000(ana)"
        try store.audit(kind: "session_opened", actor: actor, sessionID: session, payload: [
            "client_id": "C-\(index)", "zone": "crown", "pen_serial": "SIM-0001", "cartridge_id": "K-\(index)",
            "pigment_lots": "PIG-1,PIG-2", "technician": "ana"], at: start)
        try store.audit(kind: "cartridge_used", actor: actor, sessionID: session,
                        payload: ["cartridge_id": "K-\(index)", "lot": "KL-1", "expiry_day": "21500"], at: start + 60)
        for n in 0..<48 {
            let at = start + 120 + Int64(n) * 300
            try store.audit(kind: "setpoint", actor: actor, sessionID: session,
                            payload: ["layer": "upper_dermis", "depth_um": String(700 + n), "rate_hz": "120.0"], at: at)
            try store.audit(kind: "session_state", actor: "stippled", sessionID: session,
                            payload: ["from": "armed", "to": "running", "session_time_ms": String((at - start) * 1000)], at: at + 10)
            try store.audit(kind: "session_state", actor: "stippled", sessionID: session,
                            payload: ["from": "running", "to": "armed", "session_time_ms": String((at - start + 280) * 1000)], at: at + 280)
        }
        for (kind, at) in [("3:00", start + 10_800), ("3:45", start + 13_500)] {
            try store.audit(kind: "warning", actor: "stippled", sessionID: session, payload: ["kind": "session_time", "detail": kind], at: at)
        }
        try store.audit(kind: "session_closed", actor: actor, sessionID: session, payload: ["reason": "technician", "session_time_ms": "14280000"],
                        at: start + 14_280)
    }

    static func waitConfirmed(_ client: PostgresClient, total: Int, logger: Logger) async throws {
        let deadline = ContinuousClock.now + .seconds(600)
        while ContinuousClock.now < deadline {
            var confirmed = 0
            let rows = try await client.query("SELECT coalesce(sum(confirmed_seq), 0)::int8 FROM stipple.workstations WHERE name LIKE 'ws%'",
                                              logger: logger)
            for try await value in rows.decode(Int64.self) { confirmed = Int(value) }
            if confirmed >= total { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("shipping did not finish in 600 s")
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count - 1)).rounded()))]
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
