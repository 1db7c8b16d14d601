import Foundation
import Logging
import StippleDaemon
import StippleGPIO
import StippleRecords
import StippleSafety
import StippleSim
import StippleSupervision
import StippleTransport
import StippleWire
import Synchronization

/// HardwareSim's GPIO pen model behind the line seam: what `LibgpiodLines` does with a real
/// chip, this does with `GPIOPenSimulator`, on the rig's virtual clock. Edges carry the model's
/// exact instants, as the kernel's timestamps would.
final class SimulatedGPIOLines: GPIOLineIO, @unchecked Sendable {
    private let model: Mutex<GPIOPenSimulator>
    private let origin: MonotonicInstant
    private let state = Mutex((released: false, tachometerCut: false))

    init(_ model: GPIOPenSimulator, origin: MonotonicInstant) {
        self.model = Mutex(model)
        self.origin = origin
    }

    var description: String { "sim gpio" }

    func withModel<T: Sendable>(_ body: (inout GPIOPenSimulator) -> T) -> T { model.withLock { body(&$0) } }

    /// A broken tachometer wire: the pen turns, no pulse arrives.
    var tachometerCut: Bool {
        get { state.withLock { $0.tachometerCut } }
        set { state.withLock { $0.tachometerCut = newValue } }
    }

    static func simLine(_ line: GPIOPenLine) -> GPIOPenSimulator.Line {
        GPIOPenSimulator.Line(rawValue: line.rawValue)!
    }

    func set(_ line: GPIOPenLine, active: Bool) throws(SystemCallError) {
        guard !state.withLock({ $0.released }) else { throw SystemCallError("set", errno: EBADF, detail: "released") }
        model.withLock { $0.setOutput(Self.simLine(line), active) }
    }

    func value(_ line: GPIOPenLine) throws(SystemCallError) -> Bool {
        model.withLock { $0.level(Self.simLine(line)) }
    }

    /// Advances the model to `now` and returns its input edges (the reader's wait).
    func edges(upTo now: MonotonicInstant) -> [GPIOEdge] {
        let cut = tachometerCut
        let origin = origin
        return model.withLock { model in
            model.advance(to: .zero + (now - origin))
            return model.takeEdges().compactMap { edge in
                if cut && edge.line == .tachometer { return nil }
                return GPIOEdge(line: GPIOPenLine(rawValue: edge.line.rawValue)!, active: edge.rising, time: origin + (edge.time - .zero))
            }
        }
    }

    func waitEdges(timeout: Duration) throws(SystemCallError) -> [GPIOEdge] { [] }

    /// The daemon gives the lines back: outputs inactive first (what `LibgpiodLines` does).
    func release() {
        guard !state.withLock({ $0.released }) else { return }
        model.withLock { $0.setOutput(.motorEnable, false) }
        state.withLock { $0.released = true }
    }

    /// The daemon dies: the kernel closes its files, and the released line keeps its last
    /// value — the worst case the kernel allows.
    func crash() {
        state.withLock { $0.released = true }
    }

    /// A restarted daemon requests the same lines again.
    func reopen() {
        state.withLock { $0.released = false }
    }
}

/// The real supervisor and records driving a GPIO pen: `GPIOPen` (the rules, the debouncers)
/// over `SimulatedGPIOLines`, stepped in 1 ms steps of virtual time — the line reader's work
/// (edges, then time) and the supervisor's (the pen's messages, its 5 ms tick) interleaved as
/// `GPIOPenService` interleaves them.
struct GPIORig: SteppedRig {
    let clock: ManualClock
    let lines: SimulatedGPIOLines
    let pen: GPIOPen
    let supervisor: Supervisor
    let store: RecordStore
    let directory: String
    static let step = Duration.milliseconds(1)
    static let serial = "GP-0001"
    static let cartridge = "GPIO-CART-0001"

    static let settings = GPIOPenSettings(serial: serial, lines: [
        .motorEnable: .init(address: .offset(0)), .statusLED: .init(address: .offset(1)),
        .pedal: .init(address: .offset(2), debounce: .milliseconds(10)), .estop: .init(address: .offset(3), debounce: .milliseconds(20)),
        .tachometer: .init(address: .offset(4)), .overDepth: .init(address: .offset(5), debounce: .milliseconds(20)),
    ])

