import StippleRequests
import StippleWire

// Scenario files decoded with `Decodable` (the format is in HardwareSim/README.md). Every object
// refuses keys it does not know; protocol names — messages, fields, fault codes, ACK statuses,
// pen states — come from the generated code, never from a copy here. Times given in
// milliseconds become instants and Durations here and nowhere else.

/// The longest scenario, and so the latest time or longest interval a scenario file may name:
/// one day, in milliseconds.
let scenarioDayMs = 86_400_000.0

extension Scenario: Decodable {
    enum CodingKeys: String, CodingKey {
        case name, description, hazards, seed, duration = "duration_ms", pen, steps, expectations = "expect"
    }

    public init(from decoder: any Decoder) throws {
        var c = try KeyedReader(decoder, keyedBy: CodingKeys.self)
        name = try c.decode(String.self, .name)
        guard !name.isEmpty else { throw c.invalid(.name, "must not be empty") }
        description = try c.decodeIfPresent(String.self, .description) ?? ""
        hazards = try c.decodeIfPresent([String].self, .hazards) ?? []
        seed = try c.decodeIfPresent(UInt64.self, .seed) ?? 1
        guard let duration = try c.milliseconds(.duration, in: 1...scenarioDayMs) else { throw c.missing(.duration) }
        self.duration = duration
        pen = try c.decodeIfPresent(PenConfig.self, .pen) ?? PenConfig()
        steps = try c.decodeIfPresent([Step].self, .steps) ?? []
        expectations = try c.decodeIfPresent([Expectation].self, .expectations) ?? []
        try c.finish("a scenario")
    }
}

extension Scenario.Step: Decodable {
    /// The keys of a step: its trigger, `do`, and the action's parameters beside them in the same
    /// object. A fault's parameters are `FaultParameter`s; the fields of protocol messages are
    /// named by the generated message table.
    enum CodingKeys: String, CodingKey {
        case atMs = "at_ms", atStroke = "at_stroke", action = "do"
        case limits, major, minor, message, fields, enabled, pressed, cartridge, hex, count
    }

    /// The values of `do`.
    enum Kind: String, CaseIterable {
        case connect, hello, send, arm, heartbeats, pedal, estopButton = "estop_button", insertCartridge = "insert_cartridge"
        case removeCartridge = "remove_cartridge", powerCycle = "power_cycle", sendRaw = "send_raw"
        case repeatLastCommand = "repeat_last_command", fault
    }

    public init(from decoder: any Decoder) throws {
        var c = try KeyedReader(decoder, keyedBy: CodingKeys.self)
        let at = try c.milliseconds(.atMs, in: 0...scenarioDayMs)
        let stroke = try c.decodeIfPresent(UInt32.self, .atStroke)
        switch (at, stroke) {
        case (let at?, nil): trigger = .at(.zero + at)
        case (nil, let stroke?):
            guard stroke >= 1 else { throw c.invalid(.atStroke, "must be 1 or more") }
            trigger = .atStroke(stroke)
        case (nil, nil): throw c.invalid("needs at_ms or at_stroke")
        case (_?, _?): throw c.invalid("needs at_ms or at_stroke, not both")
        }
        let name = try c.decode(String.self, .action)
        guard let kind = Kind(rawValue: name) else {
            throw c.invalid(.action, "unknown action '\(name)'; known: \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        switch kind {
        case .connect:
            // SET_SETPOINTS fields beside `do`, SET_LIMITS fields under `limits`, over the defaults.
            let setpoints = try Self.message(.setSetpoints(ScriptedHost.defaultSetpoints), reader: &c, under: nil)
            let limits = try Self.message(.setLimits(ScriptedHost.defaultLimits), reader: &c, under: .limits)
            guard case .setSetpoints(let setpoints) = setpoints, case .setLimits(let limits) = limits else {
                throw c.invalid(.action, "connect builds SET_SETPOINTS and SET_LIMITS")
            }
            action = .connect(limits: limits, setpoints: setpoints)
        case .hello:
            action = .hello(major: try c.decodeIfPresent(UInt8.self, .major) ?? ProtocolVersion.major,
                            minor: try c.decodeIfPresent(UInt8.self, .minor) ?? 0)
        case .send:
            let message = try c.decode(String.self, .message)
            let fields = try c.decodeIfPresent([String: FieldText].self, .fields) ?? [:]
            action = .send(try Self.make(message, fields.mapValues(\.text), fieldsAt: c.codingPath + [CodingKeys.fields],
                                         nameAt: c.codingPath + [CodingKeys.message]))
        case .arm:
            // ARM's own fields (limits_crc) if given; else the host uses its pushed limits' checksum.
            var fields: [String: String] = [:]
            for field in Self.fieldNames(.arm) {
                if let value = try c.decodeIfPresent(FieldText.self, field: field) { fields[field] = value.text }
            }
            if fields.isEmpty {
                action = .arm(limitsCRC: nil)
            } else {
                guard case .arm(let arm) = try Self.make(MessageID.arm.name ?? "", fields, fieldsAt: c.codingPath, nameAt: c.codingPath) else {
                    throw c.invalid(.action, "arm builds ARM")
                }
                action = .arm(limitsCRC: arm.limitsCRC)
            }
        case .heartbeats: action = .heartbeats(try c.decodeIfPresent(Bool.self, .enabled) ?? true)
        case .pedal: action = .pedal(try c.decodeIfPresent(Bool.self, .pressed) ?? true)
        case .estopButton: action = .estopButton(try c.decodeIfPresent(Bool.self, .pressed) ?? true)
        case .insertCartridge: action = .insertCartridge(try c.decode(SimCartridge.self, .cartridge))
        case .removeCartridge: action = .removeCartridge
        case .powerCycle: action = .powerCycle
        case .sendRaw:
            guard let bytes = Hex.parse(try c.decode(String.self, .hex)) else { throw c.invalid(.hex, "not hex bytes") }
            action = .sendRaw(bytes)
        case .repeatLastCommand:
            let count = try c.decodeIfPresent(Int.self, .count) ?? 1
            guard (1...1000).contains(count) else { throw c.invalid(.count, "\(count) is outside 1...1000") }
            action = .repeatLast(count: count)
        case .fault:
            // The fault's parameters share the step's object; its reader knows the step's keys too.
            var f = try KeyedReader(decoder, keyedBy: FaultParameter.self)
            f.allow(CodingKeys.atMs.stringValue, CodingKeys.atStroke.stringValue, CodingKeys.action.stringValue)
            action = try Scenario.Action(fault: &f)
            return
        }
        try c.finish("'\(name)'")
    }

    /// The field names of a message, from the generated table.
    static func fieldNames(_ id: MessageID) -> [String] {
        MessageSchema.messages.first { $0.id == id }?.fields.map(\.name) ?? []
    }

    /// `defaults` with the fields the step gives (beside `do`, or in the object under `key`).
    private static func message(_ defaults: Message, reader c: inout KeyedReader<CodingKeys>, under key: CodingKeys?) throws -> Message {
        var fields = defaults.fieldTexts
        if let key {
            for (name, value) in try c.decodeIfPresent([String: FieldText].self, key) ?? [:] { fields[name] = value.text }
        } else {
            for name in fieldNames(defaults.id) {
                if let value = try c.decodeIfPresent(FieldText.self, field: name) { fields[name] = value.text }
            }
        }
        let path = c.codingPath + (key.map { [$0] } ?? [])
        return try make(defaults.id.name ?? "", fields, fieldsAt: path, nameAt: path)
    }

    /// `Message.make`, its error at the field it names (below `fieldsAt`) or at the message name.
    private static func make(_ name: String, _ fields: [String: String], fieldsAt: [any CodingKey], nameAt: [any CodingKey]) throws -> Message {
        do {
            return try Message.make(name: name, fields: fields)
        } catch {
            let path = error.field == "message" ? nameAt : fieldsAt + [AnyKey(error.field)]
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: error.reason))
        }
    }
}

