import Foundation
@testable import StippleDaemon
import Testing

/// docs/openapi.yaml is the contract: the server answers exactly the routes it lists. (Every
/// response body is validated against the spec's schemas by the end-to-end tests in Tests/e2e.)
@Suite struct OpenAPIContractTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// (method, path) pairs from the spec's `paths:` section.
    static func specRoutes() throws -> Set<String> {
        let text = try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        var routes: Set<String> = []
        var inPaths = false
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            if inPaths, let first = line.first, first != " " { break }
            guard inPaths else { continue }
            if line.hasPrefix("  /") { current = String(line.dropFirst(2).dropLast()); continue }
            for method in ["get", "post", "put", "delete", "patch"] where line.hasPrefix("    \(method):") {
                if let current { routes.insert("\(method.uppercased()) \(current)") }
            }
        }
        return routes
    }

    @Test func everyRouteOfTheServerIsInTheSpecAndBack() throws {
        let server = Set(Routes.table.map { "\($0.method) \($0.path)" })
        let spec = try Self.specRoutes()
        #expect(spec.count >= 20)
        #expect(server.subtracting(spec).isEmpty, "served but not in docs/openapi.yaml: \(server.subtracting(spec).sorted())")
        #expect(spec.subtracting(server).isEmpty, "in docs/openapi.yaml but not served: \(spec.subtracting(server).sorted())")
    }
}
