import PropertyBased
import StippleWire
import Testing

/// The decoder must recover from whatever a serial line does to a byte stream, and never
/// accept a damaged frame.
@Suite struct ResyncTests {
    /// A realistic stretch of link traffic: telemetry, acks, status, a log line.
    static let frames: [Frame] = [
        Frame(seq: 1, message: .telemetry(.init(penTimeUs: 1_000, strokeCount: 1, peakProtrusionUm: 812, strokeRateDhz: 1198,
                                                motorCurrentMa: 420, temperatureDc: 312, flags: [.armed, .motorOn, .pedalPressed]))),
        Frame(seq: 2, message: .ack(.init(ackedSeq: 7, ackedID: 6, status: .ok, detail: 0))),
        Frame(seq: 3, message: .status(.init(state: .running, flags: [.armed, .runEnabled], fault: FaultCode.none,
                                             depthSetpointUm: 800, rateSetpointDhz: 1200, penTimeUs: 0))),
        Frame(seq: 4, message: .log(.init(level: .info, text: "stroke sensor calibrated"))),
        Frame(seq: 5, message: .telemetry(.init(penTimeUs: 0, strokeCount: 0, peakProtrusionUm: 0, strokeRateDhz: 0,
                                                motorCurrentMa: 0, temperatureDc: 0, flags: []))),
    ]

    static var stream: [UInt8] { frames.flatMap { FrameEncoder.encode($0) } }

    @Test func framesSplitAtEveryByteBoundaryDecodeTheSame() {
        let bytes = Self.stream
        let whole = swiftDecode(bytes)
        #expect(whole == Self.frames.map { .frame($0) })
        for split in 0...bytes.count {
            var decoder = FrameDecoder()
            var outputs = decoder.push(contentsOf: bytes[0..<split])
            outputs += decoder.push(contentsOf: bytes[split...])
            #expect(outputs == whole, "split at \(split)")
        }
    }

    @Test func randomChunkingDecodesTheSame() async {
        let bytes = Self.stream
        let whole = swiftDecode(bytes)
        await propertyCheck(count: 300, input: Gen.int(in: 1...17).array(of: 1...40)) { sizes in
            var decoder = FrameDecoder()
            var outputs: [FrameDecoder.Output] = []
            var start = 0
            var index = 0
            while start < bytes.count {
                let end = min(bytes.count, start + sizes[index % sizes.count])
                bytes[start..<end].withUnsafeBytes { chunk in decoder.push(contentsOf: chunk) { outputs.append($0) } }
                start = end
                index += 1
            }
            #expect(outputs == whole)
        }
    }

    /// Every kind of output: frames, and a rejection for each reason.
    static var everyOutcome: [UInt8] {
        stream
            + [0x05, 0x41, 0x42, 0x00]  // truncated: a block cut off
            + FrameEncoder.encode(id: 0x7F, seq: 9, payload: [1, 2])  // unknown_id
            + FrameEncoder.encode(id: MessageID.telemetry.rawValue, seq: 10, payload: [1, 2, 3])  // bad_length
            + FrameEncoder.encode(id: MessageID.setSetpoints.rawValue, seq: 11, payload: [0xF0, 0x0A, 0xB0, 0x04])  // bad_field
            + [UInt8](repeating: 0x41, count: 100) + [0]  // too_long
    }

    /// The chunk path keeps the decoder's state in locals, the byte path in the decoder: on any
    /// bytes at all they must give the same outputs and the same statistics.
    @Test func chunksAndSingleBytesAgreeOnAnyInput() async {
        let known = Self.everyOutcome
        await propertyCheck(count: 300, input: Gen.uint8().array(of: 0...120), Gen.int(in: 1...70), Gen.int(in: 0...400)) { garbage, chunkSize, flipAt in
            var bytes = garbage + known + garbage.reversed() + known
            bytes[flipAt % bytes.count] ^= 0x10
            var single = FrameDecoder()
            let expected = single.push(contentsOf: bytes)
            var chunked = FrameDecoder()
            var outputs: [FrameDecoder.Output] = []
            for start in stride(from: 0, to: bytes.count, by: chunkSize) {
                bytes[start..<min(bytes.count, start + chunkSize)].withUnsafeBytes { chunk in
                    chunked.push(contentsOf: chunk) { outputs.append($0) }
                }
            }
            #expect(outputs == expected)
            #expect(chunked.statistics == single.statistics)
        }
        var decoder = FrameDecoder()
        _ = decoder.push(contentsOf: known)
        let statistics = decoder.statistics
        #expect(statistics.frames == Self.frames.count)
        #expect([statistics.truncated, statistics.unknownID, statistics.badLength, statistics.badField, statistics.tooLong] == [1, 1, 1, 1, 1])
    }

