import StippleWire

/// The stroke rate from the tachometer's pulse timestamps (the kernel's, so scheduling delays
/// in the daemon do not bend the figure): the inverse of the last interval between two
/// strokes — and, while no further pulse comes, never more than the inverse of the time since
/// the last one, so a tachometer that falls silent reads as a rate falling towards zero (a
/// stall) rather than as the last rate held forever.
public struct Tachometer: Sendable {
    /// Pulses closer together than this after a counted one are contact bounce, not strokes.
    public let minimumSpacing: Duration
    public private(set) var strokes: UInt32 = 0
    public private(set) var lastPulse: MonotonicInstant?
    private var lastInterval: Duration?

    public init(minimumSpacing: Duration = .zero) {
        self.minimumSpacing = minimumSpacing
    }

    /// A pulse at `time`; false when it was rejected as bounce.
    public mutating func pulse(at time: MonotonicInstant) -> Bool {
        if let last = lastPulse {
            let interval = time - last
            guard interval > .zero, interval >= minimumSpacing else { return false }
            lastInterval = interval
        }
        lastPulse = time
        strokes &+= 1
        return true
    }

    /// The motor stopped being driven: the next pulse starts a new measurement (the first
    /// interval after a start must not span the pause).
    public mutating func restart() {
        lastPulse = nil
        lastInterval = nil
    }

    /// The stroke rate at `now`, in hertz.
    public func rateHz(at now: MonotonicInstant) -> Double {
        guard let last = lastPulse, let interval = lastInterval else { return 0 }
        let sinceLast = now - last
        let period = max(interval, sinceLast)
        let seconds = Double(period.components.seconds) + Double(period.components.attoseconds) / 1e18
        return seconds > 0 ? 1 / seconds : 0
    }
}
