import Foundation
import Logging
import StippleDaemon
import StippleRecords
import StippleSafety
import StippleSim
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
/// the same bytes path, stepped together in 5 ms steps of virtual time, as `stippled --pen sim`
/// steps them (a four-hour session runs in seconds).
struct DaemonRig: SteppedRig {
    let clock: ManualClock
    var pen: InProcessPenTransport
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
        if attach {
            await supervisor.attach(pen)
            await run(for: .milliseconds(300))
        }
    }

    /// Runs the pen and the supervisor for `duration` of virtual time.
    func run(for duration: Duration) async {
        var elapsed = Duration.zero
        while elapsed < duration {
            elapsed += Self.step
            clock.advance(Self.step)
            let now = clock.now()
            let instant = MonotonicInstant.zero + (now - clock.start)
            let output = pen.step(to: instant)
            if !output.isEmpty { await supervisor.received(output, at: now) }
            await supervisor.ping(Self.holder)
            await supervisor.step(at: now)
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
