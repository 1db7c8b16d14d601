import StippleSim
import StippleWire
import Testing

/// A long session at 150 Hz with full telemetry must run without a fault.
///
/// Four simulated hours take a few seconds optimised and ten times as long unoptimised, so a
/// debug build (`swift test`, and `make test`) simulates the first quarter of an hour here, with
/// the same checks; an optimised build (`swift test -c release`) simulates the four hours. `make
/// test` simulates the four hours exactly once, optimised: the benchmark package's
/// `SimBenchmarks` runs them and fails unless the pen worked through them (Benchmarks/README.md).
@Suite struct LongSessionTests {
    #if DEBUG
    static let session = Duration.seconds(15 * 60)
    #else
    static let session = Duration.seconds(4 * 3600)
    #endif

    @Test func aLongSessionAt150HzWithFullTelemetryRunsWithoutAFault() {
        var rig = SimulationRig(seed: 99, tick: .milliseconds(5))
        rig.host.connect(depthUm: 800, rateDhz: 1500)
        rig.run(for: .milliseconds(200))
        rig.host.arm()
        rig.run(for: .milliseconds(200))
        rig.setPedal(true)
        rig.run(for: Self.session)
        #expect(rig.host.penFaults.map(\.fault.code) == [.reset], "no fault in \(Self.session)")
        #expect(abs(Int(rig.pen.strokeCount) - Int(Self.session / .seconds(1)) * 150) < 150)
        #expect(rig.host.telemetryFrames >= Int(rig.pen.strokeCount))
        #expect(rig.pen.penState == .running)
        // Heating at 150 Hz settles below the over-temperature limit.
        #expect(rig.pen.temperature < Double(PenConfig().overTemperatureDc))
    }
}
