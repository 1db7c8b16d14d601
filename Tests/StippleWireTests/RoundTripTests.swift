import PropertyBased
import StippleWire
import Testing

/// Property-based round trips: for every message type, random frames with every field drawn
/// from its protocol range encode, decode back to themselves, and the C codec reads the same
/// bytes to the same text and re-encodes them byte for byte.
@Suite struct RoundTripTests {
    @Test(arguments: MessageGenerators.names)
    func randomFramesRoundTrip(message name: String) async {
        await MessageGenerators.forEachRandomFrame(of: name, count: 150) { frame in
            let wire = FrameEncoder.encode(frame)
            #expect(wire.count <= FrameLimits.maxWireBytes)
            #expect(wire.first == 0 && wire.last == 0)
            #expect(!wire.dropFirst().dropLast().contains(0), "COBS leaves no zero inside a frame")
            let outputs = swiftDecode(wire)
            #expect(outputs == [.frame(frame)], "\(frame)")
            let c = cDecode(wire)
            #expect(c.count == 1 && c[0].text == frame.message.description && c[0].reencoded == wire, "C: \(c) for \(frame)")
        }
    }

    /// `fieldTexts` is the inverse of `make(name:fields:)`, so a tool can override some fields of
    /// a message without a hand-written copy of the others' names.
    @Test(arguments: MessageGenerators.names)
    func fieldTextsBuildTheSameMessage(message name: String) async {
        await MessageGenerators.forEachRandomFrame(of: name, count: 150) { frame in
            let rebuilt = Result { () throws(FieldValueError) in try Message.make(name: name, fields: frame.message.fieldTexts) }
            #expect((try? rebuilt.get()) == frame.message, "\(frame.message): \(rebuilt)")
            let schema = MessageSchema.messages.first { $0.name == name }?.fields.map(\.name)
            #expect(frame.message.fieldTexts.keys.sorted() == schema?.sorted())
        }
    }

    @Test func everyMessageTypeHasAGenerator() {
        #expect(MessageGenerators.names == MessageID.allKnown.compactMap(\.name))
    }

    @Test func encodingIntoAFixedBufferMatchesTheArrayForm() {
        let frame = Frame(seq: 9, message: .telemetry(.init(
            penTimeUs: 1, strokeCount: 2, peakProtrusionUm: 800, strokeRateDhz: 1200,
            motorCurrentMa: 300, temperatureDc: 250, flags: [.armed, .motorOn])))
        var buffer = [UInt8](repeating: 0xEE, count: FrameLimits.maxWireBytes)
        let count = buffer.withUnsafeMutableBytes { FrameEncoder.encode(frame, into: $0) }
        #expect(Array(buffer[0..<count]) == FrameEncoder.encode(frame))
    }
}
