import StippleSim
import StippleWire
import Testing

@Test func smoke() {
    var rig = SimulationRig(seed: 3)
    rig.host.connect()
    rig.run(forMs: 100)
    rig.host.arm()
    rig.run(forMs: 100)
    print(rig.host.acks.map { "\($0.command) \($0.status)" })
    rig.setPedal(true)
    rig.run(forMs: 2000)
    print("strokes", rig.pen.strokeCount, "rate", rig.pen.rateHz, "state", rig.pen.penState, "telemetry", rig.host.telemetryFrames, "faults", rig.host.penFaults.map { $0.fault.code })
    print(rig.host.lastTelemetry.map { "\(Message.telemetry($0))" } ?? "")
    rig.host.heartbeatsEnabled = false
    let t0 = rig.now
    var offAt: SimTime?
    rig.run(forMs: 1000) { rig in if offAt == nil && !rig.pen.motorDriven { offAt = rig.now } }
    print("motor off after", (offAt ?? 0) - t0, "us; faults", rig.host.penFaults.map { $0.fault.code })
}
