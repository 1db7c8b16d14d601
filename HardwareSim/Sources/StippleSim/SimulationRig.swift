import StippleWire

/// A simulated pen, its link and a scripted host on one virtual clock, stepped in host ticks.
/// This is the in-process transport: a four-hour session runs in seconds.
public struct SimulationRig: Sendable {
    public private(set) var pen: PenSimulator
    public var link: SimLink
    public var host = ScriptedHost()
    /// The rig's one clock: zero when the pen powers up.
    public private(set) var now = MonotonicInstant.zero
    /// How often the host looks at the link; the pen runs continuously in between.
    public let tick: Duration
    /// FNV-1a over every byte the pen sent: equal for equal seeds and scripts.
    public private(set) var penOutputHash: UInt64 = 0xCBF2_9CE4_8422_2325
    public private(set) var penBytes = 0

    public init(config: PenConfig = PenConfig(), seed: UInt64 = 1, tick: Duration = .milliseconds(1)) {
        precondition(tick > .zero, "the host tick must be positive")
        pen = PenSimulator(config: config, seed: seed)
        link = SimLink(seed: seed)
        self.tick = tick
        let boot = pen.takeOutput()
        hash(boot)
        link.penSends(boot, at: now)
    }

    /// Runs until `time`, calling `each` after every tick (scenario steps, expectations).
    public mutating func run(until time: MonotonicInstant, each: (inout SimulationRig) -> Void = { _ in }) {
        while now < time {
            now = min(time, now + tick)
            link.hostSends(host.poll(at: now), at: now)
            pen.advance(to: now)
            let toPen = link.deliverToPen(upTo: now)
            if !toPen.isEmpty { pen.receive(toPen) }
            let out = pen.takeOutput()
            if !out.isEmpty {
                hash(out)
                link.penSends(out, at: now)
            }
            let toHost = link.deliverToHost(upTo: now)
            if !toHost.isEmpty { host.receive(toHost, at: now) }
            each(&self)
        }
    }

    /// Runs for `duration` more.
    public mutating func run(for duration: Duration, each: (inout SimulationRig) -> Void = { _ in }) {
        run(until: now + duration, each: each)
    }

    /// A scenario's pen-side action on this rig's pen (false for any other action).
    @discardableResult
    public mutating func apply(_ action: Scenario.Action) -> Bool { action.apply(to: &pen) }

    public mutating func inject(_ fault: PenFault) { pen.inject(fault) }

    public mutating func inject(_ fault: LinkFault) { link.apply(fault, at: now) }

    public mutating func setPedal(_ pressed: Bool) { pen.setPedal(pressed) }

    public mutating func setEstopButton(_ pressed: Bool) { pen.setEstopButton(pressed) }

    public mutating func insertCartridge(_ cartridge: SimCartridge) { pen.insertCartridge(cartridge) }

    public mutating func removeCartridge() { pen.removeCartridge() }

    public mutating func powerCycle() { pen.powerCycle() }

    private mutating func hash(_ bytes: [UInt8]) {
        penBytes += bytes.count
        for byte in bytes {
            penOutputHash = (penOutputHash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
    }
}
