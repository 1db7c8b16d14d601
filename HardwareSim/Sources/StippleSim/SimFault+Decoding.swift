import Foundation
import StippleRequests
import StippleWire

/// The parameters a fault may carry, by the names scenario files and `stipple-sim serve`'s
/// `fault NAME key=value` use (`stipple-sim list-faults` describes them).
enum FaultParameter: String, CodingKey {
    case fault, extraUm = "extra_um", strokes, umPerS = "um_per_s", valueUm = "value_um", hz, ma, dc, cause, major
    case id, expiryDays = "expiry_days", needles, diameterUm = "diameter_um"
    case probability, direction, durationMs = "duration_ms", count, ms
}

extension Scenario.Action {
    /// A fault by its catalogue name (`FaultCatalogue`) with its parameters; refuses parameters
    /// the fault does not take.
    init(fault p: inout KeyedReader<FaultParameter>) throws {
        let name = try p.decode(String.self, .fault)
        // Every number has a range: a fault is a physical event a pen could have, and a value no
        // pen could report must be refused by name, never reach the model (it ran the daemon).
        func int(_ key: FaultParameter, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            let value = try p.decodeIfPresent(Int.self, key) ?? fallback
            guard range.contains(value) else { throw p.invalid(key, "\(value) is outside \(range.lowerBound)...\(range.upperBound)") }
            return value
        }
        func double(_ key: FaultParameter, _ fallback: Double, _ range: ClosedRange<Double>) throws -> Double {
            let value = try p.decodeIfPresent(Double.self, key) ?? fallback
            func bound(_ x: Double) -> String { Int64(exactly: x).map(String.init) ?? "\(x)" }
            guard range.contains(value) else { throw p.invalid(key, "\(value) is outside \(bound(range.lowerBound))...\(bound(range.upperBound))") }
            return value
        }
        func text(_ key: FaultParameter, _ fallback: String) throws -> String { try p.decodeIfPresent(String.self, key) ?? fallback }
        func probability(_ fallback: Double) throws -> Double { try double(.probability, fallback, 0...1) }
        func direction() throws -> LinkFault.Direction {
            p.contains(.direction) ? try p.named(.direction, [.toPen, .toHost, .both], \.rawValue) : .both
        }
        func duration(_ key: FaultParameter, _ fallback: Duration) throws -> Duration {
            try p.milliseconds(key, in: 0...scenarioDayMs) ?? fallback
        }
        switch name {
        case "over_depth": self = .penFault(.overDepth(extraUm: try int(.extraUm, 400, 0...2000), strokes: try int(.strokes, 1, 1...1000)))
        case "depth_drift": self = .penFault(.depthDrift(umPerSecond: try double(.umPerS, 50, -2000...2000)))
        case "depth_sensor_stuck": self = .penFault(.depthSensorStuck(valueUm: try p.contains(.valueUm) ? int(.valueUm, 0, -2000...4000) : nil))
        case "depth_sensor_dropout": self = .penFault(.depthSensorDropout)
        case "rate_runaway": self = .penFault(.rateRunaway(hz: try double(.hz, 190, 0...1000)))
        case "stall": self = .penFault(.stall)
        case "over_current": self = .penFault(.overCurrent(ma: try int(.ma, 2000, 0...20000)))
        case "over_temperature": self = .penFault(.overTemperature(dc: try int(.dc, 500, -400...2000)))
        case "cartridge_removed": self = .penFault(.cartridgeRemoved)
        case "estop_pressed": self = .penFault(.estopPressed)
        case "firmware_hang": self = .penFault(.firmwareHang)
        case "firmware_reset":
            self = .penFault(.firmwareReset(p.contains(.cause) ? try p.named(.cause, ResetCause.allKnown, \.name) : .brownout))
        case "version_mismatch": self = .penFault(.versionMismatch(major: try int(.major, 2, 0...255)))
        case "ignores_stops": self = .penFault(.ignoresStops)
        case "reused_cartridge": self = .penFault(.insertCartridge(SimCartridge(id: try text(.id, "SIM-CART-0001"))))
        case "expired_cartridge":
            self = .penFault(.insertCartridge(SimCartridge(id: try text(.id, "SIM-CART-EXP"), expiryDays: try int(.expiryDays, 19_000, 0...65535))))
        case "wrong_size_cartridge":
            self = .penFault(.insertCartridge(SimCartridge(
                id: try text(.id, "SIM-CART-BIG"), needleCount: try int(.needles, 5, 0...255), needleDiameterUm: try int(.diameterUm, 350, 0...65535))))
        case "byte_loss":
            self = .linkFault(.byteLoss(probability: try probability(0.01), direction: try direction(), duration: try duration(.durationMs, .seconds(1))))
        case "bit_flips":
            self = .linkFault(.bitFlips(probability: try probability(0.001), direction: try direction(), duration: try duration(.durationMs, .seconds(1))))
        case "garbage_burst":
            let count = try int(.count, 64, 0...65_536)
            self = .linkFault(.garbageBurst(count: count, direction: try direction()))
        case "latency": self = .linkFault(.latency(try duration(.ms, .milliseconds(30))))
        case "disconnect": self = .linkFault(.disconnect(duration: try duration(.durationMs, .seconds(1))))
        default:
            throw p.invalid(.fault, "unknown fault '\(name)'; known: \(FaultCatalogue.entries.map(\.name).joined(separator: ", "))")
        }
        try p.finish("fault '\(name)'")
    }

    /// A fault from `stipple-sim serve`'s `fault NAME key=value ...` command: a value that reads as
    /// a number is one. Errors read like a scenario file's (`fault command: extra_um: ...`).
    public static func fault(named name: String, parameters: [String: String]) throws -> Scenario.Action {
        var object: [String: CommandValue] = [FaultParameter.fault.stringValue: .text(name)]
        for (key, value) in parameters {
            if let integer = Int64(value) {
                object[key] = .integer(integer)
            } else if let number = Double(value), number.isFinite {
                object[key] = .number(number)
            } else {
                object[key] = .text(value)
            }
        }
        do {
            return try JSONDecoder().decode(FaultCommand.self, from: JSONEncoder().encode(object)).action
        } catch let error as DecodingError {
            throw ScenarioError(file: "fault command", error)
        }
    }

    /// A fault as a JSON object, `{"fault": NAME, ...its parameters}` (the daemon's
    /// `POST /v1/sim/fault`), read by the same rules as a scenario's fault step.
    public static func fault(json: Data) throws(ScenarioError) -> Scenario.Action {
        do {
            return try JSONDecoder().decode(FaultCommand.self, from: json).action
        } catch let error as DecodingError {
            throw ScenarioError(file: "fault", error)
        } catch {
            throw ScenarioError(file: "fault", location: "top level", reason: "\(error)")
        }
    }

    private enum CommandValue: Encodable {
        case integer(Int64), number(Double), text(String)

        func encode(to encoder: any Encoder) throws {
            var value = encoder.singleValueContainer()
            switch self {
            case .integer(let integer): try value.encode(integer)
            case .number(let number): try value.encode(number)
            case .text(let text): try value.encode(text)
            }
        }
    }

    private struct FaultCommand: Decodable {
        var action: Scenario.Action

        init(from decoder: any Decoder) throws {
            var reader = try KeyedReader(decoder, keyedBy: FaultParameter.self)
            action = try Scenario.Action(fault: &reader)
        }
    }
}
