import Foundation
import StippleConformance
import StippleSim
import StippleTransport
import StippleWire
import Testing

@Suite(.serialized) struct ConformanceTests {
    @Test func theSimulatorPassesTheConformanceSuiteInProcess() throws {
        var suite = ConformanceSuite(simulated: VirtualTimePenTransport())
        try suite.run()
        #expect(suite.checks.count >= 55)
        for check in suite.checks where !check.passed { Issue.record("\(check)") }
    }

    @Test func theSimulatorPassesTheConformanceSuiteOverARealPty() throws {
        let server = try PtyPenServer(seed: 3)
        let thread = Thread { try? server.serve(for: .seconds(30)) }
        thread.start()
        defer { server.stop() }
        let port = try SerialPort(path: server.devicePath)
        var suite = ConformanceSuite(transport: port, replyTimeout: .milliseconds(500))
        try suite.run()
        for check in suite.checks where !check.passed { Issue.record("\(check)") }
        #expect(suite.checks.count >= 55)
    }

    @Test func aPtyPenRunsTheNeedleInRealTime() throws {
        let server = try PtyPenServer(seed: 4)
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("stipple-pen-\(getpid())").path
        try server.placeSymlink(at: link)
        let thread = Thread { try? server.serve(for: .seconds(30)) }
        thread.start()
        defer { server.stop() }
        let port = try SerialPort(path: link)
        var rig = ScriptedHost()
        var limits = ScriptedHost.defaultLimits
        limits.deadmanMs = 1000  // real time on a busy test machine
        rig.connect(limits: limits)
        rig.arm()
        let start = Date()
        var now: MonotonicInstant { MonotonicClock.now() }
        while Date().timeIntervalSince(start) < 0.6 {
            try port.write(rig.poll(at: now))
            rig.receive(try port.read(timeout: .milliseconds(5)), at: now)
        }
        #expect(rig.lastAck(for: .motorRun)?.status == .ok)
        #expect(server.perform("pedal on") == "pedal pressed")
        while Date().timeIntervalSince(start) < 1.2 {
            try port.write(rig.poll(at: now))
            rig.receive(try port.read(timeout: .milliseconds(5)), at: now)
        }
        let telemetry = try #require(rig.lastTelemetry)
        #expect(telemetry.flags.contains(.motorOn) && telemetry.strokeCount > 30)
        #expect(server.perform("status").hasPrefix("state running"))
    }
}

@Suite struct ConformanceRuleTests {
    @Test("H8: a pen that sends an empty serial fails the conformance suite")
    func h8APenWithAnEmptySerialFailsConformance() throws {
        var config = PenConfig()
        config.serial = ""
        var suite = ConformanceSuite(simulated: VirtualTimePenTransport(config: config))
        try suite.run()
        let serial = try #require(suite.checks.first { $0.name == "HELLO_REPLY carries a non-empty serial" })
        #expect(!serial.passed && serial.detail.contains("empty serial"), "\(serial)")
        #expect(suite.rejections.contains { $0.messageID == .helloReply && $0.field == "serial" })
    }

    @Test func theSuiteChecksTheClarifiedRules() throws {
        var suite = ConformanceSuite(simulated: VirtualTimePenTransport())
        try suite.run()
        let names = suite.checks.map(\.name)
        for expected in [
            "a repeated ESTOP sends no second FAULT",
            "ARM while armed with another checksum is refused (limits_mismatch) and disarms",
            "ARM while armed with the same checksum is ok and changes nothing",
            "MOTOR_RUN while e-stop is latched is refused (estop_latched)",
            "a HELLO with another major disarms an armed pen and puts it back in boot",
            "in boot the pen accepts exactly the boot column; the rest is not_ready with no data reply",
            "HELLO_REPLY carries a non-empty serial",
            "SET_LIMITS breaking rate_max_dhz < rate_runaway_dhz is refused bad_field, detail 4, with no LIMITS",
        ] {
            #expect(names.contains(expected), "missing check: \(expected)")
        }
        for check in suite.checks where !check.passed { Issue.record("\(check)") }
    }
}
