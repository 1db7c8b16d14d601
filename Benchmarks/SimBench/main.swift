// sim-bench: how much faster than real time the in-process simulator runs a four-hour
// session at 150 Hz with full telemetry, and its peak memory.
//
//   sim-bench            the full four hours (release build: make bench)
//   sim-bench --minutes N  a shorter session
import Foundation
import StippleSim
import StippleWire

let arguments = CommandLine.arguments
let minutes = arguments.firstIndex(of: "--minutes").flatMap { Double(arguments[$0 + 1]) } ?? 240
let tickUs = arguments.firstIndex(of: "--tick-us").flatMap { Int64(arguments[$0 + 1]) } ?? 1_000

var rig = SimulationRig(seed: 42, tick: .microseconds(tickUs))
rig.host.connect(depthUm: 800, rateDhz: 1500)
rig.run(for: .milliseconds(200))
rig.host.arm()
rig.run(for: .milliseconds(200))
rig.setPedal(true)
let clock = ContinuousClock()
let simulated = Duration.seconds(minutes * 60)
let elapsed = clock.measure { rig.run(for: simulated) }
let wall = elapsed / .seconds(1)

var usage = rusage()
getrusage(RUSAGE_SELF.rawValue, &usage)
let peakMB = Double(usage.ru_maxrss) / 1024

print("sim-bench: \(Int(minutes)) simulated minutes at 150 Hz, host tick \(tickUs) µs")
print(String(format: "  strokes %u, telemetry frames %d, pen bytes %d, pen faults %d", rig.pen.strokeCount, rig.host.telemetryFrames, rig.penBytes, rig.host.penFaults.count - 1))
print(String(format: "  wall time %.2f s, simulated/wall %.0fx", wall, simulated / .seconds(1) / wall))
print(String(format: "  peak memory (max RSS) %.1f MB", peakMB))
if rig.host.penFaults.count > 1 {
    print("FAIL: the pen faulted: \(rig.host.penFaults.map { "\($0.fault.code)" })")
    exit(1)
}
