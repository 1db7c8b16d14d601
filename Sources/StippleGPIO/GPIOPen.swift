import StippleLink
import StippleTransport
import StippleWire
import Synchronization

/// A GPIO pen: its lines, its debouncers and its firmware (`GPIOPenFirmware`) behind one lock, used
/// from two threads — the supervisor's (through `GPIOPenLink`: commands, stops, the pen's
/// messages) and the line reader's (`pump`: edges, time). Every change drives the output lines
/// before the lock is released, so a stop — whether the firmware latched it on the reader's
/// thread or the safety core decided it on the supervisor's — has the motor line inactive
/// when the call returns.
public final class GPIOPen: Sendable {
    private struct State {
        var firmware: GPIOPenFirmware
        var debouncers: [GPIOPenLine: InputDebouncer]
        var motorWritten: Bool
        var ledWritten: Bool
        /// A line that could not be driven or read: the pen is lost (the reader reports it).
        var failure: SystemCallError?
    }

    public let lines: any GPIOLineIO
    public let settings: GPIOPenSettings
    private let clock: @Sendable () -> MonotonicInstant
    private let state: Mutex<State>

    /// Takes over requested lines: reads the inputs once (a held e-stop or a tripped switch
    /// latches at once), and drives the outputs inactive again for good measure.
    public init(lines: any GPIOLineIO, settings: GPIOPenSettings, clock: @escaping @Sendable () -> MonotonicInstant) throws(SystemCallError) {
        self.lines = lines
        self.settings = settings
        self.clock = clock
        try lines.set(.motorEnable, active: false)
        let hasLED = settings.lines[.statusLED] != nil
        if hasLED { try lines.set(.statusLED, active: false) }
        let now = clock()
        var debouncers: [GPIOPenLine: InputDebouncer] = [:]
        var initial: [GPIOPenLine: Bool] = [:]
        for line in [GPIOPenLine.pedal, .estop, .overDepth] {
            let value = try lines.value(line)
            initial[line] = value
            let debounce = settings.lines[line]?.debounce ?? GPIOPenSettings.defaultDebounce(line)
            debouncers[line] = InputDebouncer(line: line, debounce: debounce, initial: value)
        }
        let firmware = GPIOPenFirmware(
            serial: settings.serial, hasStatusLED: hasLED,
            tachometerSpacing: settings.lines[.tachometer]?.debounce ?? .zero,
            pedal: initial[.pedal] ?? false, estop: initial[.estop] ?? false, overDepth: initial[.overDepth] ?? false, at: now)
        state = Mutex(State(firmware: firmware, debouncers: debouncers, motorWritten: false, ledWritten: false))
    }

    public var description: String { lines.description }

    // MARK: - The supervisor's side

    /// Carries a command out at once; a stop has the motor line inactive before this returns.
    public func command(_ message: Message) {
        let now = clock()
        state.withLock { state in
            state.firmware.command(message, at: now)
            drive(&state)
        }
    }

    /// The supervisor is alive; returns the pen's messages so far.
    public func poll(at now: MonotonicInstant) -> [HostLink.Event] {
        state.withLock { state in
            state.firmware.hostAlive(at: now)
            return state.firmware.takeEvents()
        }
    }

    /// The firmware as it stands (tests, status).
    public var firmware: GPIOPenFirmware { state.withLock { $0.firmware } }

    /// Whether the motor line was last driven active.
    public var motorLineActive: Bool { state.withLock { $0.motorWritten } }

    // MARK: - The reader's side

    /// Edges that arrived, then time up to `now`; true when the supervisor has messages to take.
    @discardableResult
    public func process(_ edges: [GPIOEdge], at now: MonotonicInstant) throws(SystemCallError) -> Bool {
        try state.withLock { (state) throws(SystemCallError) -> Bool in
            for edge in edges.sorted(by: { $0.time < $1.time }) {
                settle(&state, at: edge.time)
                if edge.line == .tachometer {
                    state.firmware.input(edge)
                } else if let change = state.debouncers[edge.line]?.edge(active: edge.active, at: edge.time) {
                    state.firmware.input(change)
                }
                drive(&state)
            }
            settle(&state, at: now)
            state.firmware.tick(at: now)
            drive(&state)
            if let failure = state.failure { throw failure }
            return state.firmware.hasEvents
        }
    }

    /// The reader's loop body: waits up to `timeout` for edges (without holding the lock, so
    /// commands and stops never wait for it), then processes them and the time.
    @discardableResult
    public func pump(timeout: Duration) throws(SystemCallError) -> Bool {
        // Tickless: no longer than the firmware's next deadline, so its periodic reports and
        // its deadman are on time whatever the reader's period.
        let now = clock()
        let deadline = state.withLock { $0.firmware.timeToDeadline(at: now) }
        let edges = try lines.waitEdges(timeout: min(timeout, deadline))
        return try process(edges, at: clock())
    }

    /// Motor off, lines released. Idempotent.
    public func close() {
        state.withLock { state in
            state.firmware.command(.disarm(.init()), at: clock())
            drive(&state)
        }
        lines.release()
    }

    // MARK: - Internals

    private func settle(_ state: inout State, at time: MonotonicInstant) {
        for line in [GPIOPenLine.estop, .overDepth, .pedal] {
            if let change = state.debouncers[line]?.settle(at: time) { state.firmware.input(change) }
        }
    }

    /// Drives the outputs to what the firmware says, the motor first.
    private func drive(_ state: inout State) {
        let motor = state.firmware.motorEnable
        if motor != state.motorWritten {
            do {
                try lines.set(.motorEnable, active: motor)
                state.motorWritten = motor
            } catch {
                state.motorWritten = true  // unknown: assume the worst, so the next change writes again
                state.failure = state.failure ?? error
            }
        }
        let led = state.firmware.statusLED
        if settings.lines[.statusLED] != nil, led != state.ledWritten {
            do {
                try lines.set(.statusLED, active: led)
                state.ledWritten = led
            } catch {
                state.failure = state.failure ?? error
            }
        }
    }
}
