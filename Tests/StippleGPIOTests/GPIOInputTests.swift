import StippleGPIO
import StippleWire
import Testing

/// Debouncing, the tachometer, the line map and the libgpiod layer's error path.
@Suite struct GPIOInputTests {
    static func t(_ ms: Double) -> MonotonicInstant { MonotonicInstant(nanoseconds: Int64(ms * 1_000_000)) }

    @Test("the pedal's press must hold; its release counts at once")
    func pedalDebounce() {
        var pedal = InputDebouncer(line: .pedal, debounce: .milliseconds(10), initial: false)
        let r1 = pedal.edge(active: true, at: Self.t(0))
        #expect(r1 == nil)
        let r2 = pedal.edge(active: false, at: Self.t(2))
        #expect(r2 == nil, "a bounce: back to released")
        let r3 = pedal.edge(active: true, at: Self.t(3))
        #expect(r3 == nil)
        let r4 = pedal.settle(at: Self.t(12))
        #expect(r4 == nil, "9 ms: not yet")
        let r5 = pedal.settle(at: Self.t(13))
        #expect(r5 == GPIOEdge(line: .pedal, active: true, time: Self.t(13)))
        let r6 = pedal.edge(active: false, at: Self.t(20))
        #expect(r6 == GPIOEdge(line: .pedal, active: false, time: Self.t(20)), "release: at once")
    }

    @Test("the e-stop and the over-depth switch count at once when they trip; their release must hold")
    func stopInputsAreNeverDelayed() {
        for line in [GPIOPenLine.estop, .overDepth] {
            var input = InputDebouncer(line: line, debounce: .milliseconds(20), initial: false)
            let r7 = input.edge(active: true, at: Self.t(5))
            #expect(r7 == GPIOEdge(line: line, active: true, time: Self.t(5)))
            let r8 = input.edge(active: false, at: Self.t(6))
            #expect(r8 == nil)
            let r9 = input.edge(active: true, at: Self.t(7))
            #expect(r9 == nil, "bounced back to tripped: still tripped, no second edge")
            let r10 = input.edge(active: false, at: Self.t(8))
            #expect(r10 == nil)
            let r11 = input.settle(at: Self.t(27))
            #expect(r11 == nil)
            let r12 = input.settle(at: Self.t(28))
            #expect(r12 == GPIOEdge(line: line, active: false, time: Self.t(28)))
        }
    }

    @Test("the stroke rate comes from the edges' kernel timestamps, and a silent tachometer reads as falling")
    func tachometer() {
        var tach = Tachometer()
        #expect(tach.rateHz(at: Self.t(0)) == 0)
        for stroke in 0..<5 {
            let counted = tach.pulse(at: Self.t(Double(stroke) * 8))
            #expect(counted)
        }  // 125 Hz
        #expect(abs(tach.rateHz(at: Self.t(32)) - 125) < 0.01)
        #expect(abs(tach.rateHz(at: Self.t(36)) - 125) < 0.01, "within the interval: the last rate")
        #expect(abs(tach.rateHz(at: Self.t(82)) - 20) < 0.01, "50 ms without a stroke: at most 20 Hz")
        tach.restart()
        let r13 = tach.pulse(at: Self.t(100))
        #expect(r13 && tach.rateHz(at: Self.t(100)) == 0, "a new start needs two strokes")
        #expect(tach.strokes == 6)
    }

    @Test func tachometerBounceIsNotAStroke() {
        var tach = Tachometer(minimumSpacing: .milliseconds(1))
        let r14 = tach.pulse(at: Self.t(0))
        #expect(r14)
        let r15 = tach.pulse(at: Self.t(0.3))
        #expect(!r15)
        let r16 = tach.pulse(at: Self.t(8))
        #expect(r16)
        #expect(tach.strokes == 2 && abs(tach.rateHz(at: Self.t(8)) - 125) < 0.01)
    }

