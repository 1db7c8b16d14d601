import Foundation
import Hummingbird
import Testing

/// The statuses docs/openapi.yaml declares for each operation, read from the spec itself (its
/// `paths` are written one response per line), so that the in-process route tests hold every
/// answer they get to the contract — as the end-to-end suite does for every answer it gets.
enum DeclaredStatuses {
    /// method (GET, POST, ...) and path template → the declared statuses.
    static let table: [String: Set<Int>] = {
        var table: [String: Set<Int>] = [:]
        let spec = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/openapi.yaml")
        guard let text = try? String(contentsOf: spec, encoding: .utf8) else { return [:] }
        var path: String?
        var method: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "components:" { break }
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
                method = nil
            } else if let verb = ["get", "put", "post", "delete"].first(where: { line == "    \($0):" }) {
                method = verb.uppercased()
            } else if let path, let method, line.hasPrefix("        \""),
                      let status = Int(line.dropFirst(9).prefix(3)) {
                table["\(method) \(path)", default: []].insert(status)
            }
        }
        return table
    }()

    /// The spec's template for a concrete path (`/v1/sessions/S-1/close` → `/v1/sessions/{id}/close`).
    static func template(for path: String) -> String? {
        let segments = path.split(separator: "?").first.map { $0.split(separator: "/") } ?? []
        let templates = Set(table.keys.map { String($0.split(separator: " ")[1]) })
        return templates.first { template in
            let parts = template.split(separator: "/")
            return parts.count == segments.count && zip(parts, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }
    }

    /// Records an issue for an answer whose status the spec does not declare for its operation.
    /// Paths and methods the spec lacks are the router's (404 `no_such_route`, 405 with `Allow`).
    static func check(_ request: Request, _ response: Response) {
        guard let template = template(for: request.uri.path),
              let declared = table["\(request.method.rawValue) \(template)"] else { return }
        let status = Int(response.status.code)
        if !declared.contains(status) {
            Issue.record("\(request.method.rawValue) \(template) answered \(status), which docs/openapi.yaml does not declare (\(declared.sorted()))")
        }
    }
}

@Suite struct DeclaredStatusesTests {
    @Test("the spec's statuses are read: every operation has some, and a 2xx")
    func read() {
        #expect(DeclaredStatuses.table.count >= 30)
        for (operation, statuses) in DeclaredStatuses.table {
            #expect(statuses.contains { (200..<300).contains($0) }, "\(operation)")
        }
        #expect(DeclaredStatuses.table["POST /v1/sessions"]?.contains(201) == true)
        #expect(DeclaredStatuses.template(for: "/v1/sessions/S-9/report") == "/v1/sessions/{id}/report")
    }
}
