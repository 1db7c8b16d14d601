/// The byte link between host and pen on the virtual clock, with the link faults of
/// `LinkFault`: loss, bit flips, garbage, latency, disconnection. Deterministic per seed.
public struct SimLink: Sendable {
    private struct Window: Sendable {
        var fault: LinkFault
        var until: SimTime
    }

    private var toPen: [(time: SimTime, byte: UInt8)] = []
    private var toHost: [(time: SimTime, byte: UInt8)] = []
    private var toPenHead = 0
    private var toHostHead = 0
    private var latency: SimTime = 0
    private var windows: [Window] = []
    private var rng: SimRandom
    /// Bytes lost, flipped or inserted by faults, for reports.
    public private(set) var bytesDropped = 0
    public private(set) var bitsFlipped = 0
    public private(set) var bytesInserted = 0

    public init(seed: UInt64) { rng = SimRandom(seed: seed ^ 0x5EED_1111) }

    public mutating func apply(_ fault: LinkFault, at now: SimTime) {
        switch fault {
        case .latency(let ms):
            latency = SimTime(max(0, ms) * 1000)
        case .garbageBurst(let count, let direction):
            for _ in 0..<count {
                let byte = UInt8(truncatingIfNeeded: rng.next())
                if direction != .toHost { toPen.append((now + latency, byte)) }
                if direction != .toPen { toHost.append((now + latency, byte)) }
                bytesInserted += 1
            }
        case .byteLoss(_, _, let ms), .bitFlips(_, _, let ms), .disconnect(let ms):
            windows.append(Window(fault: fault, until: now + SimTime(max(0, ms) * 1000)))
        }
    }

    public mutating func hostSends(_ bytes: [UInt8], at now: SimTime) { carry(bytes, toward: .toPen, at: now) }

    public mutating func penSends(_ bytes: [UInt8], at now: SimTime) { carry(bytes, toward: .toHost, at: now) }

    /// Bytes that have reached the pen by `now`.
    public mutating func deliverToPen(upTo now: SimTime) -> [UInt8] { Self.take(&toPen, head: &toPenHead, upTo: now) }

    /// Bytes that have reached the host by `now`.
    public mutating func deliverToHost(upTo now: SimTime) -> [UInt8] { Self.take(&toHost, head: &toHostHead, upTo: now) }

    /// Forgets expired fault windows.
    public mutating func expire(at now: SimTime) { windows.removeAll { $0.until <= now } }

    private mutating func carry(_ bytes: [UInt8], toward direction: LinkFault.Direction, at now: SimTime) {
        expire(at: now)
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
            if direction == .toPen { toPen.append((now + latency, byte)) } else { toHost.append((now + latency, byte)) }
        }
    }

    private static func take(_ queue: inout [(time: SimTime, byte: UInt8)], head: inout Int, upTo now: SimTime) -> [UInt8] {
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
