import Foundation
import GRDB
import StippleSafety

/// A session as the records hold it.
public struct SessionRecord: Codable, Hashable, Sendable {
    public var id: String
    public var clientID: String
    public var technician: String
    public var zone: String
    public var penSerial: String
    public var cartridgeID: String
    public var pigmentLots: [String]
    public var gapOverrideReason: String?
    public var openedAt: Int64
    public var closedAt: Int64?
    public var closeReason: String?
    public var lastActivity: Int64
    public var phase: String
    public var snapshot: SessionSnapshot
    /// Every fault recorded in the session, by reason code, and how often. The snapshot's faults
    /// are only those latched at its last checkpoint (a cleared fault leaves them): a session that
    /// tripped three times and was cleared each time must not read "faults none" (issue 16).
    public var faultCounts: [String: Int] = [:]

    enum CodingKeys: String, CodingKey {
        case id, clientID = "client_id", technician, zone, penSerial = "pen_serial", cartridgeID = "cartridge_id"
        case pigmentLots = "pigment_lots", gapOverrideReason = "gap_override_reason", openedAt = "opened_at"
        case closedAt = "closed_at", closeReason = "close_reason", lastActivity = "last_activity", phase, snapshot
        case faultCounts = "fault_counts"
    }
}

/// Everything recorded about one session, for its report.
public struct SessionReportData: Codable, Hashable, Sendable {
    public struct CartridgeUse: Codable, Hashable, Sendable {
        public var cartridgeID: String
        public var lot: String?
        public var expiryDay: Int?
        public var needleCount: Int?
        public var needleDiameterUm: Int?
        public var recordedAt: Int64
    }
    public struct SetpointChange: Codable, Hashable, Sendable {
        public var at: Int64
        public var sessionTimeMs: Int64
        public var layer: String
        public var depthUm: Int
        public var rateHz: Double
    }
    public struct Event: Codable, Hashable, Sendable {
        public var at: Int64
        public var kind: String
        public var detail: String
    }
    public struct TelemetrySecond: Codable, Hashable, Sendable {
        public var second: Int64
        public var frames: Int
        public var depthMinUm: Int?
        public var depthMeanUm: Double?
        public var depthMaxUm: Int?
        public var rateMeanHz: Double
    }
    public var session: SessionRecord
    public var cartridges: [CartridgeUse]
    public var setpoints: [SetpointChange]
    public var faults: [Event]
    public var warnings: [Event]
    public var telemetry: [TelemetrySecond]
    public var pen: PenRecord?
}

public struct PenRecord: Codable, Hashable, Sendable {
    public var serial: String
    public var firstSeen: Int64
    public var lastSeen: Int64
    public var firmware: String
    public var protocolVersion: String
}

/// One second of telemetry, aggregated: the records keep these, not every stroke.
public struct TelemetryAggregate: Hashable, Sendable {
    public var sessionSecond: Int64
    public var frames = 0
    public var depthMinUm: Int?
    public var depthMaxUm: Int?
    public var depthSumUm = 0
    public var depthCount = 0
    public var rateSumHz = 0.0
    public var currentSumMa = 0.0
    public var currentCount = 0
    public var temperatureSumC = 0.0
    public var temperatureCount = 0

    public init(sessionSecond: Int64) { self.sessionSecond = sessionSecond }

    public mutating func add(depthUm: Int?, rateHz: Double, currentMa: Double?, temperatureC: Double?) {
        frames += 1
        if let depthUm {
            depthMinUm = min(depthMinUm ?? depthUm, depthUm)
            depthMaxUm = max(depthMaxUm ?? depthUm, depthUm)
            depthSumUm += depthUm
            depthCount += 1
        }
        if rateHz.isFinite { rateSumHz += rateHz }
        if let currentMa, currentMa.isFinite { currentSumMa += currentMa; currentCount += 1 }
        if let temperatureC, temperatureC.isFinite { temperatureSumC += temperatureC; temperatureCount += 1 }
    }
}

extension RecordStore {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    // MARK: - Writes (each one transaction with its audit entry; durable when it returns)

