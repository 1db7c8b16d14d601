// The pen-protocol codecs on a realistic session stream: Swift against C on the same bytes in the
// same run, heap allocations, and the Swift/C ratio that the decoder is held to. Instruction
// counts come from `codec-instructions` under callgrind (README.md), as perf counters are not
// available on the CI machines.
import Benchmark
import CodecWorkload
import Foundation
import StippleWire

let benchmarks: @Sendable () -> Void = {
    // `make test` (bench-check) measures only what repeats exactly on a busy machine: allocations.
    let countsOnly = ProcessInfo.processInfo.environment["STIPPLE_BENCHMARK_COUNTS_ONLY"] != nil
    let stream = SessionStream()
    let frameCount = stream.frames.count

    // One iteration works through the whole stream, so throughput counts streams per second
    // (x 300,000 for frames). Tolerances for `make bench`, from the spread of ten runs on the CI
    // machine kind while other builds ran (README.md): throughput may drift within the band,
    // an allocation may not appear at all.
    let metrics: [BenchmarkMetric] = countsOnly ? [.mallocCountTotal] : [.throughput, .mallocCountTotal]
    let tolerances: [BenchmarkMetric: BenchmarkThresholds] = [
        .throughput: .init(relative: [.p90: 40]),
        .mallocCountTotal: .init(absolute: [.p90: 0]),
    ]
    let configuration = Benchmark.Configuration(
        metrics: metrics,
        maxDuration: .seconds(2),
        maxIterations: countsOnly ? 5 : 100,
        thresholds: tolerances.filter { metrics.contains($0.key) }
    )

    Benchmark("Decode.Swift", configuration: configuration) { benchmark in
        let frames = stream.bytes.withUnsafeBytes { Codecs.decodeWithSwift($0) }
        guard frames == frameCount else { return benchmark.error("Swift decoded \(frames) of \(frameCount) frames") }
    }

    Benchmark("Decode.C", configuration: configuration) { benchmark in
        let frames = stream.bytes.withUnsafeBytes { Codecs.decodeWithC($0) }
        guard frames == frameCount else { return benchmark.error("C decoded \(frames) of \(frameCount) frames") }
    }

    Benchmark("Encode.Swift", configuration: configuration) { benchmark in
        let bytes = withUnsafeTemporaryAllocation(byteCount: FrameLimits.maxWireBytes, alignment: 8) { buffer in
            Codecs.encodeWithSwift(stream.frames, into: buffer)
        }
        guard bytes == stream.bytes.count else { return benchmark.error("encoded \(bytes) of \(stream.bytes.count) bytes") }
    }

    // Both decoders on the same bytes in each iteration, in alternating order, so that whatever
    // else the machine does falls on both: their ratio is steadier than either time. The band is
    // 100 points around the recorded ratio (about 2.0): the Swift decoder losing its lead over
    // the C decoder fails `make bench`.
    let ratio = BenchmarkMetric.custom("Swift/C decode throughput (%)", polarity: .prefersLarger, useScalingFactor: false)
    let clock = ContinuousClock()
    Benchmark(
        "Decode.SwiftOverC",
        configuration: .init(
            metrics: [ratio], maxDuration: .seconds(3), maxIterations: 100, skip: countsOnly,
            thresholds: [ratio: .init(absolute: [.p90: 100])]
        )
    ) { benchmark in
        stream.bytes.withUnsafeBytes { bytes in
            var swiftTime = Duration.zero
            var cTime = Duration.zero
            if benchmark.currentIteration.isMultiple(of: 2) {
                swiftTime = clock.measure { blackHole(Codecs.decodeWithSwift(bytes)) }
                cTime = clock.measure { blackHole(Codecs.decodeWithC(bytes)) }
            } else {
                cTime = clock.measure { blackHole(Codecs.decodeWithC(bytes)) }
                swiftTime = clock.measure { blackHole(Codecs.decodeWithSwift(bytes)) }
            }
            benchmark.measurement(ratio, Int((100 * (cTime / swiftTime)).rounded()))
        }
    }
}
