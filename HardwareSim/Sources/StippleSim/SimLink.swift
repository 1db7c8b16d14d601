import StippleWire

/// The byte link between host and pen on the virtual clock, with the link faults of
/// `LinkFault`: loss, bit flips, garbage, latency, disconnection. Deterministic per seed.
public struct SimLink: Sendable {
    private struct Window: Sendable {
        var fault: LinkFault
        var until: MonotonicInstant
    }

    private var toPen: [(time: MonotonicInstant, byte: UInt8)] = []
    private var toHost: [(time: MonotonicInstant, byte: UInt8)] = []
    private var toPenHead = 0
    private var toHostHead = 0
    private var latency = Duration.zero
    private var windows: [Window] = []
    private var rng: SimRandom
    /// Bytes lost, flipped or inserted by faults, for reports.
    public private(set) var bytesDropped = 0
    public private(set) var bitsFlipped = 0
    public private(set) var bytesInserted = 0

    public init(seed: UInt64) { rng = SimRandom(seed: seed ^ 0x5EED_1111) }

    public mutating func apply(_ fault: LinkFault, at now: MonotonicInstant) {
        switch fault {
        case .latency(let delay):
            latency = max(.zero, delay)
        case .garbageBurst(let count, let direction):
            let arrival = now + latency
            for _ in 0..<count {
                let byte = UInt8(truncatingIfNeeded: rng.next())
                if direction != .toHost { Self.enqueue(&toPen, head: toPenHead, (arrival, byte), dropped: &bytesDropped) }
                if direction != .toPen { Self.enqueue(&toHost, head: toHostHead, (arrival, byte), dropped: &bytesDropped) }
                bytesInserted += 1
            }
        case .byteLoss(_, _, let duration), .bitFlips(_, _, let duration), .disconnect(let duration):
            windows.append(Window(fault: fault, until: now + max(.zero, duration)))
        }
    }

    public mutating func hostSends(_ bytes: [UInt8], at now: MonotonicInstant) { carry(bytes, toward: .toPen, at: now) }

    public mutating func penSends(_ bytes: [UInt8], at now: MonotonicInstant) { carry(bytes, toward: .toHost, at: now) }

    /// Bytes that have reached the pen by `now`.
    public mutating func deliverToPen(upTo now: MonotonicInstant) -> [UInt8] { Self.take(&toPen, head: &toPenHead, upTo: now) }

    /// Bytes that have reached the host by `now`.
    public mutating func deliverToHost(upTo now: MonotonicInstant) -> [UInt8] { Self.take(&toHost, head: &toHostHead, upTo: now) }

    /// Forgets expired fault windows.
    public mutating func expire(at now: MonotonicInstant) { windows.removeAll { $0.until <= now } }

    private mutating func carry(_ bytes: [UInt8], toward direction: LinkFault.Direction, at now: MonotonicInstant) {
        expire(at: now)
        let arrival = now + latency
        for var byte in bytes {
            var drop = false
            for window in windows {
                switch window.fault {
                case .disconnect:
                    drop = true
                case .byteLoss(let probability, let applies, _) where applies == .both || applies == direction:
                    if rng.unit() < probability { drop = true }
                case .bitFlips(let probability, let applies, _) where applies == .both || applies == direction:
                    for bit in 0..<8 where rng.unit() < probability {
                        byte ^= 1 << bit
                        bitsFlipped += 1
                    }
                default:
                    break
                }
            }
            if drop {
                bytesDropped += 1
                continue
            }
            if direction == .toPen {
                Self.enqueue(&toPen, head: toPenHead, (arrival, byte), dropped: &bytesDropped)
            } else {
                Self.enqueue(&toHost, head: toHostHead, (arrival, byte), dropped: &bytesDropped)
            }
        }
    }

    /// The most bytes a direction holds in flight: a link slowed for a day and fed garbage
    /// bursts would otherwise grow without bound. A full link loses what comes next, as a real
    /// UART's buffer would.
    static let maximumInFlight = 1 << 20

    private static func enqueue(_ queue: inout [(time: MonotonicInstant, byte: UInt8)], head: Int, _ item: (time: MonotonicInstant, byte: UInt8),
                                dropped: inout Int) {
        guard queue.count - head < maximumInFlight else {
            dropped += 1
            return
        }
        queue.append(item)
    }

    private static func take(_ queue: inout [(time: MonotonicInstant, byte: UInt8)], head: inout Int, upTo now: MonotonicInstant) -> [UInt8] {
        var out: [UInt8] = []
        while head < queue.count, queue[head].time <= now {
            out.append(queue[head].byte)
            head += 1
        }
        if head > 4096 {
            queue.removeFirst(head)
            head = 0
        }
        return out
    }
}
