import StippleWire

/// The byte stream a pen sends during a session: a telemetry frame per stroke at 150 Hz, an
/// ACK for each of the host's 10 Hz heartbeats and a STATUS every second, encoded as on the wire.
/// Every codec figure (time, allocations, instructions) is taken on this stream.
public struct SessionStream: Sendable {
    /// Frames in a standard stream: a little over half an hour of a session.
    public static let standardFrameCount = 300_000

    public let frames: [Frame]
    public let bytes: [UInt8]

    public init(frameCount: Int = standardFrameCount) {
        var random = SplitMix(seed: 42)
        var frames: [Frame] = []
        frames.reserveCapacity(frameCount)
        var strokes: UInt32 = 0
        var penTimeUs: UInt32 = 0
        var seq: UInt8 = 0
        let running: PenFlags = [.handshakeDone, .limitsSet, .armed, .runEnabled, .motorOn]
        while frames.count < frameCount {
            strokes &+= 1
            penTimeUs &+= 6_667
            seq &+= 1
            frames.append(Frame(seq: seq, message: .telemetry(.init(
                penTimeUs: penTimeUs, strokeCount: strokes,
                peakProtrusionUm: UInt16(780 + random.next() % 40),
                strokeRateDhz: UInt16(1190 + random.next() % 20),
                motorCurrentMa: UInt16(400 + random.next() % 50),
                temperatureDc: Int16(300 + random.next() % 30),
                flags: running.union([.pedalPressed, .cartridgePresent])))))
            if strokes % 15 == 0, frames.count < frameCount {
                seq &+= 1
                frames.append(Frame(seq: seq, message: .ack(.init(
                    ackedSeq: UInt8(truncatingIfNeeded: strokes / 15), ackedID: MessageID.heartbeat.rawValue,
                    status: .ok, detail: 0))))
            }
            if strokes % 150 == 0, frames.count < frameCount {
                seq &+= 1
                frames.append(Frame(seq: seq, message: .status(.init(
                    state: .running, flags: running, fault: .none,
                    depthSetpointUm: 800, rateSetpointDhz: 1200, penTimeUs: penTimeUs))))
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(frames.count * FrameLimits.maxWireBytes)
        for frame in frames { FrameEncoder.encode(frame, appendingTo: &bytes) }
        self.frames = frames
        self.bytes = bytes
    }
}

/// A fixed-seed generator, so every run measures the same bytes.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
