import StippleLink
import StippleWire

/// The supervisor's link to a GPIO pen (`PenLink`): the protocol's commands without the bytes.
/// `send` hands each command to the pen's rules at once — MOTOR_STOP, ESTOP and DISARM drive
/// the motor line inactive inside the call, which is the whole GPIO stop path — and `receive`
/// and `poll` return what the pen said since (ACKs, HELLO_REPLY, LIMITS, TELEMETRY, STATUS,
/// FAULT), exactly as a serial pen's frames would arrive. Each poll also tells the pen's rules
/// that the supervisor is alive (their deadman).
public struct GPIOPenLink: PenLink {
    public let pen: GPIOPen
    public private(set) var statistics = HostLink.Statistics.zero

    public init(pen: GPIOPen) {
        self.pen = pen
    }

    public mutating func send(_ message: Message) {
        statistics.commandsSent += 1
        pen.command(message)
    }

    /// A GPIO pen sends no bytes: `bytes` is empty, and the events are the ones the line
    /// reader left.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant) -> [HostLink.Event] {
        let events = pen.poll(at: now)
        statistics.framesReceived += events.count
        return events
    }

    public mutating func poll(at now: MonotonicInstant) -> (bytes: [UInt8], events: [HostLink.Event]) {
        ([], receive([], at: now))
    }

    /// Commands are carried out when sent: nothing ever waits.
    public var isIdle: Bool { true }
}
