import Foundation
import Logging
import ServiceLifecycle
import StippleAPI
import StippleDaemon
import StippleRequests
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
public struct SimPenService: Service {
    public let supervisor: Supervisor
    public let clock: any DaemonClock
    public let logger: Logger
    public let pen: InProcessPenTransport
    public let steps: [Scenario.Step]
    public static let step = Duration.milliseconds(5)

    public init(supervisor: Supervisor, clock: any DaemonClock, scenarioPath: String?, logger: Logger) throws {
        if let scenarioPath {
            let scenario = try Scenario.load(path: scenarioPath)
            self.init(supervisor: supervisor, clock: clock, pen: InProcessPenTransport(PenSimulator(config: scenario.pen, seed: scenario.seed)),
                      steps: scenario.steps, logger: logger)
            logger.notice("simulated pen from scenario", metadata: ["scenario": "\(scenario.name)", "file": "\(scenarioPath)"])
        } else {
            var config = PenConfig()
            config.serial = "SIM-0001"
            self.init(supervisor: supervisor, clock: clock, pen: InProcessPenTransport(PenSimulator(config: config, seed: 1)), logger: logger)
        }
    }

    /// A pen of the caller's (the tests' rig builds its own, with the faults it wants).
    public init(supervisor: Supervisor, clock: any DaemonClock, pen: InProcessPenTransport, steps: [Scenario.Step] = [], logger: Logger) {
        self.supervisor = supervisor
        self.clock = clock
        self.logger = logger
        self.pen = pen
        self.steps = steps
    }

    /// How far the simulation has gone: simulated time since `origin` (the daemon clock's
    /// reading when the pen started), and the scenario steps still to play.
    public struct Progress: Sendable {
        public let origin: MonotonicInstant
        public var simulated = Duration.zero
        public var pending: ArraySlice<Scenario.Step>

        public var now: MonotonicInstant { origin + simulated }
    }

    public func progress(from origin: MonotonicInstant) -> Progress { Progress(origin: origin, pending: steps[...]) }

    public func run() async throws {
        var progress = progress(from: clock.now())
        await supervisor.attach(supervisor.bringUp.tapped(pen, releasable: false))
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let target = clock.now() - progress.origin
            // One hop onto the supervisor's thread per batch, not two per 5 ms step: the
            // supervisor has a thread of its own, and an accelerated clock would otherwise
            // spend its time switching threads. A batch holds that thread for at most
            // `batchBudget` of real time: when the simulation cannot keep up with the clock (a
            // debug build, a busy machine) it falls behind — simulated time runs slower than
            // the factor — rather than starving the API's commands queued behind it.
            let start = progress
            progress = await supervisor.isolated { supervisor in
                var progress = start
                advance(supervisor, &progress, to: target, budget: Self.batchBudget)
                return progress
            }
            // Caught up: wait for the clock. Behind: straight on — the next batch queues
            // behind whatever commands came meanwhile.
            if progress.simulated + Self.step > target { try await Task.sleep(for: .milliseconds(1)) }
        }
    }

    /// The pen and the supervisor, 5 ms at a time, up to `target` of simulated time (never past
    /// it: an input stamped with the clock's own reading must not look like a step back to the
    /// supervisor — it did: a warning at every stop), or until `budget` of real time is spent.
    /// `eachStep` runs first in each step, at its time: the tests' rig moves its manual clock
    /// there and speaks for its console. This one loop is what `stippled --pen sim` and the
    /// tests' rig both run.
    public func advance(_ supervisor: isolated Supervisor, _ progress: inout Progress, to target: Duration, budget: Duration? = nil,
                        eachStep: (_ supervisor: isolated Supervisor, _ now: MonotonicInstant) -> Void = { _, _ in }) {
        let deadline = budget.map { ContinuousClock.now + $0 }
        var steps = 0
        while progress.simulated + Self.step <= target {
            steps += 1
            if let deadline, steps % 16 == 0 && ContinuousClock.now >= deadline { break }
            progress.simulated += Self.step
            let instant = MonotonicInstant.zero + progress.simulated
            eachStep(supervisor, progress.now)
            let strokes = pen.withPen { $0.strokeCount }
            while let next = progress.pending.first, Self.isDue(next, at: instant, strokes: strokes) {
                progress.pending.removeFirst()
                play(next.action)
            }
            let output = pen.step(to: instant)
            supervisor.bringUp.record(.fromPen, output)
            if !output.isEmpty { supervisor.received(output, at: progress.now) }
            supervisor.step(at: progress.now)
        }
    }

    /// The longest a batch of simulation holds the supervisor's thread.
    static let batchBudget = Duration.milliseconds(5)

    public static func isDue(_ step: Scenario.Step, at instant: MonotonicInstant, strokes: UInt32) -> Bool {
        switch step.trigger {
        case .at(let time): time <= instant
        case .atStroke(let count): strokes >= count
        }
    }

    /// A scenario step's action on the pen (a link fault on the link between it and the
    /// daemon); host-side steps are ignored — the daemon is the host.
    func play(_ action: Scenario.Action) {
        guard apply(action) else { return }  // a host-side step: the daemon is the host
        logger.notice("scenario step", metadata: ["action": "\(action)"])
    }

    /// The action on the pen or its link; false for a host-side step, which it leaves alone.
    func apply(_ action: Scenario.Action) -> Bool {
        if case .linkFault(let fault) = action {
            pen.inject(fault)
            return true
        }
        return pen.withPen { action.apply(to: &$0) }
    }
}

