import Foundation
import Logging
import ServiceLifecycle
import StippleDaemon
import StippleSafety
import StippleSim
import StippleTransport
import StippleWire

/// The in-process simulated pen behind the same bytes path as a real one: the daemon's link
/// and codec talk to `PenSimulator` exactly as to a serial pen. The simulator and the
/// supervisor step together on the daemon's clock (real, or accelerated for test rigs), 5 ms of
/// pen time at a time, so an accelerated four-hour session is deterministic and never starves
/// the link of heartbeats.
///
/// With a scenario file, the pen-side steps (pedal, e-stop button, cartridge, power, pen faults)
/// and link faults play at their times; host-side steps are the daemon's own business and are
/// ignored.
struct SimPenService: Service {
    let supervisor: Supervisor
    let clock: any DaemonClock
    let logger: Logger
    let pen: InProcessPenTransport
    let steps: [Scenario.Step]
    static let step = Duration.milliseconds(5)

    init(supervisor: Supervisor, clock: any DaemonClock, scenarioPath: String?, logger: Logger) throws {
        self.supervisor = supervisor
        self.clock = clock
        self.logger = logger
        if let scenarioPath {
            let scenario = try Scenario.load(path: scenarioPath)
            pen = InProcessPenTransport(PenSimulator(config: scenario.pen, seed: scenario.seed))
            steps = scenario.steps
            logger.notice("simulated pen from scenario", metadata: ["scenario": "\(scenario.name)", "file": "\(scenarioPath)"])
        } else {
            var config = PenConfig()
            config.serial = "SIM-0001"
            pen = InProcessPenTransport(PenSimulator(config: config, seed: 1))
            steps = []
        }
    }

    func run() async throws {
        let origin = clock.now()
        await supervisor.attach(supervisor.bringUp.tapped(pen, releasable: false))
        var simulated = Duration.zero
        var pending = steps[...]
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let target = clock.now() - origin
            // One hop onto the supervisor's thread per batch, not two per 5 ms step: the
            // supervisor has a thread of its own, and an accelerated clock would otherwise
            // spend its time switching threads. A batch holds that thread for at most
            // `batchBudget` of real time: when the simulation cannot keep up with the clock (a
            // debug build, a busy machine) it falls behind — simulated time runs slower than
            // the factor — rather than starving the API's commands queued behind it.
            let start = (simulated, pending)
            (simulated, pending) = await supervisor.isolated { supervisor in
                var (simulated, pending) = start
                let deadline = ContinuousClock.now + Self.batchBudget
                var steps = 0
                // Never past the clock: an input stamped with the clock's own reading must not
                // look like a step back to `Supervisor.stamp` (it did: a warning at every stop).
                while simulated + Self.step <= target {
                    steps += 1
                    if steps % 16 == 0 && ContinuousClock.now >= deadline { break }
                    simulated += Self.step
                    let instant = MonotonicInstant.zero + simulated
                    let strokes = pen.withPen { $0.strokeCount }
                    while let next = pending.first, Self.isDue(next, at: instant, strokes: strokes) {
                        pending.removeFirst()
                        play(next.action)
                    }
                    let output = pen.step(to: instant)
                    supervisor.bringUp.record(.fromPen, output)
                    let now = origin + simulated
                    if !output.isEmpty { supervisor.received(output, at: now) }
                    supervisor.step(at: now)
                }
                return (simulated, pending)
            }
            // Caught up: wait for the clock. Behind: straight on — the next batch queues
            // behind whatever commands came meanwhile.
            if simulated + Self.step > target { try await Task.sleep(for: .milliseconds(1)) }
        }
    }

    /// The longest a batch of simulation holds the supervisor's thread.
    static let batchBudget = Duration.milliseconds(5)

    static func isDue(_ step: Scenario.Step, at instant: MonotonicInstant, strokes: UInt32) -> Bool {
        switch step.trigger {
        case .at(let time): time <= instant
        case .atStroke(let count): strokes >= count
        }
    }

    func play(_ action: Scenario.Action) {
        if case .linkFault(let fault) = action {
            pen.inject(fault)
        } else if !pen.withPen({ action.apply(to: &$0) }) {
            return  // a host-side step: the daemon is the host
        }
        logger.notice("scenario step", metadata: ["action": "\(action)"])
    }
}
