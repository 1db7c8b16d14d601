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

/// The strict reader's `Decodable` face (`KeyedReader`: scenario files, pen configurations) and
/// its dictionary face (`JSONBody`: the API, the configuration file) give the same verdict on
/// the same JSON text: a scenario cannot accept what a request body refuses.
@Suite struct KeyedReaderParityTests {
    struct Probe<T: Decodable>: Decodable {
        var value: T?
        init(from decoder: any Decoder) throws {
            var reader = try KeyedReader(decoder, keyedBy: AnyKey.self)
            value = try reader.decodeIfPresent(T.self, field: "v")
            try reader.finish("a probe")
        }
    }

    static let texts = ["null", "true", "false", "\"7\"", "7", "-1", "2.5", "7.0", "1e3", "9223372036854775807", "9223372036854775808", "9007199254740993", "{}", "[1]", "\"\"", "\"yes\""]

    static func body(_ text: String) -> JSONBody? { try? JSONBody.parse(Array("{\"v\": \(text)}".utf8)) }
    static func decoded<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        (try? JSONDecoder().decode(Probe<T>.self, from: Data("{\"v\": \(text)}".utf8)))?.value
    }

    // Not here: -9223372036854775808, which Foundation's JSONSerialization parses to a Double;
    // JSONBody then refuses it (past 2^53 a Double is not the number written) where the
    // decoder, reading the text, takes Int.min. The stricter verdict, on purpose.
    @Test("integers, booleans and strings: accepted and refused alike, with the same value")
    func sameVerdicts() throws {
        for text in Self.texts {
            let body = try #require(Self.body(text), "\(text)")
            let integer = try? body.integer("v", required: false, range: Int.min...Int.max)
            #expect(integer == Self.decoded(Int.self, text), "integer \(text)")
            let boolean = try? body.boolean("v", required: false)
            #expect(boolean == Self.decoded(Bool.self, text), "boolean \(text)")
            let string = try? body.string("v", required: false, maxLength: .max)
            #expect(string == Self.decoded(String.self, text), "string \(text)")
        }
    }

    @Test("null is refused by name, not taken as absent; an unknown key is refused")
    func nullAndUnknown() {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Probe<Int>.self, from: Data(#"{"v": null}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Probe<Int>.self, from: Data(#"{"v": 1, "w": 2}"#.utf8)) }
        #expect((try? JSONDecoder().decode(Probe<Int>.self, from: Data("{}".utf8)))?.value == nil)
    }
}
