import Foundation
import StippleSim
import StippleWire
import Testing

@Suite(.serialized) struct ConformanceTests {
    @Test func theSimulatorPassesTheConformanceSuiteInProcess() throws {
        var suite = ConformanceSuite(port: SimulatedPenPort())
        try suite.run()
        #expect(suite.checks.count >= 35)
        for check in suite.checks where !check.passed { Issue.record("\(check)") }
    }

    @Test func theSimulatorPassesTheConformanceSuiteOverARealPty() throws {
        let server = try PtyPenServer(seed: 3)
        let thread = Thread { try? server.serve(seconds: 30) }
        thread.start()
        defer { server.stop() }
        let port = try SerialPort(path: server.devicePath)
        var suite = ConformanceSuite(port: port, replyTimeoutMs: 500)
        try suite.run()
        for check in suite.checks where !check.passed { Issue.record("\(check)") }
        #expect(suite.checks.count >= 35)
    }

    @Test func aPtyPenRunsTheNeedleInRealTime() throws {
        let server = try PtyPenServer(seed: 4)
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("stipple-pen-\(getpid())").path
        try server.placeSymlink(at: link)
        let thread = Thread { try? server.serve(seconds: 30) }
        thread.start()
        defer { server.stop() }
        let port = try SerialPort(path: link)
        var rig = ScriptedHost()
        var limits = ScriptedHost.defaultLimits
        limits.deadmanMs = 1000  // real time on a busy test machine
        rig.connect(limits: limits)
        rig.arm()
        let start = Date()
        var now: SimTime { SimTime(Date().timeIntervalSince(start) * 1_000_000) }
        while Date().timeIntervalSince(start) < 0.6 {
            try port.write(rig.poll(at: now))
            rig.receive(try port.read(timeoutMs: 5), at: now)
        }
        #expect(rig.lastAck(for: .motorRun)?.status == .ok)
        #expect(server.perform("pedal on") == "pedal pressed")
        while Date().timeIntervalSince(start) < 1.2 {
            try port.write(rig.poll(at: now))
            rig.receive(try port.read(timeoutMs: 5), at: now)
        }
        let telemetry = try #require(rig.lastTelemetry)
        #expect(telemetry.flags.contains(.motorOn) && telemetry.strokeCount > 30)
        #expect(server.perform("status").hasPrefix("state running"))
    }
}
