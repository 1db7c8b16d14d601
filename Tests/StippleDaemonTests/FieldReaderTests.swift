import Foundation
import StippleRequests
import Testing

/// The configuration file and the API's bodies are read by the same checks: what `JSONBody`
/// refuses at the first bad field, `FieldReader` lists, with the same field, value and range.
@Suite struct FieldReaderTests {
    /// Values a hostile or careless writer gives: null, a boolean for a number, a number as
    /// text, a fraction, out of range, an object, a very long string.
    static var values: [Any] { [NSNull(), true, false, "7", 7, 2.5, -1, 1_000_000, Int.max, ["a": 1], [1], "", String(repeating: "x", count: 5000)] }

    @Test("each hostile value: the same verdict and the same problem from both, prefixed in the reader")
    func sameVerdicts() {
        for value in Self.values {
            let object: [String: Any] = ["v": value]
            let body = JSONBody(object: object)
            var reader = FieldReader(object, prefix: "gpio.lines.pedal.", known: ["v"])
            func check<T: Equatable>(_ kind: String, _ strict: () throws(Problem) -> T?, _ collected: T?) {
                let expected: [Problem.FieldError]
                do {
                    let read = try strict()
                    #expect(read == collected, "\(kind) \(value)")
                    expected = []
                } catch {
                    #expect(collected == nil, "\(kind) \(value)")
                    expected = error.errors.map { .init(field: "gpio.lines.pedal." + $0.field, value: $0.value, allowed: $0.allowed) }
                }
                let got = reader.problems.suffix(expected.count)
                #expect(got.map(\.field) == expected.map(\.field) && got.map(\.value) == expected.map(\.value)
                        && got.map(\.allowed) == expected.map(\.allowed), "\(kind) \(value)")
            }
            check("integer", { () throws(Problem) in try body.integer("v", required: false, range: 0...255) }, reader.integer("v", range: 0...255))
            check("boolean", { () throws(Problem) in try body.boolean("v", required: false) }, reader.boolean("v"))
            check("string", { () throws(Problem) in try body.string("v", required: false, maxLength: .max, allowed: "a string") }, reader.string("v", allowed: ""))
        }
    }

    @Test("every unknown key at once, each named with the keys there are; null is never 'absent'")
    func unknownAndNull() {
        var reader = FieldReader(["offset": 3, "colour": 1, "active_lo": true, "bias": NSNull()], prefix: "gpio.lines.pedal.",
                                 known: ["offset", "active_low", "bias"])
        #expect(reader.integer("offset", range: 0...63) == 3)
        #expect(reader.string("bias", allowed: "") == nil)
        #expect(reader.problems.map(\.field) == ["gpio.lines.pedal.active_lo", "gpio.lines.pedal.colour", "gpio.lines.pedal.bias"])
        #expect(reader.problems[0].allowed == "one of active_low, bias, offset")
        #expect(reader.problems[2].value == "null")
    }
}