/// A message field's value as a scenario gives it — a number or text — in the text form that
/// `Message.make` parses (the one `stipplectl encode` takes).
struct FieldText: Decodable {
    var text: String

    init(from decoder: any Decoder) throws {
        let value = try decoder.singleValueContainer()
        if let number = try? value.decode(Int64.self) {
            text = String(number)
        } else if let string = try? value.decode(String.self) {
            text = string
        } else {
            throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath, debugDescription: "expected an integer or text"))
        }
    }
}

extension Scenario.Expectation: Decodable {
    enum CodingKeys: String, CodingKey {
        case kind = "expect", state, atMs = "at_ms", code, fromMs = "from_ms", toMs = "to_ms", command, status
        case min, max, depthUm = "depth_um", count
    }

    /// The values of `expect`.
    enum Kind: String, CaseIterable {
        case motor, penFault = "pen_fault", noPenFault = "no_pen_fault", noStrokesAfterFault = "no_strokes_after_fault"
        case ack, state, strokes, depthSetpoint = "depth_setpoint", commandsApplied = "commands_applied"
        case hostRejectedFrames = "host_rejected_frames"
    }

    public init(from decoder: any Decoder) throws {
        var c = try KeyedReader(decoder, keyedBy: CodingKeys.self)
        func instant(_ key: CodingKeys) throws -> MonotonicInstant? { try c.milliseconds(key, in: 0...scenarioDayMs).map { .zero + $0 } }
        let name = try c.decode(String.self, .kind)
        guard let kind = Kind(rawValue: name) else {
            throw c.invalid(.kind, "unknown expectation '\(name)'; known: \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        switch kind {
        case .motor:
            let state = try c.decode(String.self, .state)
            guard state == "on" || state == "off" else { throw c.invalid(.state, "'\(state)' is not one of on, off") }
            guard let at = try instant(.atMs) else { throw c.missing(.atMs) }
            self = .motor(on: state == "on", at: at)
        case .penFault:
            self = .penFault(try c.named(.code, FaultCode.allKnown, \.name), from: try instant(.fromMs), to: try instant(.toMs))
        case .noPenFault: self = .noPenFault
        case .noStrokesAfterFault: self = .noStrokesAfterFault(try c.named(.code, FaultCode.allKnown, \.name))
        case .ack: self = .ack(try c.named(.command, MessageID.allKnown, \.name), try c.named(.status, AckStatus.allKnown, \.name))
        case .state: self = .state(try c.named(.state, PenState.allKnown, \.name), at: try instant(.atMs))
        case .strokes: self = .strokes(min: try c.decodeIfPresent(Int.self, .min), max: try c.decodeIfPresent(Int.self, .max))
        case .depthSetpoint: self = .depthSetpoint(try c.decode(Int.self, .depthUm))
        case .commandsApplied: self = .commandsApplied(try c.decode(Int.self, .count))
        case .hostRejectedFrames: self = .hostRejectedFrames(min: try c.decodeIfPresent(Int.self, .min) ?? 1)
        }
        try c.finish("'\(name)'")
    }
}
