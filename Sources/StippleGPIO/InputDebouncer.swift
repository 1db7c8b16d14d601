import StippleWire

/// Debounces one input on the kernel's edge timestamps, asymmetrically: a change *towards* the
/// line's safe value (pedal released, e-stop pressed, switch tripped) counts at once — a stop
/// is never delayed by debouncing — and a change away from it counts only once it has held
/// for `debounce`, so contact bounce or noise can never start the motor.
public struct InputDebouncer: Sendable {
    public let line: GPIOPenLine
    public let debounce: Duration
    /// The debounced value.
    public private(set) var value: Bool
    /// A change away from the safe value, waiting to hold.
    private var pending: (value: Bool, since: MonotonicInstant)?

    public init(line: GPIOPenLine, debounce: Duration, initial: Bool) {
        self.line = line
        self.debounce = debounce
        value = initial
    }

    /// A raw edge; returns the debounced change it causes now, if any.
    public mutating func edge(active: Bool, at time: MonotonicInstant) -> GPIOEdge? {
        if active == value {
            pending = nil  // bounced back before it held
            return nil
        }
        if active == line.safeValue || debounce <= .zero {
            pending = nil
            value = active
            return GPIOEdge(line: line, active: active, time: time)
        }
        if pending == nil || pending?.value != active { pending = (active, time) }
        return settle(at: time)
    }

    /// Time passing: a pending change that has held long enough counts, stamped with the
    /// instant it had held for `debounce`.
    public mutating func settle(at now: MonotonicInstant) -> GPIOEdge? {
        guard let pending, now - pending.since >= debounce else { return nil }
        self.pending = nil
        value = pending.value
        return GPIOEdge(line: line, active: pending.value, time: pending.since + debounce)
    }
}
