import Foundation
import Hummingbird
import StippleAPI
import StippleRecords
import StippleRequests

/// The session report (`GET /v1/sessions/{id}/report`) and the record it needs that nothing
/// else keeps: the limits in force when the session opened (they cannot change while it is
/// open, but a restart with another configuration could change them between sessions).
extension Routes {
    /// Audited once per session, right after it opened and before the API answers.
    func recordLimitsInForce(actor: String) async {
        guard let records, let session = await supervisor.status().session else { return }
        let limits = LimitsView(await supervisor.limits)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let text = try? String(decoding: encoder.encode(limits), as: UTF8.self) else { return }
        do {
            let wall = Int64(Date().timeIntervalSince1970)
            try records.audit(kind: "session_limits", actor: actor, sessionID: session.id, payload: ["limits": text], at: wall)
        } catch {
            logger.error("cannot record the limits in force", metadata: ["session_id": "\(session.id)", "error": "\(error)"])
        }
    }

    func report(_ context: APIContext) async throws -> Response {
        guard let records else { throw Problem(503, .recordsUnavailable, "the records are not available") }
        let id = try context.parameters.require("id")
        guard let report = try records.report(id) else { throw Problem(404, .noSuchSession, "no session \(id)") }
        let audit = try records.verifyAudit()
        var view = ReportView(report, audit: audit)
        view.events = try records.auditEntries(sessionID: id)
        let recorded = view.events.last { $0.kind == "session_limits" }.flatMap { entry -> LimitsView? in
            guard let payload = try? JSONDecoder().decode([String: String].self, from: Data(entry.payload.utf8)),
                  let limits = payload["limits"] else { return nil }
            return try? JSONDecoder().decode(LimitsView.self, from: Data(limits.utf8))
        }
        let current = LimitsView(await supervisor.limits)
        view.limits = recorded ?? current
        view.limitsSource = recorded == nil ? "current" : "recorded"
        return try json(view)
    }
}
