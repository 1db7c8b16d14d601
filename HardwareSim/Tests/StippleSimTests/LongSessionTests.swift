import StippleSim
import StippleWire
import Testing

@Suite struct LongSessionTests {
    @Test func aFourHourSessionAt150HzWithFullTelemetrySimulatesInSeconds() {
        var rig = SimulationRig(seed: 99, tick: .milliseconds(5))
        rig.host.connect(depthUm: 800, rateDhz: 1500)
        rig.run(for: .milliseconds(200))
        rig.host.arm()
        rig.run(for: .milliseconds(200))
        rig.setPedal(true)
        rig.run(for: .seconds(4 * 3600))
        #expect(rig.host.penFaults.map(\.fault.code) == [.reset], "no fault in four hours")
        #expect(abs(Int(rig.pen.strokeCount) - 4 * 3600 * 150) < 150)
        #expect(rig.host.telemetryFrames >= Int(rig.pen.strokeCount))
        #expect(rig.pen.penState == .running)
        // Four hours of heating at 150 Hz settle well below the over-temperature limit.
        #expect(rig.pen.temperature < 600)
    }
}
