import Foundation
import StippleAPI
@testable import StippleDaemon
import StippleSafety
import StippleSupervision
import Testing

/// docs/openapi.yaml is the one contract for problem codes: `ProblemCode` and `ArmingCheckCode`
/// are generated from it, `x-problem-codes` gives each code's statuses, and the sources are held
/// to both — a code or a status the spec does not list fails here (or does not compile).
@Suite struct ProblemCodeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `x-problem-codes`: code → statuses, read from the spec's text.
    static func specStatuses() throws -> [String: Set<Int>] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        var table: [String: Set<Int>] = [:]
        var inside = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasSuffix("x-problem-codes:") { inside = true; continue }
            guard inside else { continue }
            guard line.hasPrefix("        "), let colon = line.firstIndex(of: ":") else { break }
            let code = line[..<colon].trimmingCharacters(in: .whitespaces)
            let statuses = line.split(separator: "[").dropFirst().first?.split(separator: "]").first?
                .split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? []
            table[code] = Set(statuses)
        }
        return table
    }

    /// Every Swift source file under `Sources/`, with its path.
    static func sources() throws -> [(String, String)] {
        let base = root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(atPath: base.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        return try files.map { ($0, try String(contentsOf: base.appendingPathComponent($0), encoding: .utf8)) }
    }

    static func matches(_ pattern: String, in text: String) throws -> [[String]] {
        let regex = try NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { match in
            (1..<match.numberOfRanges).map { String(text[Range(match.range(at: $0), in: text)!]) }
        }
    }

    @Test("the generated enum and the status table list the same codes")
    func tableCoversTheEnum() throws {
        let table = try Self.specStatuses()
        #expect(Set(table.keys) == Set(ProblemCode.allCases.map(\.rawValue)))
        #expect(table.values.allSatisfy { !$0.isEmpty })
    }

    @Test("every refusal of the safety core and every arming check is a code of the spec")
    func coreCodes() {
        for code in SafetyRefusal.Code.allCases {
            #expect(ProblemCode(rawValue: code.rawValue) != nil, "\(code.rawValue) is not in ProblemCode")
        }
        #expect(Set(ArmingFailure.Code.allCases.map(\.rawValue)) == Set(ArmingCheckCode.allCases.map(\.rawValue)))
    }

    @Test("every problem the sources make has a listed code and one of its listed statuses")
    func sourcesUseListedCodesAndStatuses() throws {
        let table = try Self.specStatuses()
        let byCase = Dictionary(uniqueKeysWithValues: ProblemCode.allCases.map { (String(describing: $0), $0.rawValue) })
        let kinds = ["badRequest": 400, "forbidden": 403, "notFound": 404, "conflict": 409, "unavailable": 503, "unprocessable": 422]
        var checked = 0
        for (path, text) in try Self.sources() {
            // The daemon names codes only through the generated enum.
            if path.hasPrefix("StippleDaemon/") || path.hasPrefix("StippleSupervision/") {
                #expect(try Self.matches(#"Problem\([^,()]+, ""#, in: text).isEmpty, "\(path) passes a problem code as a string")
                #expect(try Self.matches(#"code: "[a-z_]+""#, in: text).isEmpty, "\(path) writes a problem code as a string")
            }
            for match in try Self.matches(#"Problem\((\d{3}), "([a-z_]+)""#, in: text) {
                #expect(table[match[1]]?.contains(Int(match[0])!) == true, "\(path): \(match[1]) with \(match[0])")
                checked += 1
            }
            for match in try Self.matches(#"Problem\((\d{3}), \.([A-Za-z_]+)"#, in: text) {
                let code = try #require(byCase[match[1]], "\(path): .\(match[1])")
                #expect(table[code]?.contains(Int(match[0])!) == true, "\(path): \(code) with \(match[0])")
                checked += 1
            }
            // `CommandError(kind, code, …)` in the shell, `error(kind, code, …)` in SupervisorCore.
            for match in try Self.matches(#"(?:CommandError|\berror)\(\.([a-zA-Z]+), \.([A-Za-z_]+)"#, in: text) {
                let code = try #require(byCase[match[1]], "\(path): .\(match[1])")
                let status = try #require(kinds[match[0]])
                #expect(table[code]?.contains(status) == true, "\(path): \(code) as \(match[0]) (\(status))")
                checked += 1
            }
        }
        #expect(checked > 60, "the scan found only \(checked) problems: has the pattern changed?")
        // The core's refusals: bad_request and setpoint_out_of_limits are 422, the rest 409.
        for code in SafetyRefusal.Code.allCases {
            let status = [.badRequest, .setpointOutOfLimits].contains(code) ? 422 : 409
            #expect(table[code.rawValue]?.contains(status) == true, "\(code.rawValue) as \(status)")
        }
    }
}
