import StippleWire

/// The host side of one link to a pen, whatever carries it: the supervisor speaks to every pen
/// in the protocol's own vocabulary — commands are `Message`s (PROTOCOL.md section 4), and what
/// the pen says comes back as `HostLink.Event`s.
///
/// - A serial pen (USB CDC-ACM, UART, a pty) is `HostLink`: it frames commands into bytes for
///   a `PenTransport` and decodes the pen's bytes.
/// - A GPIO pen (`StippleGPIO.GPIOPenLink`) has no bytes and no microcontroller: its link
///   carries each command out on the lines at once — a stop drives the motor line inactive
///   inside `send` — and turns line events into the same events a serial pen's frames give.
///
/// One value is one link: a reconnect starts a new one, so nothing of an old link counts
/// towards arming a new one (H11).
public protocol PenLink: Sendable {
    /// Queues (serial) or carries out (GPIO) a command. Stops preempt whatever is in flight.
    mutating func send(_ message: Message)
    /// Input from the pen arriving at `now`, as events in order. A serial link decodes
    /// `bytes`; a GPIO link takes the line events its reader queued (`bytes` is empty).
    mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant) -> [HostLink.Event]
    /// What to write to the transport at `now` (never anything for a GPIO link), and events
    /// that time produced (a command given up, a GPIO pen's telemetry).
    mutating func poll(at now: MonotonicInstant) -> (bytes: [UInt8], events: [HostLink.Event])
    /// Nothing queued or waiting for an answer.
    var isIdle: Bool { get }
    /// Counters for status and metrics.
    var statistics: HostLink.Statistics { get }
}

extension HostLink: PenLink {
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant) -> [Event] {
        receive(bytes[...], at: now)
    }
}

extension HostLink.Statistics {
    /// All counters at zero, for links in other modules.
    public static var zero: Self { Self() }
}
