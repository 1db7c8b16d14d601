import StippleWire

/// Runs a scenario on the in-process rig and checks its expectations.
public struct ScenarioReport: Sendable, CustomStringConvertible {
    public struct Result: Sendable {
        public var expectation: String
        public var passed: Bool
        public var detail: String
    }

    public var scenario: String
    public var results: [Result]
    public var strokes: UInt32
    public var penFaults: [String]
    public var penOutputHash: UInt64
    public var simulated: Duration

    public var passed: Bool { results.allSatisfy(\.passed) }

    public var description: String {
        var lines = ["\(passed ? "PASS" : "FAIL") \(scenario): \(strokes) strokes, pen faults [\(penFaults.joined(separator: ", "))]"]
        for result in results {
            lines.append("  \(result.passed ? "ok  " : "FAIL") \(result.expectation)\(result.detail.isEmpty ? "" : " — \(result.detail)")")
        }
        return lines.joined(separator: "\n")
    }
}

public enum ScenarioRunner {
    public static func run(_ scenario: Scenario, tick: Duration = .milliseconds(1)) -> ScenarioReport {
        var rig = SimulationRig(config: scenario.pen, seed: scenario.seed, tick: tick)
        var pendingSteps = scenario.steps
        var timedResults: [Int: ScenarioReport.Result] = [:]

        rig.run(until: .zero + scenario.duration) { rig in
            let now = rig.now
            while let index = pendingSteps.firstIndex(where: { step in
                switch step.trigger {
                case .at(let time): time <= now
                case .atStroke(let stroke): rig.pen.strokeCount >= stroke
                }
            }) {
                perform(pendingSteps.remove(at: index).action, on: &rig)
            }
            for (index, expectation) in scenario.expectations.enumerated() where timedResults[index] == nil {
                switch expectation {
                case .motor(let on, let at) where at <= now:
                    let driven = rig.pen.motorDriven
                    timedResults[index] = .init(expectation: "motor \(on ? "on" : "off") at \(at.msText) ms", passed: driven == on,
                                                detail: driven == on ? "" : "motor was \(driven ? "on" : "off")")
                case .state(let state, let at?) where at <= now:
                    timedResults[index] = .init(expectation: "state \(state) at \(at.msText) ms", passed: rig.pen.penState == state,
                                                detail: rig.pen.penState == state ? "" : "state was \(rig.pen.penState)")
                default: break
                }
            }
        }

        var results: [ScenarioReport.Result] = []
        for (index, expectation) in scenario.expectations.enumerated() {
            if let timed = timedResults[index] {
                results.append(timed)
                continue
            }
            results.append(check(expectation, rig: rig))
        }
        return ScenarioReport(
            scenario: scenario.name, results: results, strokes: rig.pen.strokeCount,
            penFaults: rig.host.penFaults.map { "\($0.fault.code)@\($0.time.msText)ms" },
            penOutputHash: rig.penOutputHash, simulated: rig.now - .zero)
    }

    static func perform(_ action: Scenario.Action, on rig: inout SimulationRig) {
        if rig.apply(action) { return }
        switch action {
        case .connect(let limits, let setpoints): rig.host.connect(limits: limits, depthUm: setpoints.depthUm, rateDhz: setpoints.rateDhz)
        case .hello(let major, let minor): rig.host.send(.hello(.init(protoMajor: major, protoMinor: minor)))
        case .send(let message): rig.host.send(message)
        case .arm(let crc): rig.host.arm(limitsCRC: crc)
        case .heartbeats(let enabled): rig.host.heartbeatsEnabled = enabled
        case .pedal, .estopButton, .insertCartridge, .removeCartridge, .powerCycle, .penFault: break  // applied above
        case .linkFault(let fault): rig.inject(fault)
        case .sendRaw(let bytes): rig.host.sendRaw(bytes)
        case .repeatLast(let count): for _ in 0..<count { rig.host.repeatLastCommand() }
        }
    }

    static func check(_ expectation: Scenario.Expectation, rig: SimulationRig) -> ScenarioReport.Result {
        let faults = rig.host.penFaults
        switch expectation {
        case .motor(let on, let at):
            return .init(expectation: "motor \(on ? "on" : "off") at \(at.msText) ms", passed: false, detail: "the scenario ended first")
        case .penFault(let code, let from, let to):
            let window = (from?.msText ?? "start") + "..." + (to?.msText ?? "end") + " ms"
            let hit = faults.first { entry in
                entry.fault.code == code && entry.time >= (from ?? .zero) && entry.time <= (to ?? MonotonicInstant(nanoseconds: .max))
            }
            return .init(expectation: "pen fault \(code) in \(window)", passed: hit != nil,
                         detail: hit.map { "at \($0.time.msText) ms, value \($0.fault.value)" } ?? "pen faults: \(faults.map { "\($0.fault.code)@\($0.time.msText)" })")
        case .noPenFault:
            // The FAULT `reset` a pen sends at power-up is not a fault of the scenario.
            let real = faults.filter { !($0.fault.code == .reset && $0.fault.penTimeUs == 0) }
            return .init(expectation: "no pen fault", passed: real.isEmpty, detail: real.isEmpty ? "" : "got \(real.map { "\($0.fault.code)" })")
        case .noStrokesAfterFault(let code):
            guard let fault = rig.pen.faultHistory.first(where: { $0.code == code }) else {
                return .init(expectation: "no stroke after \(code)", passed: false, detail: "\(code) never latched")
            }
            let after = Int(rig.pen.strokeCount) - Int(fault.strokes)
            return .init(expectation: "no stroke after \(code)", passed: after == 0,
                         detail: after == 0 ? "stroke \(fault.strokes) was the last" : "\(after) strokes after the fault")
        case .ack(let command, let status):
            let seen = rig.host.acks.filter { $0.command == command }.map(\.status)
            return .init(expectation: "ack \(command) \(status)", passed: seen.contains(status), detail: "acks for \(command): \(seen)")
        case .state(let state, _):
            return .init(expectation: "state \(state) at the end", passed: rig.pen.penState == state, detail: "state is \(rig.pen.penState)")
        case .strokes(let min, let max):
            let count = Int(rig.pen.strokeCount)
            let ok = count >= (min ?? 0) && count <= (max ?? .max)
            return .init(expectation: "strokes in \(min ?? 0)...\(max.map(String.init) ?? "")", passed: ok, detail: "\(count) strokes")
        case .depthSetpoint(let depth):
            return .init(expectation: "depth setpoint \(depth) µm", passed: rig.pen.depthSetpointUm == depth, detail: "it is \(rig.pen.depthSetpointUm) µm")
        case .commandsApplied(let count):
            return .init(expectation: "\(count) commands applied", passed: rig.pen.commandsApplied == count, detail: "\(rig.pen.commandsApplied) applied")
        case .hostRejectedFrames(let min):
            return .init(expectation: "host rejected at least \(min) frames", passed: rig.host.rejectedFrames >= min, detail: "\(rig.host.rejectedFrames) rejected")
        }
    }
}

extension MonotonicInstant {
    /// Milliseconds since the simulated pen powered up, as reports print them ("1333.25").
    var msText: String {
        let whole = nanoseconds / 1_000_000, fraction = nanoseconds % 1_000_000
        guard fraction != 0 else { return "\(whole)" }
        var digits = String(fraction + 1_000_000).dropFirst()
        while digits.last == "0" { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}
