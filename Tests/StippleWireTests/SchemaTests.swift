import StippleWire
import Testing

/// The Swift codec must describe exactly the table in Firmware-protocol/messages.json, and
/// building messages from text must name the field and the allowed range on every error.
@Suite struct SchemaTests {
    @Test func swiftSchemaMatchesTheMessageTable() throws {
        let table = try Repository.json("Firmware-protocol/messages.json")
        let version = table["version"] as! [String: Int]
        #expect(Int(ProtocolVersion.major) == version["major"] && Int(ProtocolVersion.minor) == version["minor"])
        let messages = table["messages"] as! [[String: Any]]
        #expect(messages.count == MessageSchema.messages.count)
        for (json, entry) in zip(messages, MessageSchema.messages) {
            #expect(UInt8((json["id"] as! String).dropFirst(2), radix: 16) == entry.id.rawValue)
            #expect(json["name"] as? String == entry.name)
            #expect((json["direction"] as! String == "host_to_pen") == entry.hostToPen)
            #expect(entry.id.isHostCommand == entry.hostToPen, "host commands use ids below 0x80")
            let fields = json["fields"] as! [[String: Any]]
            #expect(fields.map { $0["name"] as! String } == entry.fields.map(\.name))
            for (field, schema) in zip(fields, entry.fields) {
                if let min = field["min"] as? Int { #expect(schema.range?.lowerBound == Int64(min)) }
                if let max = field["max"] as? Int { #expect(schema.range?.upperBound == Int64(max)) }
            }
        }
        #expect(Set(MessageID.allKnown.map(\.rawValue)).count == MessageID.allKnown.count, "ids are unique")
    }

    @Test func payloadsFitTheMaximum() {
        for id in MessageID.allKnown {
            let entry = MessageSchema.messages.first { $0.id == id }!
            let fixed = entry.fields.compactMap(\.size).reduce(0, +)
            #expect(fixed <= FrameLimits.maxPayload)
        }
        #expect(FrameLimits.maxRawFrame == FrameLimits.maxPayload + 6)
        #expect(FrameLimits.maxEncodedFrame == FrameLimits.maxRawFrame + 1)
        #expect(FrameLimits.maxWireBytes == FrameLimits.maxEncodedFrame + 2)
    }

    @Test func makeBuildsMessagesFromText() throws {
        let message = try Message.make(name: "set_setpoints", fields: ["depth_um": "800", "rate_dhz": "1200"])
        #expect(message == .setSetpoints(.init(depthUm: 800, rateDhz: 1200)))
        let status = try Message.make(name: "status", fields: [
            "state": "armed", "flags": "armed|run_enabled", "fault": "none",
            "depth_setpoint_um": "800", "rate_setpoint_dhz": "0x4B0", "pen_time_us": "5",
        ])
        #expect(status.description == "status state=armed flags=armed|run_enabled fault=none depth_setpoint_um=800 rate_setpoint_dhz=1200 pen_time_us=5")
        let cartridge = try Message.make(name: "cartridge", fields: [
            "event": "1", "needle_count": "3", "needle_diameter_um": "250", "expiry_days": "0",
            "cartridge_id": "3RL-1", "lot": "L1",
        ])
        #expect(cartridge.description.hasPrefix("cartridge event=inserted"))
    }

    @Test(arguments: [
        ("set_setpoints", ["depth_um": "2001", "rate_dhz": "1200"], "depth_um", "outside the allowed range 0...2000"),
        ("set_setpoints", ["depth_um": "800", "rate_dhz": "39"], "rate_dhz", "outside the allowed range 400...1600"),
        ("set_setpoints", ["depth_um": "deep", "rate_dhz": "1200"], "depth_um", "not an integer; allowed 0...2000"),
        ("set_setpoints", ["depth_um": "800"], "rate_dhz", "missing"),
        ("set_setpoints", ["depth_um": "800", "rate_dhz": "1200", "speed": "1"], "speed", "no such field"),
        ("status", ["state": "flying", "flags": "0", "fault": "none", "depth_setpoint_um": "0", "rate_setpoint_dhz": "0", "pen_time_us": "0"],
         "state", "not one of boot, idle, armed, running, faulted"),
        ("status", ["state": "idle", "flags": "armed|wings", "fault": "none", "depth_setpoint_um": "0", "rate_setpoint_dhz": "0", "pen_time_us": "0"],
         "flags", "'wings' is not one of"),
        ("hello_reply", ["proto_major": "1", "proto_minor": "0", "fw_major": "0", "fw_minor": "0", "fw_patch": "0", "capabilities": "0",
                         "serial": "SERIAL-NUMBER-TOO-LONG", "limits_crc": "0", "depth_ceiling_um": "2000"],
         "serial", "at most 16 bytes"),
        ("teleport", [:], "message", "unknown message 'teleport'"),
    ])
    func makeNamesTheFieldAndTheRange(name: String, fields: [String: String], field: String, reason: String) {
        #expect {
            _ = try Message.make(name: name, fields: fields)
        } throws: { error in
            guard let error = error as? FieldValueError else { return false }
            return error.field == field && error.reason.contains(reason)
        }
    }

    @Test func enumAndFlagTextIsCanonical() {
        #expect(PenFlags([.armed, .motorOn]).description == "armed|motor_on")
        #expect(PenFlags(rawValue: 0).description == "0")
        #expect(PenFlags(rawValue: 0x8004).description == "armed|0x8000")
        #expect(FaultCode(rawValue: 250).description == "250")
        #expect(FaultCode.internal.description == "internal")
        #expect(MessageID(rawValue: 0x3F).description == "0x3F")
    }
}