    static let lines: [GPIOPenLine: GPIOLineSpec] = [
        .motorEnable: .init(address: .offset(17)),
        .statusLED: .init(address: .name("PEN_LED")),
        .pedal: .init(address: .offset(22), activeLow: true, debounce: .milliseconds(10), bias: .pullUp),
        .estop: .init(address: .offset(23), activeLow: true, bias: .pullUp),
        .tachometer: .init(chip: "gpiochip1", address: .offset(4)),
        .overDepth: .init(address: .offset(25), bias: .pullDown),
    ]

    @Test("lines are requested motor first and inactive; inputs as edge events with their flags")
    func requestPlan() {
        let plan = GPIOLineRequest.plan(GPIOPenSettings(serial: "GP-0001", lines: Self.lines))
        #expect(plan.map(\.line) == [.motorEnable, .statusLED, .pedal, .estop, .tachometer, .overDepth])
        #expect(plan[0].kind == .output(initialActive: false) && plan[1].kind == .output(initialActive: false))
        #expect(plan[2].kind == .bothEdges && plan[4].kind == .risingEdge)
        #expect(plan[4].chip == "gpiochip1" && plan[0].chip == "gpiochip0")
        #expect(plan[0].flags == 0)
        #expect(plan[2].flags == 4 | 32, "active low | pull-up (libgpiod's flag bits)")
        #expect(plan[5].flags == 16, "pull-down")
    }

    @Test("a line map is validated whole: every problem with field, value and allowed range")
    func validation() {
        #expect(GPIOPenSettings(serial: "GP-0001", lines: Self.lines).validate().isEmpty)
        var lines = Self.lines
        lines[.tachometer] = nil
        lines[.estop] = GPIOLineSpec(address: .offset(22))
        lines[.pedal] = GPIOLineSpec(address: .offset(70_000), debounce: .milliseconds(200))
        lines[.overDepth] = GPIOLineSpec(address: .name(""))
        lines[.motorEnable] = GPIOLineSpec(address: .offset(17), debounce: .milliseconds(1), bias: .pullUp)
        let problems = GPIOPenSettings(serial: "far-too-long-serial-number", lines: lines).validate().map(\.description)
        #expect(problems == [
            "gpio.serial: \"far-too-long-serial-number\" is outside the allowed range 1 to 16 printable ASCII characters (the pen's serial number, which sessions are bound to)",
            "gpio.lines.tachometer: missing is outside the allowed range a line: {\"offset\": N} or {\"name\": \"...\"}, optionally \"chip\"",
            "gpio.lines.motor_enable.debounce_us: 1000 is outside the allowed range 0 (outputs are not debounced)",
            "gpio.lines.motor_enable.bias: pull_up is outside the allowed range as_is (bias applies to inputs)",
            "gpio.lines.pedal.offset: 70000 is outside the allowed range 0...65535",
            "gpio.lines.pedal.debounce_us: 200000 is outside the allowed range 0...100000",
            "gpio.lines.over_depth.name: \"\" is outside the allowed range a line name of 1...31 bytes",
        ])
        var shared = Self.lines
        shared[.estop] = GPIOLineSpec(address: .offset(22))
        #expect(GPIOPenSettings(serial: "GP-0001", lines: shared).validate().map(\.description) == [
            "gpio.lines.estop: offset 22 on gpiochip0 is outside the allowed range a line of its own (pedal uses it)",
        ])
    }

    @Test("libgpiod: opening a chip that does not exist fails with an error that names the chip")
    func aMissingChipIsNamed() {
        var lines = Self.lines
        lines[.tachometer] = GPIOLineSpec(address: .offset(4))
        let settings = GPIOPenSettings(chip: "gpiochip-stipple-missing", serial: "GP-0001", lines: lines)
        do {
            _ = try LibgpiodLines(settings: settings)
            Issue.record("a chip that does not exist was opened")
        } catch {
            #expect(error.description.contains("\"gpiochip-stipple-missing\""), "\(error)")
            #expect(error.description.hasPrefix("cannot open GPIO chip"), "\(error)")
            #expect(error.errno.rawValue != 0)
        }
    }
}
