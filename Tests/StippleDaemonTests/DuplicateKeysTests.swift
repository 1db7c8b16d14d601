import Foundation
import PropertyBased
import StippleRequests
import StippleSim
import Testing

/// A key given twice is refused by every strict reader, named by its path; the scan itself never
/// traps, whatever the bytes.
@Suite struct DuplicateKeysTests {
    static func find(_ text: String) -> DuplicateKeys.Finding? { DuplicateKeys.find(in: Array(text.utf8)) }

    @Test("a repeated key is found with its path, in objects, nested objects and arrays")
    func found() {
        #expect(Self.find(#"{"depth_um": 500, "depth_um": 2000}"#) == .duplicate(path: "depth_um"))
        #expect(Self.find(#"{"limits": {"a": 1, "b": {"c": 1, "c": 2}}}"#) == .duplicate(path: "limits.b.c"))
        #expect(Self.find(#"{"steps": [{"at_ms": 1}, {"at_ms": 2, "do": "pedal", "at_ms": 3}]}"#) == .duplicate(path: "steps[1].at_ms"))
        #expect(Self.find(#"[[], [{"x": [1, {"y": 0, "y": 0}]}]]"#) == .duplicate(path: "[1][0].x[1].y"))
    }

    @Test("escapes are undone before keys are compared: \\u0061 is a, a surrogate pair is one character")
    func escapes() {
        #expect(Self.find(#"{"a": 1, "\u0061": 2}"#) == .duplicate(path: "a"))
        #expect(Self.find(#"{"\ud83d\ude00": 1, "😀": 2}"#) == .duplicate(path: "😀"))
        #expect(Self.find(#"{"a\"b": 1, "a\u0022b": 2}"#) == .duplicate(path: #"a"b"#))
        #expect(Self.find(#"{"a\\": 1, "a": 2}"#) == nil)
        #expect(Self.find(#"{"\ud83d": 1, "\ude00": 2}"#) == .duplicate(path: "\u{FFFD}"))  // lone surrogates: both U+FFFD
    }

    @Test("the same key in different objects, keys inside strings and unique keys are fine")
    func notDuplicates() {
        #expect(Self.find(#"{"a": {"x": 1}, "b": {"x": 1}}"#) == nil)
        #expect(Self.find(#"[{"x": 1}, {"x": 1}]"#) == nil)
        #expect(Self.find(#"{"note": "\"note\": 2", "other": "{\"note\": 1}"}"#) == nil)
        #expect(Self.find(#"{"a": true, "b": false, "c": null, "d": -1.5e3, "e": [], "f": {}}"#) == nil)
        #expect(Self.find(#"  "just a string"  "#) == nil)
    }

    @Test("deep nesting is reported, never recursed into without bound")
    func tooDeep() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        guard case .tooDeep? = Self.find(deep) else {
            Issue.record("10,000 levels were scanned")
            return
        }
        let fine = String(repeating: "[", count: DuplicateKeys.maximumDepth) + String(repeating: "]", count: DuplicateKeys.maximumDepth)
        #expect(Self.find(fine) == nil)
    }

    @Test("any bytes, valid JSON or not, are scanned without trapping")
    func anyBytes() async {
        let alphabet = Array(#"{}[]":,\u0061bn 1-e."#.utf8) + [0xFF, 0x00, 0xC3]
        await propertyCheck(count: 2000, input: Gen.int(in: 0...(alphabet.count - 1)).array(of: 0...64)) { indices in
            _ = DuplicateKeys.find(in: indices.map { alphabet[$0] })
        }
    }

    @Test("an API body with a field given twice is refused 400 bad_field, naming the field")
    func apiBody() {
        do {
            _ = try JSONBody.parse(Array(#"{"layer": "upper_dermis", "depth_um": 800, "rate_hz": 120, "depth_um": 2000}"#.utf8))
            Issue.record("accepted")
        } catch {
            #expect(error.status == 400 && error.code == "bad_field")
            #expect(error.errors.first?.field == "depth_um" && error.errors.first?.value == "given twice")
        }
    }

    @Test("a scenario with a step's parameter given twice is refused, naming where")
    func scenario() {
        let text = #"{"name": "x", "steps": [{"at_ms": 0, "do": "pedal", "pressed": true, "pressed": false}]}"#
        do {
            _ = try Scenario.parse(Data(text.utf8), file: "x.json")
            Issue.record("accepted")
        } catch {
            #expect("\(error)" == "x.json: steps[0].pressed: given twice (each key once)")
        }
    }
}
