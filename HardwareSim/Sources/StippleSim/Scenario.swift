import Foundation
import StippleWire

/// A scenario file: a pen, a timeline of host actions, pen events and faults, and the outcomes
/// expected. The format is documented in HardwareSim/README.md.
public struct Scenario: Sendable {
    public var name: String
    public var description: String
    public var hazards: [String]
    public var seed: UInt64
    public var durationMs: Double
    public var pen: PenConfig
    public var steps: [Step]
    public var expectations: [Expectation]

    public struct Step: Sendable {
        public enum Trigger: Sendable, Equatable {
            case atMs(Double)
            case atStroke(UInt32)
        }
        public var trigger: Trigger
        public var action: Action
    }

    public enum Action: Sendable {
        case connect(depthUm: UInt16, rateDhz: UInt16, limits: Message.SetLimits)
        case hello(major: UInt8, minor: UInt8)
        case send(Message)
        case arm(limitsCRC: UInt32?)
        case heartbeats(Bool)
        case pedal(Bool)
        case estopButton(Bool)
        case insertCartridge(SimCartridge)
        case removeCartridge
        case powerCycle
        case penFault(PenFault)
        case linkFault(LinkFault)
        case sendRaw([UInt8])
        case repeatLast(count: Int)
    }

    public enum Expectation: Sendable {
        /// The motor is (not) driven at this time.
        case motor(on: Bool, atMs: Double)
        /// The pen reported this fault, optionally within a time window.
        case penFault(FaultCode, fromMs: Double?, toMs: Double?)
        /// The pen reported no fault (its boot-time `reset` aside).
        case noPenFault
        /// No stroke happened after the first fault with this code (H1: the over-limit stroke is the last).
        case noStrokesAfterFault(FaultCode)
        /// Some ACK for this command carried this status.
        case ack(MessageID, AckStatus)
        /// The pen is in this state at the end (or at a time).
        case state(PenState, atMs: Double?)
        /// Total strokes within bounds.
        case strokes(min: Int?, max: Int?)
        /// The pen's active depth setpoint at the end.
        case depthSetpoint(Int)
        /// The pen applied exactly this many commands (duplicates excluded).
        case commandsApplied(Int)
        /// The host decoder rejected at least this many frames.
        case hostRejectedFrames(min: Int)
    }
}

/// A scenario file that cannot be used, naming where and why.
public struct ScenarioError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var location: String
    public var reason: String
    public var description: String { "\(file): \(location): \(reason)" }
}

