// The simulator on a four-hour session at 150 Hz with full telemetry (pen, link and scripted host
// in process, on the virtual clock): how much faster than real time it runs and its peak memory.
// This is the one place `make test` simulates the whole four hours, optimised: the run counts as
// a session only if the pen worked through it, and `failed session checks` must stay 0.
import Benchmark
import Foundation
import StippleSim
import StippleWire
import Synchronization

let benchmarks: @Sendable () -> Void = {
    // `make test` (bench-check) measures only what repeats exactly on a busy machine.
    let countsOnly = ProcessInfo.processInfo.environment["STIPPLE_BENCHMARK_COUNTS_ONLY"] != nil
    let speedUp = BenchmarkMetric.custom("simulated time / wall time", polarity: .prefersLarger, useScalingFactor: false)
    let failedChecks = BenchmarkMetric.custom("failed session checks", polarity: .prefersSmaller, useScalingFactor: false)
    let session = Duration.seconds(4 * 3600)
    let strokeRateHz = 150

    let metrics = countsOnly ? [failedChecks] : [speedUp, .peakMemoryResident, failedChecks]
    // Tolerances for `make bench`, from repeated runs on the CI machine kind (README.md).
    let tolerances: [BenchmarkMetric: BenchmarkThresholds] = [
        speedUp: .init(relative: [.p90: 50]),
        .peakMemoryResident: .init(relative: [.p90: 10]),
        failedChecks: .init(absolute: [.p90: 0]),
    ]

    let failureReport = Mutex<[String]>([])

    // One iteration: the four hours are the workload, and `make test` runs them once.
    Benchmark(
        "Session.FourHours",
        configuration: .init(
            metrics: metrics, warmupIterations: 0, maxDuration: .seconds(600), maxIterations: 1,
            thresholds: tolerances.filter { metrics.contains($0.key) },
            teardown: {
                for failure in failureReport.withLock({ $0 }) { print("Session.FourHours: FAIL: \(failure)") }
            }
        )
    ) { benchmark in
        var rig = SimulationRig(seed: 42, tick: .milliseconds(1))
        rig.host.connect(depthUm: 800, rateDhz: 1500)
        rig.run(for: .milliseconds(200))
        rig.host.arm()
        rig.run(for: .milliseconds(200))
        rig.setPedal(true)

        benchmark.startMeasurement()
        let wall = ContinuousClock().measure { rig.run(for: session) }
        benchmark.stopMeasurement()
        benchmark.measurement(speedUp, Int((session / wall).rounded()))

        let expectedStrokes = Int(session / .seconds(1)) * strokeRateHz
        var failures: [String] = []
        let faults = rig.host.penFaults.map(\.fault.code)
        if faults != [.reset] { failures.append("the pen latched \(faults.dropFirst()) (only the boot reset is expected)") }
        if abs(Int(rig.pen.strokeCount) - expectedStrokes) >= strokeRateHz {
            failures.append("\(rig.pen.strokeCount) strokes, expected \(expectedStrokes) at \(strokeRateHz) Hz")
        }
        if rig.host.telemetryFrames < Int(rig.pen.strokeCount) {
            failures.append("\(rig.host.telemetryFrames) telemetry frames for \(rig.pen.strokeCount) strokes")
        }
        if rig.pen.penState != .running { failures.append("the pen ended \(rig.pen.penState), not running") }
        // Four hours of heating at 150 Hz must settle below the pen's over-temperature limit.
        if rig.pen.temperature >= Double(PenConfig().overTemperatureDc) {
            failures.append("temperature \(rig.pen.temperature) (0.1 °C) reached the over-temperature limit")
        }
        // Counted as a metric rather than reported with `benchmark.error`, which drops the run's
        // results and so would let a threshold check pass; said in the teardown, because the
        // benchmark's own output is silenced while it runs.
        benchmark.measurement(failedChecks, failures.count)
        failureReport.withLock { $0 = failures }
    }
}