    @Test func randomGarbageIsNeverAFrameAndTheNextFrameDecodes() async {
        let probe = Frame(seq: 77, message: .heartbeat(.init()))
        await propertyCheck(count: 500, input: Gen.uint8().array(of: 0...300)) { garbage in
            let outputs = swiftDecode(garbage + FrameEncoder.encode(probe))
            #expect(outputs.last == .frame(probe))
            // Random bytes could in principle form a frame with a valid CRC-32C (2^-32); the
            // decoder never crashes and never loses the frame that follows.
            #expect(outputs.dropLast().allSatisfy { $0.rejection != nil || $0.frame != nil })
        }
    }

    @Test func aDroppedByteLosesOnlyItsOwnFrame() {
        let frames = Self.frames
        for (index, frame) in frames.enumerated() {
            let wire = FrameEncoder.encode(frame)
            // Positions 1..<count-1 are inside the COBS data; the delimiters are redundant by design.
            for dropped in 1..<(wire.count - 1) {
                var damaged = wire
                damaged.remove(at: dropped)
                var stream: [UInt8] = []
                for (other, good) in frames.enumerated() { stream += other == index ? damaged : FrameEncoder.encode(good) }
                let decoded = swiftDecode(stream).compactMap(\.frame)
                #expect(decoded == frames.enumerated().filter { $0.offset != index }.map(\.element),
                        "dropping byte \(dropped) of frame \(index)")
            }
            for delimiter in [0, wire.count - 1] {
                var damaged = wire
                damaged.remove(at: delimiter)
                var stream: [UInt8] = []
                for (other, good) in frames.enumerated() { stream += other == index ? damaged : FrameEncoder.encode(good) }
                // A lost trailing delimiter is made good by the next frame's leading one.
                let trailer = Frame(seq: 99, message: .heartbeat(.init()))
                stream += FrameEncoder.encode(trailer)
                #expect(swiftDecode(stream).compactMap(\.frame) == frames + [trailer],
                        "losing delimiter \(delimiter) of frame \(index) costs nothing")
            }
        }
    }

    @Test func noSingleBitFlipIsEverAcceptedAndTheNextFrameSurvives() throws {
        var wires = Self.frames.map { FrameEncoder.encode($0) }
        wires += try Repository.vectors("valid.json").map { [UInt8](hex: $0["wire"] as! String) }
        let follower = Frame(seq: 200, message: .heartbeat(.init()))
        let followerWire = FrameEncoder.encode(follower)
        var flips = 0
        for wire in wires {
            for byte in wire.indices {
                for bit in 0..<8 {
                    var damaged = wire
                    damaged[byte] ^= 1 << bit
                    let outputs = swiftDecode(damaged + followerWire)
                    let frames = outputs.compactMap(\.frame)
                    #expect(frames == [follower], "flip bit \(bit) of byte \(byte) in \(wire.hex): \(outputs)")
                    flips += 1
                }
            }
        }
        #expect(flips > 5_000)
    }

    @Test func tooLongInputIsDiscardedUpToTheNextDelimiter() {
        let flood = [UInt8](repeating: 0x41, count: 10_000)
        let probe = Frame(seq: 1, message: .heartbeat(.init()))
        var decoder = FrameDecoder()
        let outputs = decoder.push(contentsOf: flood + FrameEncoder.encode(probe))
        #expect(outputs == [.rejected(FrameRejection(reason: .tooLong)), .frame(probe)])
        #expect(decoder.statistics.tooLong == 1 && decoder.statistics.frames == 1)
        #expect(decoder.statistics.bytes == flood.count + FrameEncoder.encode(probe).count)
    }

    @Test func resetDropsAPartialFrame() {
        let wire = FrameEncoder.encode(Self.frames[0])
        var decoder = FrameDecoder()
        _ = decoder.push(contentsOf: wire.prefix(10))
        decoder.reset()
        // The tail alone is never taken for a frame: the head it belonged to was forgotten.
        #expect(decoder.push(contentsOf: Array(wire.dropFirst(10))).allSatisfy { $0.frame == nil })
        decoder.reset()
        #expect(decoder.push(contentsOf: wire) == [.frame(Self.frames[0])])
    }
}
