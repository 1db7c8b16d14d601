import Foundation
import Logging
import StippleDaemon
import StippleRecords
import StippleSafety
import StippleSim
import StippleSimBackend
import StippleSupervision
import StippleWire
import Synchronization

/// A clock the test moves by hand.
final class ManualClock: DaemonClock {
    private let instant = Mutex(MonotonicInstant(nanoseconds: 1_000_000_000_000))
    let wallOrigin = WallTime(secondsSince1970: 1_795_000_000)
    let start = MonotonicInstant(nanoseconds: 1_000_000_000_000)
    let bootID: String

    init(bootID: String = "test-boot") { self.bootID = bootID }

    func now() -> MonotonicInstant { instant.withLock { $0 } }
    func wallNow() -> WallTime { wallOrigin + (now() - start) }
    func advance(_ duration: Duration) { instant.withLock { $0 = $0 + duration } }
    func set(_ time: MonotonicInstant) { instant.withLock { $0 = time } }
    var isAccelerated: Bool { true }
    var description: String { "manual" }
}

/// The real supervisor, the real records (a temporary SQLite file) and the simulated pen behind
/// the same bytes path, stepped together in 5 ms steps of virtual time by `SimPenService`'s own
/// loop, as `stippled --pen sim` steps them (a four-hour session runs in seconds).
struct DaemonRig: SteppedRig {
    let clock: ManualClock
    /// A test that swaps the pen (another pen plugged in, the same pen after a daemon restart)
    /// swaps the simulation's pen with it.
    var pen: InProcessPenTransport {
        didSet { simulation = SimPenService(supervisor: supervisor, clock: clock, pen: pen, logger: simulation.logger) }
    }
    private(set) var simulation: SimPenService
    let supervisor: Supervisor
    let store: RecordStore
    let directory: String
    static let step = Duration.milliseconds(5)

    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "stipple-daemon-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    init(penConfig: PenConfig = PenConfig(), directory: String? = nil, clock: ManualClock = ManualClock(),
         limits: SafetyLimits = .defaults, attach: Bool = true) async throws {
        self.directory = directory ?? Self.temporaryDirectory()
        self.clock = clock
        store = try RecordStore(path: self.directory + "/stipple.db")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var problems: [String] = []
        if case .damaged(let damage) = store.health { problems = damage }
        supervisor = try Supervisor(clock: clock, settings: .init(limits: limits), records: RecordWriter(store: store),
                                    recordsProblems: problems, hub: EventHub(), logger: logger)
        await supervisor.start()
        pen = InProcessPenTransport(PenSimulator(config: penConfig, seed: 7))
        simulation = SimPenService(supervisor: supervisor, clock: clock, pen: pen, logger: logger)
        if attach {
            await supervisor.attach(pen)
            await run(for: .milliseconds(300))
        }
    }

    /// Runs the pen and the supervisor for `duration` of virtual time, in one hop onto the
    /// supervisor: before each 5 ms step the manual clock moves to it and the test's console
    /// proves it is there.
    func run(for duration: Duration) async {
        let clock = clock
        let simulation = simulation
        var progress = simulation.progress(from: clock.start)
        progress.simulated = clock.now() - clock.start
        // Whole steps, at least one (as the rig always stepped): `run(for: 1 ms)` is one step.
        let steps = max(1, Int((duration / Self.step).rounded(.up)))
        let target = progress.simulated + Self.step * steps
        let start = progress
        _ = await supervisor.isolated { supervisor in
            var progress = start
            simulation.advance(supervisor, &progress, to: target) { supervisor, now in
                clock.set(now)
                _ = supervisor.ping(Self.holder)
            }
            return progress
        }
    }

    static let client = "gui-test"
    /// The test\'s GUI: a client id and made-up credentials; the rig pings for it every step.
    static let holder = PresenceTable.Holder(uid: 1000, pid: 4242, client: client)

    /// Opens a session on the connected pen, sets an upper-dermis setpoint, arms, presses the
    /// pedal: the needle runs.
    func startRunning(zone: Zone = .crown, setpoint: Setpoint = Setpoint(layer: .upperDermis, depthUm: 800, rateHz: 120)) async throws {
        _ = try await supervisor.openSession(
            SessionRequest(sessionID: "", clientID: "C-1", technician: "ana", zone: zone, cartridgeID: "SIM-CART-0001",
                               pigmentLots: ["P-1"], penSerial: "", gapOverrideReason: nil), actor: "test")
        _ = try await supervisor.setSetpoint(setpoint, actor: "test")
        await run(for: .milliseconds(200))
        _ = await supervisor.presenceOpened(Self.holder)
        try await arm()
        pen.withPen { $0.setPedal(true) }
        await run(for: .milliseconds(600))
    }

    /// Arms while the pen and the link keep running (the arm waits for the pen's ACKs).
    func arm() async throws {
        let supervisor = supervisor
        _ = try await whileRunning { try await supervisor.arm(Self.holder, actor: "test") }
    }

    var phase: String { get async { await supervisor.status().phase } }
    var faults: [String] { get async { await supervisor.status().faults } }
}
