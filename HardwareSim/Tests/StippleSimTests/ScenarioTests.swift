import Foundation
import StippleSim
import StippleWire
import Testing

@Suite struct ScenarioTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scenarios")

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    @Test(arguments: files)
    func shippedScenarioPasses(file: String) throws {
        let scenario = try Scenario.load(path: Self.folder.appendingPathComponent(file).path)
        let report = ScenarioRunner.run(scenario)
        #expect(report.passed, "\(report)")
        #expect(!scenario.expectations.isEmpty)
    }

    @Test func theLibraryCoversEveryPenSideHazard() throws {
        var covered = Set<String>()
        for file in Self.files {
            covered.formUnion(try Scenario.load(path: Self.folder.appendingPathComponent(file).path).hazards)
        }
        let penSide: Set<String> = ["H1", "H2", "H3", "H5", "H6", "H7", "H9", "H10", "H11", "H12", "H13", "H16", "H17"]
        #expect(penSide.subtracting(covered).isEmpty, "missing: \(penSide.subtracting(covered).sorted())")
    }

    @Test func aScenarioRunsTheSameTwice() throws {
        let scenario = try Scenario.load(path: Self.folder.appendingPathComponent("h07-corrupted-link.json").path)
        #expect(ScenarioRunner.run(scenario).penOutputHash == ScenarioRunner.run(scenario).penOutputHash)
    }

    @Test(arguments: [
        (#"{"name": "x"}"#, "duration_ms: must be 1...86400000 ms"),
        (#"{"name": "x", "duration_ms": 10, "colour": 1}"#, "top level: unknown key 'colour'"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"do": "pedal"}]}"#, "steps[0]: needs at_ms or at_stroke"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "fly"}]}"#, "steps[0]: unknown action 'fly'"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "fault", "fault": "gremlins"}]}"#, "steps[0]: unknown fault 'gremlins'"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "send", "message": "set_setpoints", "fields": {"depth_um": 5000, "rate_dhz": 1200}}]}"#,
         "steps[0]: depth_um: 5000 is outside the allowed range 0...2000"),
        (#"{"name": "x", "duration_ms": 10, "expect": [{"expect": "pen_fault", "code": "dragons"}]}"#, "expect[0]: code must be one of"),
    ])
    func badScenariosNameWhereAndWhy(json: String, message: String) {
        #expect {
            _ = try Scenario.parse(Data(json.utf8), file: "bad.json")
        } throws: { error in
            "\(error)".contains("bad.json: \(message)")
        }
    }

    @Test func theFaultCatalogueMatchesWhatScenariosAccept() throws {
        for entry in FaultCatalogue.entries {
            let json = #"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "fault", "fault": "\#(entry.name)"}]}"#
            #expect(throws: Never.self, "\(entry.name)") { _ = try Scenario.parse(Data(json.utf8), file: "f.json") }
        }
    }
}
