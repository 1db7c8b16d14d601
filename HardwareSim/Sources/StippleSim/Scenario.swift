import Foundation
import StippleRequests
import StippleWire

/// A scenario file: a pen, a timeline of host actions, pen events and faults, and the outcomes
/// expected. The format is documented in HardwareSim/README.md; decoding is in
/// Scenario+Decoding.swift.
///
/// Points in time are instants on the simulated clock, which reads zero when the pen powers
/// up; the file gives them in milliseconds (`at_ms`, `from_ms`, `to_ms`).
public struct Scenario: Sendable {
    public var name: String
    public var description: String
    public var hazards: [String]
    public var seed: UInt64
    public var duration: Duration
    public var pen: PenConfig
    public var steps: [Step]
    public var expectations: [Expectation]

    public struct Step: Sendable {
        public enum Trigger: Sendable, Equatable {
            case at(MonotonicInstant)
            case atStroke(UInt32)
        }
        public var trigger: Trigger
        public var action: Action
    }

    public enum Action: Sendable {
        case connect(limits: Message.SetLimits, setpoints: Message.SetSetpoints)
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
        case motor(on: Bool, at: MonotonicInstant)
        /// The pen reported this fault, optionally within a time window.
        case penFault(FaultCode, from: MonotonicInstant?, to: MonotonicInstant?)
        /// The pen reported no fault (its boot-time `reset` aside).
        case noPenFault
        /// No stroke happened after the first fault with this code (H1: the over-limit stroke is the last).
        case noStrokesAfterFault(FaultCode)
        /// Some ACK for this command carried this status.
        case ack(MessageID, AckStatus)
        /// The pen is in this state at the end (or at a time).
        case state(PenState, at: MonotonicInstant?)
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

/// A scenario file that cannot be used, naming where and why: `bad.json: steps[2].pressed:
/// expected true or false`.
public struct ScenarioError: Error, CustomStringConvertible, Sendable {
    public var file: String
    /// The JSON path of the value at fault (`steps[0].fields.depth_um`), or `top level`.
    public var location: String
    public var reason: String
    public var description: String { "\(file): \(location): \(reason)" }

    public init(file: String, location: String, reason: String) {
        self.file = file
        self.location = location
        self.reason = reason
    }

    /// The error a decoder gave, at its coding path.
    init(file: String, _ error: DecodingError) {
        self.file = file
        switch error {
        case .keyNotFound(let key, let context):
            location = Self.path(context.codingPath + [key])
            reason = "missing"
        case .valueNotFound(_, let context):
            location = Self.path(context.codingPath)
            reason = "must not be null"
        case .typeMismatch(_, let context):
            location = Self.path(context.codingPath)
            reason = context.debugDescription
        case .dataCorrupted(let context):
            location = Self.path(context.codingPath)
            reason = context.debugDescription + (context.underlyingError.map { " (\($0.localizedDescription))" } ?? "")
        @unknown default:
            location = "top level"
            reason = "\(error)"
        }
    }

    /// `steps[0].fields.depth_um`: keys joined by dots, array indices in brackets.
    static func path(_ keys: [any CodingKey]) -> String {
        var text = ""
        for key in keys {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text.isEmpty ? "top level" : text
    }
}

extension Scenario {
    /// Decodes a scenario from JSON text; `file` names it in errors.
    public static func parse(_ data: Data, file: String) throws -> Scenario {
        // A step's parameter given twice would be read as one of the two: refused, named.
        switch DuplicateKeys.find(in: data) {
        case .duplicate(let path): throw ScenarioError(file: file, location: path, reason: "given twice (each key once)")
        case .tooDeep(let path): throw ScenarioError(file: file, location: path, reason: "nested deeper than \(DuplicateKeys.maximumDepth) levels")
        case nil: break
        }
        do {
            return try JSONDecoder().decode(Scenario.self, from: data)
        } catch let error as DecodingError {
            throw ScenarioError(file: file, error)
        }
    }

    public static func load(path: String) throws -> Scenario {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ScenarioError(file: path, location: "file", reason: "cannot be read")
        }
        return try parse(data, file: path)
    }
}

extension Scenario.Action {
    /// Carries out an action done to the pen itself — the technician's hands on the pedal, the
    /// e-stop button and the cartridge, the power, a fault inside the pen — and returns true; for
    /// a host-side or link action, does nothing and returns false. The one place these are
    /// carried out, for every player: the scenario runner, the daemon's in-process pen
    /// (`SimPenService`) and `stipple-sim serve`'s commands.
    @discardableResult
    public func apply(to pen: inout PenSimulator) -> Bool {
        switch self {
        case .pedal(let pressed): pen.setPedal(pressed)
        case .estopButton(let pressed): pen.setEstopButton(pressed)
        case .insertCartridge(let cartridge): pen.insertCartridge(cartridge)
        case .removeCartridge: pen.removeCartridge()
        case .powerCycle: pen.powerCycle()
        case .penFault(let fault): pen.inject(fault)
        default: return false
        }
        return true
    }
}
