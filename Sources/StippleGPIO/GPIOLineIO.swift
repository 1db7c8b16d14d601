import StippleTransport
import StippleWire

/// A change of an input line, as the kernel reports it: logical value (after the active-low
/// flag) and the kernel's timestamp of the edge — CLOCK_MONOTONIC since Linux 5.7, the
/// clock the daemon runs on — not the time the daemon got round to reading it.
public struct GPIOEdge: Hashable, Sendable, CustomStringConvertible {
    public var line: GPIOPenLine
    public var active: Bool
    public var time: MonotonicInstant

    public init(line: GPIOPenLine, active: Bool, time: MonotonicInstant) {
        self.line = line
        self.active = active
        self.time = time
    }

    public var description: String { "\(line.rawValue) \(active ? "active" : "inactive") at \(time)" }
}


/// The seam between the GPIO pen and its lines: libgpiod on a real chip (`LibgpiodLines`),
/// or a model in tests (HardwareSim's `GPIOPenSimulator` behind the same calls). Values are
/// logical; the implementation owns the requested lines exclusively until `release`.
///
/// Requesting the lines is the implementation's initialiser: outputs are requested with
/// their *inactive* value, so the motor is off from the first instant the daemon holds the
/// line.
public protocol GPIOLineIO: AnyObject, Sendable {
    /// What to show a person ("gpiochip0: motor_enable 17, ...").
    var description: String { get }
    /// Drives an output line.
    func set(_ line: GPIOPenLine, active: Bool) throws(SystemCallError)
    /// The current value of an input line.
    func value(_ line: GPIOPenLine) throws(SystemCallError) -> Bool
    /// Waits up to `timeout` for edges on the inputs; returns every edge that arrived, oldest
    /// first (empty on timeout).
    func waitEdges(timeout: Duration) throws(SystemCallError) -> [GPIOEdge]
    /// Drives every output inactive, then gives the lines back to the kernel. Idempotent.
    func release()
}