/// `/v1/sim`: the simulated pen driven from outside (test rigs, the console's tests, a demo).
/// Each action goes to the pen under its lock and takes effect in the pen's next 5 ms step, as a
/// scenario's would; the daemon learns of it only from the pen's frames, as it would from a real
/// pen. Logged with who asked.
extension SimPenService: SimulatedPenControl {
    public func state() -> Components.Schemas.SimulatedPen {
        pen.withPen { pen in
            Components.Schemas.SimulatedPen(
                pedalPressed: pen.pedalPressed, estopButton: pen.estopButton, motorOn: pen.motorDriven, armed: pen.armed,
                penState: pen.penState.name ?? "\(pen.penState.rawValue)", latchedFault: pen.latchedFault.name ?? "\(pen.latchedFault.rawValue)",
                strokes: Int(pen.strokeCount), rateHz: pen.rateHz.isFinite ? pen.rateHz : 0,  // JSON has no NaN
                cartridge: pen.cartridge.map {
                    .init(id: $0.id, needleCount: $0.needleCount, needleDiameterUm: $0.needleDiameterUm, lot: $0.lot, expiryDays: $0.expiryDays)
                })
        }
    }

    public func setPedal(_ pressed: Bool, actor: String) {
        pen.withPen { $0.setPedal(pressed) }
        logger.notice("simulated pedal", metadata: ["pressed": "\(pressed)", "actor": "\(actor)"])
    }

    public func setEstopButton(_ pressed: Bool, actor: String) {
        pen.withPen { $0.setEstopButton(pressed) }
        logger.notice("simulated e-stop button", metadata: ["pressed": "\(pressed)", "actor": "\(actor)"])
    }

    public func inject(faultJSON: Data, actor: String) throws(Problem) {
        let action: Scenario.Action
        do {
            action = try Scenario.Action.fault(json: faultJSON)
        } catch {
            // The simulator's reader names the key at fault and what it allows.
            // An unknown parameter is reported at the object; name the key itself.
            let unknown = error.reason.hasPrefix("unknown key '") ? error.reason.dropFirst(13).prefix { $0 != "'" } : nil
            let field = unknown.map(String.init) ?? (error.location == "top level" ? "fault" : error.location)
            if error.location == "top level", error.reason.contains("not valid JSON") {
                // Foundation's decoder loses the key when a number does not fit the type asked.
                throw Problem(422, .badField, "a parameter is not a number this fault takes: whole numbers for counts, µm, mA and d°C (stipple-sim list-faults)",
                              errors: [Problem.FieldError(field: "parameters", value: "as given", allowed: "the fault's parameters, in their ranges (stipple-sim list-faults)")])
            }
            throw Problem(422, .badField, "\(field): \(error.reason)",
                          errors: [Problem.FieldError(field: field, value: "as given", allowed: error.reason)])
        }
        _ = apply(action)
        logger.notice("simulated fault injected", metadata: ["fault": "\(action)", "actor": "\(actor)"])
    }

    public func insertCartridge(_ cartridge: Components.Schemas.SimCartridge, actor: String) {
        let defaults = SimCartridge(id: cartridge.id)
        let inserted = SimCartridge(
            id: cartridge.id, needleCount: cartridge.needleCount ?? defaults.needleCount,
            needleDiameterUm: cartridge.needleDiameterUm ?? defaults.needleDiameterUm, lot: cartridge.lot ?? defaults.lot,
            expiryDays: cartridge.expiryDays ?? defaults.expiryDays)
        pen.withPen { $0.insertCartridge(inserted) }
        logger.notice("simulated cartridge inserted", metadata: ["id": "\(inserted.id)", "actor": "\(actor)"])
    }

    public func removeCartridge(actor: String) {
        pen.withPen { $0.removeCartridge() }
        logger.notice("simulated cartridge removed", metadata: ["actor": "\(actor)"])
    }
}