    public func openSession(_ snapshot: SessionSnapshot, at: Int64, actor: String) throws {
        let request = snapshot.session.request
        try pool.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO clients (id, created_at) VALUES (?, ?)",
                           arguments: [Identifier.canonical(request.clientID) ?? request.clientID, at])
            try db.execute(sql: """
                INSERT INTO sessions (id, client_id, technician, zone, pen_serial, cartridge_id, pigment_lots,
                    gap_override_reason, opened_at, last_activity, phase, snapshot)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [
                    request.sessionID, Identifier.canonical(request.clientID) ?? request.clientID, request.technician,
                    request.zone.rawValue, request.penSerial, snapshot.session.cartridgeID, Self.encode(request.pigmentLots),
                    request.gapOverrideReason, at, at, snapshot.phase.rawValue, Self.encode(snapshot),
                ])
            var payload = ["client_id": request.clientID, "zone": request.zone.rawValue, "pen_serial": request.penSerial,
                           "cartridge_id": request.cartridgeID, "pigment_lots": request.pigmentLots.joined(separator: ","),
                           "technician": request.technician]
            if let reason = request.gapOverrideReason { payload["gap_override_reason"] = reason }
            if let reason = request.clinicOfflineReason { payload["clinic_offline_reason"] = reason }
            try Self.appendAudit(db, at: at, actor: actor, kind: "session_opened", sessionID: request.sessionID, payload: payload)
        }
    }

    /// The session's state (the clock above all). Audited when the phase changes.
    public func persist(_ snapshot: SessionSnapshot, at: Int64, actor: String = "stippled") throws {
        try pool.write { db in try Self.persist(db, snapshot, at: at, actor: actor) }
    }

    static func persist(_ db: Database, _ snapshot: SessionSnapshot, at: Int64, actor: String) throws {
        let id = snapshot.session.request.sessionID
        let previous = try String.fetchOne(db, sql: "SELECT phase FROM sessions WHERE id = ?", arguments: [id])
        try db.execute(sql: "UPDATE sessions SET snapshot = ?, phase = ?, last_activity = MAX(last_activity, ?) WHERE id = ?",
                       arguments: [Self.encode(snapshot), snapshot.phase.rawValue, at, id])
        if let previous, previous != snapshot.phase.rawValue {
            try Self.appendAudit(db, at: at, actor: actor, kind: "session_state", sessionID: id,
                                 payload: ["from": previous, "to": snapshot.phase.rawValue,
                                           "session_time_ms": String(snapshot.session.clock.elapsedAtCheckpoint.totalNanoseconds / 1_000_000)])
        }
    }

    public func closeSession(_ snapshot: SessionSnapshot, reason: CloseReason, at: Int64, actor: String) throws {
        let id = snapshot.session.request.sessionID
        try pool.write { db in
            try db.execute(sql: """
                UPDATE sessions SET closed_at = COALESCE(closed_at, ?), close_reason = COALESCE(close_reason, ?),
                    snapshot = ?, phase = ?, last_activity = MAX(last_activity, ?) WHERE id = ?
                """, arguments: [at, reason.rawValue, Self.encode(snapshot), snapshot.phase.rawValue, at, id])
            try Self.appendAudit(db, at: at, actor: actor, kind: "session_closed", sessionID: id,
                                 payload: ["reason": reason.rawValue,
                                           "session_time_ms": String(snapshot.session.clock.elapsedAtCheckpoint.totalNanoseconds / 1_000_000)])
        }
    }

    public func recordCartridgeUse(_ cartridgeID: String, sessionID: String, cartridge: CartridgeInfo?, at: Int64, actor: String) throws {
        try pool.write { db in
            try db.execute(sql: """
                INSERT OR IGNORE INTO cartridge_uses (cartridge_id, session_id, lot, expiry_day, needle_count, needle_diameter_um, recorded_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [cartridgeID, sessionID, cartridge?.lot, cartridge?.expiryDay, cartridge?.needleCount,
                                 cartridge?.needleDiameterUm, at])
            try Self.appendAudit(db, at: at, actor: actor, kind: "cartridge_used", sessionID: sessionID,
                                 payload: ["cartridge_id": cartridgeID, "lot": cartridge?.lot ?? "",
                                           "expiry_day": cartridge?.expiryDay.map(String.init) ?? ""])
        }
    }

    /// A setpoint, and — when given — the session's state carrying it, in one transaction: both
    /// are committed, or neither (a setpoint is recorded before it takes effect).
    public func recordSetpoint(_ setpoint: Setpoint, sessionID: String, sessionTimeMs: Int64, at: Int64, actor: String,
                               snapshot: SessionSnapshot? = nil) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO setpoint_changes (session_id, at, session_time_ms, layer, depth_um, rate_hz) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [sessionID, at, sessionTimeMs, setpoint.layer.rawValue, setpoint.depthUm, setpoint.rateHz])
            try Self.appendAudit(db, at: at, actor: actor, kind: "setpoint", sessionID: sessionID,
                                 payload: ["layer": setpoint.layer.rawValue, "depth_um": String(setpoint.depthUm), "rate_hz": String(setpoint.rateHz)])
            if let snapshot { try Self.persist(db, snapshot, at: at, actor: actor) }
        }
    }

    public func recordFault(_ reason: String, detail: String, sessionID: String?, at: Int64) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO faults (session_id, at, reason, detail) VALUES (?, ?, ?, ?)", arguments: [sessionID, at, reason, detail])
            try Self.appendAudit(db, at: at, actor: "stippled", kind: "fault", sessionID: sessionID, payload: ["reason": reason, "detail": detail])
        }
    }

    public func recordWarning(_ kind: String, detail: String, sessionID: String?, at: Int64) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO warnings (session_id, at, kind, detail) VALUES (?, ?, ?, ?)", arguments: [sessionID, at, kind, detail])
            try Self.appendAudit(db, at: at, actor: "stippled", kind: "warning", sessionID: sessionID, payload: ["kind": kind, "detail": detail])
        }
    }

    public func recordPen(serial: String, firmware: String, protocolVersion: String, at: Int64) throws {
        try pool.write { db in
            let known = try Bool.fetchOne(db, sql: "SELECT 1 FROM pens WHERE serial = ?", arguments: [serial]) ?? false
            try db.execute(sql: """
                INSERT INTO pens (serial, first_seen, last_seen, firmware, protocol) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(serial) DO UPDATE SET last_seen = excluded.last_seen, firmware = excluded.firmware, protocol = excluded.protocol
                """, arguments: [serial, at, at, firmware, protocolVersion])
            if !known {
                try Self.appendAudit(db, at: at, actor: "pen", kind: "pen_seen", sessionID: nil,
                                     payload: ["serial": serial, "firmware": firmware, "protocol": protocolVersion])
            }
        }
    }

    public func recordTelemetry(_ aggregate: TelemetryAggregate, sessionID: String) throws {
        let a = aggregate
        guard a.frames > 0 else { return }
        try pool.write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO telemetry_seconds (session_id, session_second, frames, depth_min_um, depth_mean_um, depth_max_um,
                    rate_mean_hz, current_mean_ma, temperature_mean_c) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [
                    sessionID, a.sessionSecond, a.frames, a.depthMinUm,
                    a.depthCount > 0 ? Double(a.depthSumUm) / Double(a.depthCount) : nil, a.depthMaxUm,
                    a.rateSumHz / Double(a.frames), a.currentCount > 0 ? a.currentSumMa / Double(a.currentCount) : nil,
                    a.temperatureCount > 0 ? a.temperatureSumC / Double(a.temperatureCount) : nil,
                ])
        }
    }

    // MARK: - Reads

    /// What the core needs to know of earlier sessions: every session, client and cartridge.
    public func loadHistory() throws -> SafetyHistory {
        try pool.read { db in
            var history = SafetyHistory()
            for row in try Row.fetchAll(db, sql: "SELECT id, client_id, last_activity, closed_at FROM sessions") {
                history.recordSession(id: row["id"], client: row["client_id"], lastActivity: WallTime(secondsSince1970: row["last_activity"]),
                                      isOpen: (row["closed_at"] as Int64?) == nil)
            }
            for row in try Row.fetchAll(db, sql: "SELECT cartridge_id, session_id FROM cartridge_uses") {
                history.recordCartridgeUse(row["cartridge_id"], session: row["session_id"])
            }
            return history
        }
    }

    /// The session to continue after a restart: the latest one, if it is still open or its
    /// fault is still latched. A snapshot that no longer decodes is reported, never dropped.
    public func sessionToRestore() throws -> Result<SessionSnapshot, SnapshotError>? {
        try pool.read { db in
            // Insertion order, never the wall clock (which may have been set back): the session
            // still open, or the last one whose fault is still latched.
            let candidates = try Row.fetchAll(db, sql: """
                SELECT id, snapshot FROM sessions WHERE closed_at IS NULL OR phase = 'faulted' ORDER BY rowid DESC
                """)
            guard let row = candidates.first else { return nil }
            let open = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sessions WHERE closed_at IS NULL") ?? 0
            if open > 1 {
                return .failure(SnapshotError(sessionID: row["id"], reason: "\(open) sessions are open in the records at once; only one can be"))
            }
            let text: String = row["snapshot"]
            do {
                return .success(try JSONDecoder().decode(SessionSnapshot.self, from: Data(text.utf8)))
            } catch {
                return .failure(SnapshotError(sessionID: row["id"], reason: "\(error)"))
            }
        }
    }

    public struct SnapshotError: Error, Hashable, Sendable, CustomStringConvertible {
        public var sessionID: String
        public var reason: String
        public var description: String { "the saved state of session \(sessionID) cannot be read: \(reason)" }
    }

    /// Whether a session with this id was opened here (its row, whatever its saved state holds).
    public func hasSession(_ id: String) throws -> Bool {
        try pool.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM sessions WHERE id = ?", arguments: [id]) ?? false }
    }

    /// Whether a cartridge (its canonical id) was used in any session here.
    public func hasCartridgeUse(_ cartridgeID: String) throws -> Bool {
        try pool.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM cartridge_uses WHERE cartridge_id = ?", arguments: [cartridgeID]) ?? false }
    }

    public func session(_ id: String) throws -> SessionRecord? {
        try pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id = ?", arguments: [id]).map { try Self.sessionRecord($0, db) } }
    }

    public func sessions(limit: Int = 50, clientID: String? = nil) throws -> [SessionRecord] {
        try pool.read { db in
            let limit = max(1, min(limit, 1000))
            if let clientID {
                return try Row.fetchAll(db, sql: "SELECT * FROM sessions WHERE client_id = ? ORDER BY opened_at DESC LIMIT ?",
                                        arguments: [Identifier.canonical(clientID) ?? clientID, limit]).map { try Self.sessionRecord($0, db) }
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM sessions ORDER BY opened_at DESC LIMIT ?", arguments: [limit]).map { try Self.sessionRecord($0, db) }
        }
    }

    static func sessionRecord(_ row: Row, _ db: Database) throws -> SessionRecord {
        let lots = (try? JSONDecoder().decode([String].self, from: Data((row["pigment_lots"] as String).utf8))) ?? []
        let snapshotText: String = row["snapshot"]
        let snapshot = try JSONDecoder().decode(SessionSnapshot.self, from: Data(snapshotText.utf8))
        return SessionRecord(
            id: row["id"], clientID: row["client_id"], technician: row["technician"], zone: row["zone"], penSerial: row["pen_serial"],
            cartridgeID: row["cartridge_id"], pigmentLots: lots, gapOverrideReason: row["gap_override_reason"], openedAt: row["opened_at"],
            closedAt: row["closed_at"], closeReason: row["close_reason"], lastActivity: row["last_activity"], phase: row["phase"],
            snapshot: snapshot, faultCounts: try faultCounts(db, session: row["id"]))
    }

    static func faultCounts(_ db: Database, session: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT reason, COUNT(*) AS n FROM faults WHERE session_id = ? GROUP BY reason", arguments: [session]) {
            counts[row["reason"]] = row["n"]
        }
        return counts
    }

    public func report(_ id: String) throws -> SessionReportData? {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id = ?", arguments: [id]) else { return nil }
            let session = try Self.sessionRecord(row, db)
            let cartridges = try Row.fetchAll(db, sql: "SELECT * FROM cartridge_uses WHERE session_id = ?", arguments: [id]).map {
                SessionReportData.CartridgeUse(cartridgeID: $0["cartridge_id"], lot: $0["lot"], expiryDay: $0["expiry_day"],
                                               needleCount: $0["needle_count"], needleDiameterUm: $0["needle_diameter_um"], recordedAt: $0["recorded_at"])
            }
            let setpoints = try Row.fetchAll(db, sql: "SELECT * FROM setpoint_changes WHERE session_id = ? ORDER BY id", arguments: [id]).map {
                SessionReportData.SetpointChange(at: $0["at"], sessionTimeMs: $0["session_time_ms"], layer: $0["layer"], depthUm: $0["depth_um"], rateHz: $0["rate_hz"])
            }
            let faults = try Row.fetchAll(db, sql: "SELECT * FROM faults WHERE session_id = ? ORDER BY id", arguments: [id]).map {
                SessionReportData.Event(at: $0["at"], kind: $0["reason"], detail: $0["detail"])
            }
            let warnings = try Row.fetchAll(db, sql: "SELECT * FROM warnings WHERE session_id = ? ORDER BY id", arguments: [id]).map {
                SessionReportData.Event(at: $0["at"], kind: $0["kind"], detail: $0["detail"])
            }
            let telemetry = try Row.fetchAll(db, sql: "SELECT * FROM telemetry_seconds WHERE session_id = ? ORDER BY session_second", arguments: [id]).map {
                SessionReportData.TelemetrySecond(second: $0["session_second"], frames: $0["frames"], depthMinUm: $0["depth_min_um"],
                                                  depthMeanUm: $0["depth_mean_um"], depthMaxUm: $0["depth_max_um"], rateMeanHz: $0["rate_mean_hz"])
            }
            let pen = try Row.fetchOne(db, sql: "SELECT * FROM pens WHERE serial = ?", arguments: [session.penSerial]).map {
                PenRecord(serial: $0["serial"], firstSeen: $0["first_seen"], lastSeen: $0["last_seen"], firmware: $0["firmware"], protocolVersion: $0["protocol"])
            }
            return SessionReportData(session: session, cartridges: cartridges, setpoints: setpoints, faults: faults, warnings: warnings,
                                     telemetry: telemetry, pen: pen)
        }
    }
}
