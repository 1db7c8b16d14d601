import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import StippleAPI
import StippleClient
import StippleRecords
import StippleReport
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

    func report(_ request: Request, _ context: APIContext) async throws -> Response {
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
        guard Self.wantsHTML(request.headers[values: .accept]) else { return try json(view) }
        // The page is rendered from the JSON a client would read, by the renderer stipplectl
        // uses: one report, whichever way it is asked for.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let html = Report(data: try JSON(data: encoder.encode(view)), generatedAt: Date()).html
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        for (field, value) in ConsoleFiles.securityHeaders { headers[field] = value }
        headers[HTTPField.Name("Content-Security-Policy")!] = Self.reportPolicy(html)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    /// A browser following a link asks for `text/html` among others and never for JSON by name;
    /// the generated client and stipplectl name `application/json`.
    static func wantsHTML(_ accept: [String]) -> Bool {
        let types = accept.flatMap { $0.split(separator: ",") }.map { $0.split(separator: ";")[0].trimmingCharacters(in: .whitespaces).lowercased() }
        return types.contains("text/html") && !types.contains("application/json")
    }

    /// The report's own policy: no script at all, nothing fetched, and its inline `<style>`
    /// blocks allowed by their SHA-256 only — never `'unsafe-inline'`.
    static func reportPolicy(_ html: String) -> String {
        var hashes: [String] = []
        var rest = Substring(html)
        while let open = rest.range(of: "<style>"), let close = rest.range(of: "</style>", range: open.upperBound..<rest.endIndex) {
            let css = rest[open.upperBound..<close.lowerBound]
            hashes.append("'sha256-\(Data(SHA256.hash(data: Data(css.utf8))).base64EncodedString())'")
            rest = rest[close.upperBound...]
        }
        return "default-src 'none'; style-src \(hashes.isEmpty ? "'none'" : hashes.joined(separator: " ")); img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    }
}