extension Scenario {
    /// Parses a scenario from JSON text.
    public static func parse(_ data: Data, file: String) throws -> Scenario {
        func fail(_ location: String, _ reason: String) -> ScenarioError { ScenarioError(file: file, location: location, reason: reason) }
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw fail("top level", "must be a JSON object")
        }
        let known: Set<String> = ["name", "description", "hazards", "seed", "duration_ms", "pen", "steps", "expect"]
        if let extra = Set(root.keys).subtracting(known).sorted().first { throw fail("top level", "unknown key '\(extra)'; known: \(known.sorted().joined(separator: ", "))") }
        guard let name = root["name"] as? String, !name.isEmpty else { throw fail("name", "missing or empty") }
        var scenario = Scenario(
            name: name, description: root["description"] as? String ?? "", hazards: root["hazards"] as? [String] ?? [],
            seed: UInt64(max(0, number(root, "seed") ?? 1)), durationMs: number(root, "duration_ms") ?? 0,
            pen: PenConfig(), steps: [], expectations: [])
        guard scenario.durationMs > 0, scenario.durationMs <= 24 * 3600 * 1000 else {
            throw fail("duration_ms", "must be 1...86400000 ms")
        }
        if let pen = root["pen"] {
            let penData = try JSONSerialization.data(withJSONObject: pen)
            do { scenario.pen = try JSONDecoder().decode(PenConfig.self, from: penData) } catch {
                throw fail("pen", "\(error)")
            }
        }
        for (index, raw) in (root["steps"] as? [[String: Any]] ?? []).enumerated() {
            scenario.steps.append(try parseStep(raw, at: "steps[\(index)]", fail: fail))
        }
        for (index, raw) in (root["expect"] as? [[String: Any]] ?? []).enumerated() {
            scenario.expectations.append(try parseExpectation(raw, at: "expect[\(index)]", fail: fail))
        }
        return scenario
    }

    public static func load(path: String) throws -> Scenario {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ScenarioError(file: path, location: "file", reason: "cannot be read")
        }
        return try parse(data, file: path)
    }

    private static func number(_ raw: [String: Any], _ key: String) -> Double? {
        switch raw[key] {
        case let value as Double: value
        case let value as Int: Double(value)
        case let value as NSNumber: value.doubleValue
        default: nil
        }
    }

    private static func parseStep(_ raw: [String: Any], at location: String, fail: (String, String) -> ScenarioError) throws -> Step {
        let trigger: Step.Trigger
        if let ms = number(raw, "at_ms") {
            guard ms >= 0 else { throw fail(location, "at_ms must be 0 or more") }
            trigger = .atMs(ms)
        } else if let stroke = number(raw, "at_stroke") {
            guard stroke >= 1 else { throw fail(location, "at_stroke must be 1 or more") }
            trigger = .atStroke(UInt32(stroke))
        } else {
            throw fail(location, "needs at_ms or at_stroke")
        }
        guard let what = raw["do"] as? String else { throw fail(location, "needs \"do\"") }
        let bool = { (key: String) -> Bool in raw[key] as? Bool ?? true }
        let action: Action
        switch what {
        case "connect":
            var limits = ScriptedHost.defaultLimits
            if let overrides = raw["limits"] as? [String: Any] {
                var fields: [String: String] = [:]
                for (key, value) in Message.limitsFields(limits) { fields[key] = value }
                for (key, value) in overrides { fields[key] = "\(value)" }
                guard case .setLimits(let parsed) = try message("set_limits", fields, location, fail) else {
                    throw fail(location, "limits must be set_limits fields")
                }
                limits = parsed
            }
            action = .connect(depthUm: UInt16(number(raw, "depth_um") ?? 800), rateDhz: UInt16(number(raw, "rate_dhz") ?? 1200), limits: limits)
        case "hello":
            action = .hello(major: UInt8(number(raw, "major") ?? Double(ProtocolVersion.major)), minor: UInt8(number(raw, "minor") ?? 0))
        case "send":
            guard let name = raw["message"] as? String else { throw fail(location, "send needs \"message\"") }
            var fields: [String: String] = [:]
            for (key, value) in raw["fields"] as? [String: Any] ?? [:] { fields[key] = "\(value)" }
            action = .send(try message(name, fields, location, fail))
        case "arm":
            action = .arm(limitsCRC: number(raw, "limits_crc").map { UInt32($0) })
        case "heartbeats": action = .heartbeats(bool("enabled"))
        case "pedal": action = .pedal(bool("pressed"))
        case "estop_button": action = .estopButton(bool("pressed"))
        case "insert_cartridge":
            guard let cartridge = raw["cartridge"] else { throw fail(location, "insert_cartridge needs \"cartridge\"") }
            do {
                action = .insertCartridge(try JSONDecoder().decode(SimCartridge.self, from: JSONSerialization.data(withJSONObject: cartridge)))
            } catch { throw fail(location, "cartridge: \(error)") }
        case "remove_cartridge": action = .removeCartridge
        case "power_cycle": action = .powerCycle
        case "send_raw":
            guard let hex = raw["hex"] as? String, let bytes = Hex.parse(hex) else { throw fail(location, "send_raw needs \"hex\" bytes") }
            action = .sendRaw(bytes)
        case "repeat_last_command":
            action = .repeatLast(count: Int(number(raw, "count") ?? 1))
        case "fault":
            guard let name = raw["fault"] as? String else { throw fail(location, "fault needs \"fault\" (a name from stipple-sim list-faults)") }
            action = try fault(name, raw, location, fail)
        default:
            throw fail(location, "unknown action '\(what)'; known: connect, hello, send, arm, heartbeats, pedal, estop_button, insert_cartridge, remove_cartridge, power_cycle, send_raw, repeat_last_command, fault")
        }
        return Step(trigger: trigger, action: action)
    }

    private static func message(_ name: String, _ fields: [String: String], _ location: String, _ fail: (String, String) -> ScenarioError) throws -> Message {
        do { return try Message.make(name: name, fields: fields) } catch { throw fail(location, error.description) }
    }

    /// Parses a fault given as `{"fault": NAME, parameters...}` (scenario steps, interactive commands).
    public static func faultAction(_ raw: [String: Any], at location: String) throws -> Action {
        guard let name = raw["fault"] as? String else { throw ScenarioError(file: "-", location: location, reason: "needs a fault name") }
        return try fault(name, raw, location) { ScenarioError(file: "-", location: $0, reason: $1) }
    }

    private static func fault(_ name: String, _ raw: [String: Any], _ location: String, _ fail: (String, String) -> ScenarioError) throws -> Action {
        let n = { (key: String, fallback: Double) -> Double in number(raw, key) ?? fallback }
        let direction = LinkFault.Direction(rawValue: raw["direction"] as? String ?? "both") ?? .both
        switch name {
        case "over_depth": return .penFault(.overDepth(extraUm: Int(n("extra_um", 400)), strokes: Int(n("strokes", 1))))
        case "depth_drift": return .penFault(.depthDrift(umPerSecond: n("um_per_s", 50)))
        case "depth_sensor_stuck": return .penFault(.depthSensorStuck(valueUm: number(raw, "value_um").map { Int($0) }))
        case "depth_sensor_dropout": return .penFault(.depthSensorDropout)
        case "rate_runaway": return .penFault(.rateRunaway(hz: n("hz", 190)))
        case "stall": return .penFault(.stall)
        case "over_current": return .penFault(.overCurrent(ma: Int(n("ma", 2000))))
        case "over_temperature": return .penFault(.overTemperature(dc: Int(n("dc", 500))))
        case "cartridge_removed": return .penFault(.cartridgeRemoved)
        case "estop_pressed": return .penFault(.estopPressed)
        case "firmware_hang": return .penFault(.firmwareHang)
        case "firmware_reset":
            let causeName = raw["cause"] as? String ?? "brownout"
            guard let cause = ResetCause.allKnown.first(where: { $0.name == causeName }) else {
                throw fail(location, "cause '\(causeName)' is not one of power_on, brownout, watchdog, software, pin")
            }
            return .penFault(.firmwareReset(cause))
        case "version_mismatch": return .penFault(.versionMismatch(major: Int(n("major", 2))))
        case "reused_cartridge": return .penFault(.insertCartridge(SimCartridge(id: raw["id"] as? String ?? "SIM-CART-0001")))
        case "expired_cartridge":
            return .penFault(.insertCartridge(SimCartridge(id: raw["id"] as? String ?? "SIM-CART-EXP", expiryDays: Int(n("expiry_days", 19_000)))))
        case "wrong_size_cartridge":
            return .penFault(.insertCartridge(SimCartridge(id: raw["id"] as? String ?? "SIM-CART-BIG", needleCount: Int(n("needles", 5)), needleDiameterUm: Int(n("diameter_um", 350)))))
        case "byte_loss": return .linkFault(.byteLoss(probability: n("probability", 0.01), direction: direction, durationMs: n("duration_ms", 1000)))
        case "bit_flips": return .linkFault(.bitFlips(probability: n("probability", 0.001), direction: direction, durationMs: n("duration_ms", 1000)))
        case "garbage_burst": return .linkFault(.garbageBurst(count: Int(n("count", 64)), direction: direction))
        case "latency": return .linkFault(.latency(ms: n("ms", 30)))
        case "disconnect": return .linkFault(.disconnect(durationMs: n("duration_ms", 1000)))
        default:
            throw fail(location, "unknown fault '\(name)'; known: \(FaultCatalogue.entries.map(\.name).joined(separator: ", "))")
        }
    }

    private static func parseExpectation(_ raw: [String: Any], at location: String, fail: (String, String) -> ScenarioError) throws -> Expectation {
        guard let what = raw["expect"] as? String else { throw fail(location, "needs \"expect\"") }
        func faultCode(_ key: String) throws -> FaultCode {
            guard let name = raw[key] as? String, let code = FaultCode.allKnown.first(where: { $0.name == name }) else {
                throw fail(location, "\(key) must be one of \(FaultCode.allKnown.compactMap(\.name).joined(separator: ", "))")
            }
            return code
        }
        switch what {
        case "motor":
            guard let at = number(raw, "at_ms"), let state = raw["state"] as? String, ["on", "off"].contains(state) else {
                throw fail(location, "motor needs at_ms and state on|off")
            }
            return .motor(on: state == "on", atMs: at)
        case "pen_fault":
            return .penFault(try faultCode("code"), fromMs: number(raw, "from_ms"), toMs: number(raw, "to_ms"))
        case "no_pen_fault": return .noPenFault
        case "no_strokes_after_fault": return .noStrokesAfterFault(try faultCode("code"))
        case "ack":
            guard let command = raw["command"] as? String, let id = MessageID.allKnown.first(where: { $0.name == command }) else {
                throw fail(location, "ack needs command (a message name)")
            }
            guard let statusName = raw["status"] as? String, let status = AckStatus.allKnown.first(where: { $0.name == statusName }) else {
                throw fail(location, "ack needs status, one of \(AckStatus.allKnown.compactMap(\.name).joined(separator: ", "))")
            }
            return .ack(id, status)
        case "state":
            guard let name = raw["state"] as? String, let state = PenState.allKnown.first(where: { $0.name == name }) else {
                throw fail(location, "state must be one of boot, idle, armed, running, faulted")
            }
            return .state(state, atMs: number(raw, "at_ms"))
        case "strokes": return .strokes(min: number(raw, "min").map { Int($0) }, max: number(raw, "max").map { Int($0) })
        case "depth_setpoint":
            guard let depth = number(raw, "depth_um") else { throw fail(location, "depth_setpoint needs depth_um") }
            return .depthSetpoint(Int(depth))
        case "commands_applied":
            guard let count = number(raw, "count") else { throw fail(location, "commands_applied needs count") }
            return .commandsApplied(Int(count))
        case "host_rejected_frames": return .hostRejectedFrames(min: Int(number(raw, "min") ?? 1))
        default:
            throw fail(location, "unknown expectation '\(what)'; known: motor, pen_fault, no_pen_fault, no_strokes_after_fault, ack, state, strokes, depth_setpoint, commands_applied, host_rejected_frames")
        }
    }
}

extension Message {
    /// The fields of a SET_LIMITS as text, for merging scenario overrides.
    static func limitsFields(_ l: Message.SetLimits) -> [String: String] {
        ["depth_min_um": "\(l.depthMinUm)", "depth_max_um": "\(l.depthMaxUm)", "depth_trip_um": "\(l.depthTripUm)",
         "rate_min_dhz": "\(l.rateMinDhz)", "rate_max_dhz": "\(l.rateMaxDhz)", "rate_stall_dhz": "\(l.rateStallDhz)",
         "rate_runaway_dhz": "\(l.rateRunawayDhz)", "deadman_ms": "\(l.deadmanMs)"]
    }
}
