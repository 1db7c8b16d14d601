// codec-bench: throughput and heap allocations of the pen-protocol codecs on a realistic
// telemetry stream, Swift against C in the same process and run.
//
//   codec-bench            full run (about 10 s in release)
//   codec-bench --quick    small run for `make test`: fails if decoding allocates
//
// Build it in release mode (`make bench`); debug figures mean nothing.

import Foundation
import MallocCounter
import StippleWire
import StippleWireC

let quick = CommandLine.arguments.contains("--quick")
let frameCount = quick ? 20_000 : 300_000
let repetitions = quick ? 2 : 7

/// A stream like a running session produces: a telemetry frame per stroke at 150 Hz, a
/// status every second, and acks for the host's 10 Hz heartbeats.
func realisticStream(frames: Int) -> [Frame] {
    var generator = SplitMix(seed: 42)
    var frames: [Frame] = []
    frames.reserveCapacity(frameCount)
    var strokes: UInt32 = 0
    var time: UInt32 = 0
    var seq: UInt8 = 0
    while frames.count < frameCount {
        strokes &+= 1
        time &+= 6_667
        seq &+= 1
        let depth = UInt16(780 + generator.next() % 40)
        frames.append(Frame(seq: seq, message: .telemetry(.init(
            penTimeUs: time, strokeCount: strokes, peakProtrusionUm: depth,
            strokeRateDhz: UInt16(1190 + generator.next() % 20), motorCurrentMa: UInt16(400 + generator.next() % 50),
            temperatureDc: Int16(300 + generator.next() % 30), flags: [.handshakeDone, .limitsSet, .armed, .runEnabled, .motorOn, .pedalPressed, .cartridgePresent]))))
        if strokes % 15 == 0 {
            seq &+= 1
            frames.append(Frame(seq: seq, message: .ack(.init(ackedSeq: UInt8(truncatingIfNeeded: strokes / 15), ackedID: 2, status: .ok, detail: 0))))
        }
        if strokes % 150 == 0 {
            seq &+= 1
            frames.append(Frame(seq: seq, message: .status(.init(
                state: .running, flags: [.handshakeDone, .limitsSet, .armed, .runEnabled, .motorOn], fault: FaultCode.none,
                depthSetpointUm: 800, rateSetpointDhz: 1200, penTimeUs: time))))
        }
    }
    return frames
}

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

/// Best of `repetitions` runs, in seconds: the least disturbed by other work on the machine.
func best(_ body: () -> Void) -> Double {
    var fastest = Double.infinity
    let clock = ContinuousClock()
    for _ in 0..<repetitions {
        let elapsed = clock.measure(body)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        fastest = min(fastest, seconds)
    }
    return fastest
}

@inline(never)
func sink<T>(_ value: T) { withExtendedLifetime(value) {} }

let frames = realisticStream(frames: frameCount)
var stream: [UInt8] = []
stream.reserveCapacity(frames.count * FrameLimits.maxWireBytes)
for frame in frames { FrameEncoder.encode(frame, appendingTo: &stream) }
let megabytes = Double(stream.count) / 1_000_000

// Swift encode, into one reused buffer (the allocation-free path the daemon uses).
var encodeBuffer = [UInt8](repeating: 0, count: FrameLimits.maxWireBytes)
var encodedBytes = 0
let swiftEncode = best {
    encodedBytes = 0
    encodeBuffer.withUnsafeMutableBytes { out in
        for frame in frames { encodedBytes += FrameEncoder.encode(frame, into: out) }
    }
}
precondition(encodedBytes == stream.count)

// Swift decode.
var decodedFrames = 0
let swiftDecode = best {
    var decoder = FrameDecoder()
    var count = 0
    stream.withUnsafeBytes { bytes in
        decoder.push(contentsOf: bytes) { output in
            if case .frame = output { count += 1 }
        }
    }
    decodedFrames = count
}
precondition(decodedFrames == frames.count, "Swift decoded \(decodedFrames) of \(frames.count)")

// C decode of the same bytes.
var cFrames = 0
let cDecode = best {
    var decoder = stw_decoder()
    stw_decoder_init(&decoder)
    var frame = stw_frame()
    var count = 0
    stream.withUnsafeBufferPointer { bytes in
        for byte in bytes where stw_decoder_push(&decoder, byte, &frame) == STW_FRAME { count += 1 }
    }
    cFrames = count
    sink(frame)
}
precondition(cFrames == frames.count, "C decoded \(cFrames) of \(frames.count)")

// The counter must see allocations at all, or a zero below would prove nothing.
let probeBefore = malloc_counter_allocations()
sink([Int](repeating: 1, count: 1_000))
precondition(malloc_counter_allocations() > probeBefore, "malloc counter is not interposed")

// Heap allocations while decoding, after the decoder exists (its one buffer is made at init).
var decoder = FrameDecoder()
var checksum = 0
let before = malloc_counter_allocations()
stream.withUnsafeBytes { bytes in
    decoder.push(contentsOf: bytes) { output in
        if case .frame(let frame) = output { checksum &+= Int(frame.seq) }
    }
}
let allocations = malloc_counter_allocations() - before
sink(checksum)
let perFrame = Double(allocations) / Double(frames.count)

func row(_ name: String, _ seconds: Double) -> String {
    let mbps = megabytes / seconds
    let fps = Double(frames.count) / seconds
    return "\(name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(String(format: "%9.1f MB/s  %12.0f frames/s", mbps, fps))"
}

print("codec-bench: \(frames.count) frames, \(stream.count) bytes (\(String(format: "%.1f", Double(stream.count) / Double(frames.count))) bytes/frame), best of \(repetitions)")
print(row("Swift encode", swiftEncode))
print(row("Swift decode", swiftDecode))
print(row("C decode", cDecode))
print(String(format: "Swift/C decode throughput ratio: %.2f", cDecode / swiftDecode))
print(String(format: "heap allocations while decoding: %llu (%.4f per frame)", allocations, perFrame))
if allocations != 0 {
    print("FAIL: decoding allocated on the heap")
    exit(1)
}