    init(model: GPIOPenSimulator = GPIOPenSimulator(), lines: SimulatedGPIOLines? = nil, directory: String? = nil,
         clock: ManualClock = ManualClock(), attach: Bool = true) async throws {
        self.clock = clock
        self.directory = directory ?? DaemonRig.temporaryDirectory()
        store = try RecordStore(path: self.directory + "/stipple.db")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        supervisor = try Supervisor(clock: clock, settings: .init(limits: .defaults), records: RecordWriter(store: store),
                                    recordsProblems: [], hub: EventHub(), logger: logger)
        await supervisor.start()
        let lines = lines ?? SimulatedGPIOLines(model, origin: clock.start)
        lines.reopen()
        self.lines = lines
        pen = try GPIOPen(lines: lines, settings: Self.settings, clock: { clock.now() })
        if attach {
            await supervisor.attach(gpio: pen)
            await run(for: .milliseconds(50))
        }
    }

    /// The reader's side only: edges and time into the pen's rules (the supervisor hung).
    func pump() throws {
        let now = clock.now()
        try pen.process(lines.edges(upTo: now), at: now)
    }

    /// Runs the pen, its reader and the supervisor for `duration` of virtual time.
    func run(for duration: Duration) async { await run(for: duration, supervisorAlive: true) }

    func run(for duration: Duration, supervisorAlive: Bool) async {
        var elapsed = Duration.zero
        while elapsed < duration {
            elapsed += Self.step
            clock.advance(Self.step)
            let now = clock.now()
            let hasMessages = (try? pen.process(lines.edges(upTo: now), at: now)) ?? false
            guard supervisorAlive else { continue }
            if hasMessages { await supervisor.received([], at: now) }
            if (now - clock.start).totalNanoseconds % 5_000_000 == 0 {  // the service's 5 ms tick
                await supervisor.ping(Self.holder)
                await supervisor.step(at: now)
            }
        }
    }

    var strokes: UInt32 { lines.withModel { $0.strokeCount } }
    var motorPowered: Bool { lines.withModel { $0.motorPowered } }
    var motorLine: Bool { lines.withModel { $0.level(.motorEnable) } }
    func press(_ line: GPIOPenSimulator.Line, _ pressed: Bool) { lines.withModel { $0.setInput(line, pressed) } }
    var phase: String { get async { await supervisor.status().phase } }
    var faults: [String] { get async { await supervisor.status().faults } }

    static let client = "gui-gpio"
    /// The test\'s GUI: a client id and made-up credentials; the rig pings for it every step.
    static let holder = PresenceTable.Holder(uid: 1000, pid: 4242, client: client)

    /// Opens a session on the GPIO pen, types its cartridge, sets the setpoint, arms, presses
    /// the pedal: the needle runs.
    func startRunning() async throws {
        try await openAndArm()
        press(.pedal, true)
        await run(for: .milliseconds(400))
    }

    func openAndArm() async throws {
        _ = try await supervisor.openSession(
            SessionRequest(sessionID: "", clientID: "C-GPIO", technician: "ana", zone: .crown, cartridgeID: Self.cartridge,
                               pigmentLots: ["P-1"], penSerial: "", gapOverrideReason: nil), actor: "test")
        _ = try await supervisor.setCartridge(id: Self.cartridge, lot: "LOT-7", expiryDay: 40_000, needleCount: 3, needleDiameterUm: 250, actor: "test")
        _ = try await supervisor.setSetpoint(Setpoint(layer: .upperDermis, depthUm: 800, rateHz: 120), actor: "test")
        await run(for: .milliseconds(50))
        _ = await supervisor.presenceOpened(Self.holder)
        try await arm()
    }

    /// Arms while the pen keeps running (the arm waits for the records, then the ACKs).
    func arm() async throws {
        let supervisor = supervisor
        _ = try await whileRunning { try await supervisor.arm(Self.holder, actor: "test") }
    }

    /// Clears the latch while the pen keeps running (the supervisor waits for the pen's answer
    /// and for a frame after it).
    func clearFault() async throws {
        let supervisor = supervisor
        _ = try await whileRunning { try await supervisor.clearFault(actor: "test") }
    }

}
