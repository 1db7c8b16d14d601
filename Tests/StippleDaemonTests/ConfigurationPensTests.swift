import Foundation
import StippleDaemon
import StippleDiscovery
import StippleGPIO
import Testing

/// The `discovery` and `gpio` sections: the examples in docs/configuration.md are valid and read
/// as documented, and every problem is named with its field, value and allowed range.
@Suite struct ConfigurationPensTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func configuration(_ object: [String: Any]) -> (DaemonConfiguration, [DaemonConfiguration.Problem]) {
        var configuration = DaemonConfiguration(environment: ["HOME": "/tmp"], uid: 1000)
        var problems: [DaemonConfiguration.Problem] = []
        configuration.apply(file: object, source: "test", problems: &problems)
        return (configuration, problems + configuration.validate())
    }

    /// The JSON examples of docs/configuration.md.
    static func documentedExamples() throws -> [[String: Any]] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        return try text.components(separatedBy: "```json\n").dropFirst().map { block in
            let json = block.components(separatedBy: "\n```").first ?? ""
            return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        }
    }

    @Test func theDocumentedExamplesAreValidAndReadAsDocumented() throws {
        let examples = try Self.documentedExamples()
        #expect(examples.count >= 3)
        for example in examples {
            let (_, problems) = Self.configuration(example)
            #expect(problems.isEmpty, "\(problems)")
        }
        let gpioExample = try #require(examples.first { $0["gpio"] != nil })
        let gpio = try #require(Self.configuration(gpioExample).0.gpio)
        #expect(gpio.serial == "GP-0001" && gpio.chip == "gpiochip0")
        #expect(gpio.lines[.motorEnable]?.address == .offset(17))
        #expect(gpio.lines[.pedal]?.activeLow == true && gpio.lines[.pedal]?.bias == .pullUp && gpio.lines[.pedal]?.debounce == .milliseconds(10))
        #expect(gpio.lines[.estop]?.debounce == GPIOPenSettings.defaultDebounce(.estop))
        #expect(gpio.lines[.tachometer]?.address == .name("PEN_TACH"))
        #expect(gpio.chip(of: .overDepth) == "gpiochip1")
        let discoveryExample = try #require(examples.first { $0["discovery"] != nil })
        let (configuration, _) = Self.configuration(discoveryExample)
        #expect(configuration.pen == .auto && configuration.discovery.serial == "SP-000123")
        #expect(configuration.discovery.table.entries.map(\.usbID) == ["1209:0001", "0403:6001"])
    }

    @Test func penSpecsParse() {
        for text in ["auto", "udev", "serial:auto"] { #expect(DaemonConfiguration.PenSpec.parse(text) == .auto) }
        #expect(DaemonConfiguration.PenSpec.parse("gpio") == .gpio)
        #expect(DaemonConfiguration.PenSpec.parse("serial:/dev/ttyACM0") == .serial(path: "/dev/ttyACM0"))
    }

    @Test("a GPIO pen needs its lines, and a real pen never runs on an accelerated clock")
    func gpioNeedsItsLines() {
        let (_, problems) = Self.configuration(["pen": "gpio", "clock": "accelerated=10"])
        #expect(problems.map(\.description) == [
            "clock: accelerated=10 with pen gpio is outside the allowed range real: a real pen never runs on simulated time (accelerated only with --pen sim)",
            "gpio: missing is outside the allowed range the GPIO pen's lines (docs/configuration.md): required with pen gpio",
        ])
    }

    @Test("realtime_priority: 0...99, an integer; 10 unless set")
    func realtimePriority() {
        #expect(Self.configuration([:]).0.realtimePriority == 10)
        let (off, none) = Self.configuration(["realtime_priority": 0])
        #expect(off.realtimePriority == 0 && none.isEmpty)
        for bad: Any in [100, -1, 2.5, "high", true] {
            let problems = Self.configuration(["realtime_priority": bad]).1
            #expect(problems.count == 1 && problems.first?.field == "realtime_priority", "\(bad)")
            #expect(problems.first?.allowed.contains("0...99") == true)
        }
    }
}

/// The supervisor's thread asks for SCHED_FIFO only when told to, and says what it got.
@Suite struct SupervisorLoopSchedulingTests {
    @Test("priority 0 leaves the loop at normal scheduling; a priority is applied or its refusal reported, never fatal")
    func scheduling() async {
        let normal = SupervisorLoop(name: "test-normal")
        defer { normal.stop() }
        #expect(normal.scheduling == .normal)
        let asked = SupervisorLoop(name: "test-realtime", realtimePriority: 5)
        defer { asked.stop() }
        switch asked.scheduling {
        case .realtime(let priority): #expect(priority == 5)
        case .refused(let priority, let errno): #expect(priority == 5 && errno != 0)
        case .normal: Issue.record("a priority was asked for: the outcome must say so")
        }
        // Real-time, the loop alone: a thread it starts (libdispatch starts its workers on the
        // thread that queues work) runs at normal priority.
        if case .realtime = asked.scheduling {
            let policies = await withCheckedContinuation { (continuation: CheckedContinuation<(Int32, Int32), Never>) in
                asked.tick(every: .milliseconds(1)) {
                    asked.untick()
                    let own = sched_getscheduler(0) & ~0x4000_0000  // without SCHED_RESET_ON_FORK
                    let started = Thread { continuation.resume(returning: (own, sched_getscheduler(0))) }
                    started.start()
                }
            }
            #expect(policies.0 == SCHED_FIFO, "the loop's own thread")
            #expect(policies.1 == SCHED_OTHER, "a thread the loop started")
        }
        // Either way the loop runs its jobs.
        let ran = await withCheckedContinuation { continuation in
            asked.tick(every: .milliseconds(1)) { continuation.resume(returning: true); asked.untick() }
        }
        #expect(ran)
    }
}
