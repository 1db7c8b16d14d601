import Foundation
@testable import StippleSim
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

    /// A bad scenario file is refused with the file, the JSON path of the value at fault (step
    /// index and field) and the reason.
    @Test(arguments: [
        (#"{"name": "x"}"#, "duration_ms: missing"),
        (#"{"name": "x", "duration_ms": 0}"#, "duration_ms: 0 is outside 1...86400000 ms"),
        (#"{"name": "x", "duration_ms": 10, "colour": 1}"#, "top level: unknown key 'colour' for a scenario"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"do": "pedal"}]}"#, "steps[0]: needs at_ms or at_stroke"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": -5, "do": "pedal"}]}"#, "steps[0].at_ms: -5 is outside 0...86400000 ms"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "fly"}]}"#, "steps[0].do: unknown action 'fly'"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1}]}"#, "steps[0].do: missing"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "pedal"}, {"at_ms": 2, "do": "pedal", "presed": false}]}"#,
         "steps[1]: unknown key 'presed' for 'pedal'; it takes at_ms, at_stroke, do, pressed"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "pedal", "pressed": "yes"}]}"#, "steps[0].pressed: Expected to decode Bool"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "fault", "fault": "gremlins"}]}"#, "steps[0].fault: unknown fault 'gremlins'"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "fault", "fault": "over_depth", "extra": 5}]}"#,
         "steps[0]: unknown key 'extra' for fault 'over_depth'; it takes at_ms, at_stroke, do, fault, extra_um, strokes"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "fault", "fault": "byte_loss", "probability": 2}]}"#,
         "steps[0].probability: 2.0 is outside 0...1"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "send", "message": "set_setpoints", "fields": {"depth_um": 5000, "rate_dhz": 1200}}]}"#,
         "steps[0].fields.depth_um: 5000 is outside the allowed range 0...2000"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "send", "message": "set_setpoints", "fields": {"depth_um": 800}}]}"#,
         "steps[0].fields.rate_dhz: missing; set_setpoints needs it"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "send", "message": "teleport"}]}"#, "steps[0].message: unknown message 'teleport'"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "connect", "depth_um": 5000}]}"#,
         "steps[0].depth_um: 5000 is outside the allowed range 0...2000"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "connect", "limits": {"depth_trip_um": 2500}}]}"#,
         "steps[0].limits.depth_trip_um: 2500 is outside the allowed range 0...2000"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "connect", "limits": {"trip_um": 1300}}]}"#,
         "steps[0].limits.trip_um: set_limits has no such field"),
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "arm", "limits_crc": -1}]}"#,
         "steps[0].limits_crc: -1 is outside the allowed range 0...4294967295"),
        (#"{"name": "x", "duration_ms": 10, "pen": {"cartridge": {"needle_count": 3}}}"#, "pen.cartridge.id: missing"),
        (#"{"name": "x", "duration_ms": 10, "pen": {"depth_sensr": false}}"#, "pen: unknown key 'depth_sensr' for the pen"),
        (#"{"name": "x", "duration_ms": 10, "expect": [{"expect": "pen_fault", "code": "dragons"}]}"#, "expect[0].code: 'dragons' is not one of none, "),
        (#"{"name": "x", "duration_ms": 10, "expect": [{"expect": "motor", "state": "on"}]}"#, "expect[0].at_ms: missing"),
        (#"{"name": "x", "duration_ms": 10, "steps": [}"#, "top level: The given data was not valid JSON."),
        // null is refused by name, as the API refuses it, never taken as "the default" — except
        // where the format gives it a meaning (the empty cartridge slot, below).
        (#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "pedal", "pressed": null}]}"#,
         "steps[0].pressed: null (omit the field for its default)"),
        (#"{"name": "x", "duration_ms": 10, "seed": null}"#, "seed: null (omit the field for its default)"),
    ])
    func badScenariosNameWhereAndWhy(json: String, message: String) {
        #expect {
            _ = try Scenario.parse(Data(json.utf8), file: "bad.json")
        } throws: { error in
            "\(error)".hasPrefix("bad.json: \(message)")
        }
    }

    @Test func anEmptyCartridgeSlotIsNull() throws {
        let empty = try Scenario.parse(Data(#"{"name": "x", "duration_ms": 10, "pen": {"cartridge": null}}"#.utf8), file: "e.json")
        #expect(empty.pen.cartridge == nil)
        let absent = try Scenario.parse(Data(#"{"name": "x", "duration_ms": 10, "pen": {}}"#.utf8), file: "a.json")
        #expect(absent.pen.cartridge == PenConfig().cartridge)
    }

    @Test func aLoadedFileIsNamedInItsErrors() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stipple-bad-\(getpid()).json").path
        try Data(#"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "fly"}]}"#.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect {
            _ = try Scenario.load(path: path)
        } throws: { error in
            guard let error = error as? ScenarioError else { return false }
            return error.file == path && error.location == "steps[0].do" && error.reason.hasPrefix("unknown action 'fly'; known: connect, ")
        }
    }

    @Test func timesAndMessageFieldsDecodeTyped() throws {
        let json = #"""
            {"name": "t", "duration_ms": 1500.5, "seed": 18446744073709551615,
             "pen": {"watchdog_ms": 250, "thermal_time_constant_s": 0.5},
             "steps": [
                {"at_ms": 0.25, "do": "connect", "rate_dhz": 1000, "limits": {"deadman_ms": 150}},
                {"at_stroke": 10, "do": "arm", "limits_crc": "0x10"},
                {"at_ms": 100, "do": "fault", "fault": "disconnect", "duration_ms": 20}
             ],
             "expect": [{"expect": "pen_fault", "code": "stall", "from_ms": 1, "to_ms": 2.5}]}
            """#
        let scenario = try Scenario.parse(Data(json.utf8), file: "t.json")
        #expect(scenario.duration == .microseconds(1_500_500) && scenario.seed == .max)
        #expect(scenario.pen.watchdog == .milliseconds(250) && scenario.pen.thermalTimeConstant == .milliseconds(500))
        guard case .connect(let limits, let setpoints) = scenario.steps[0].action else { Issue.record("not connect"); return }
        #expect(scenario.steps[0].trigger == .at(.zero + .microseconds(250)))
        var expected = ScriptedHost.defaultLimits
        expected.deadmanMs = 150
        #expect(limits == expected && setpoints == .init(depthUm: 800, rateDhz: 1000))
        guard case .arm(let crc) = scenario.steps[1].action else { Issue.record("not arm"); return }
        #expect(crc == 16 && scenario.steps[1].trigger == .atStroke(10))
        guard case .linkFault(.disconnect(let cut)) = scenario.steps[2].action else { Issue.record("not disconnect"); return }
        #expect(cut == .milliseconds(20))
        guard case .penFault(.stall, let from, let to) = scenario.expectations[0] else { Issue.record("not pen_fault"); return }
        #expect(from == .zero + .milliseconds(1) && to == .zero + .microseconds(2500))
    }

    @Test func faultCommandsOfTheServeTransportDecodeLikeScenarioSteps() throws {
        guard case .penFault(.overDepth(let extra, let strokes)) = try Scenario.Action.fault(named: "over_depth", parameters: ["extra_um": "600"]) else {
            Issue.record("not over_depth")
            return
        }
        #expect(extra == 600 && strokes == 1)
        #expect {
            _ = try Scenario.Action.fault(named: "over_depth", parameters: ["extra_um": "deep"])
        } throws: { "\($0)".hasPrefix("fault command: extra_um: Expected to decode Int") }
    }

    @Test func theFaultCatalogueMatchesWhatScenariosAccept() throws {
        for entry in FaultCatalogue.entries {
            let json = #"{"name": "x", "duration_ms": 10, "steps": [{"at_ms": 1, "do": "fault", "fault": "\#(entry.name)"}]}"#
            #expect(throws: Never.self, "\(entry.name)") { _ = try Scenario.parse(Data(json.utf8), file: "f.json") }
        }
    }
}

/// A model fed a number no pen could report must refuse it by name — or, reached another way,
/// saturate — and never trap: with `--pen sim` it runs inside the daemon.
@Suite struct HostileNumbersTests {
    @Test("pen configuration values out of range are refused, named")
    func penConfiguration() {
        for (key, value) in [("ambient_dc", "1e10"), ("over_temperature_dc", "-9223372036854775808"), ("depth_noise_um", "1e300"),
                             ("over_current_ma", "-1"), ("protocol_major", "256"), ("firmware", "[1, 2]"), ("firmware", "[1, 0, 9999]")] {
            let json = #"{"name": "x", "duration_ms": 10, "pen": {"\#(key)": \#(value)}}"#
            #expect(throws: ScenarioError.self, "\(key)") { _ = try Scenario.parse(Data(json.utf8), file: "p.json") }
        }
    }

    @Test("the model saturates what it is handed directly: a runaway, a hot motor, a deep stroke — no trap")
    func saturates() {
        var pen = PenSimulator(config: PenConfig(), seed: 3)
        pen.inject(.overTemperature(dc: Int.max))
        pen.inject(.overCurrent(ma: Int.max))
        pen.inject(.rateRunaway(hz: .infinity))
        pen.inject(.overDepth(extraUm: Int.max / 2, strokes: 5))
        pen.advance(to: .zero + .seconds(2))
        _ = pen.takeOutput()
        #expect(Int(saturating: Double.nan) == 0 && Int32(saturating: 1e300) == .max && Int32(saturating: -1e300) == .min)
    }
}
