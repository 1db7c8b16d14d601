import Foundation
import Testing

/// docs/safety.md's traceability table must name only tests that exist, for every hazard.
@Suite struct TraceabilityTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func everyHazardHasARowAndEveryNamedTestExists() throws {
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/safety.md"), encoding: .utf8)
        let rows = doc.split(separator: "\n").filter { $0.hasPrefix("| H") }
        let ids = rows.compactMap { $0.split(separator: "|").first?.trimmingCharacters(in: .whitespaces) }
        #expect(ids == (1...17).map { "H\($0)" })

        var sources = ""
        for folder in ["Tests", "HardwareSim/Tests", "HardwareSim/scenarios", "Firmware-protocol/vectors", "Firmware-protocol/c/test"] {
            let enumerator = FileManager.default.enumerator(at: Self.root.appendingPathComponent(folder), includingPropertiesForKeys: nil)
            while let url = enumerator?.nextObject() as? URL {
                if ["swift", "json", "c", "py"].contains(url.pathExtension) { sources += try String(contentsOf: url, encoding: .utf8) }
            }
        }
        for row in rows {
            let testsColumn = row.split(separator: "|").last.map(String.init) ?? ""
            for name in testsColumn.split(separator: "`").enumerated().filter({ $0.offset % 2 == 1 }).map({ String($0.element) }) {
                let known = sources.contains("func \(name)") || sources.contains("def \(name)(") || sources.contains("\"\(name)\"") || name == "test_vectors"
                #expect(known, "docs/safety.md names \(name), which no test defines")
            }
        }
    }
}
