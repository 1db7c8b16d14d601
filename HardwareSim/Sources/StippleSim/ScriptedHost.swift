import StippleConformance
import StippleLink
import StippleWire

/// The host for scenarios and tests: the daemon's own `HostLink` (stop-and-wait, retransmission,
/// preempting stops, the heartbeat, the pen's sequence gaps — PROTOCOL.md section 5), with a
/// record of everything the pen said and a few ways to misbehave on purpose (no heartbeats,
/// duplicates, raw bytes). It makes no safety decisions of its own (that is the daemon's job).
public struct ScriptedHost: Sendable {
    public struct Ack: Hashable, Sendable {
        public var time: MonotonicInstant
        public var command: MessageID
        public var seq: UInt8
        public var status: AckStatus
        public var detail: UInt8
    }

    /// Every ACK the pen sent, also those the link ignores as stale (a duplicate's answer).
    public private(set) var acks: [Ack] = []
    public private(set) var penFaults: [(time: MonotonicInstant, fault: Message.Fault)] = []
    public private(set) var helloReply: Message.HelloReply?
    public private(set) var limits: Message.Limits?
    public private(set) var lastStatus: Message.Status?
    public private(set) var lastTelemetry: Message.Telemetry?
    public private(set) var lastTelemetryTime: MonotonicInstant?
    public private(set) var telemetryFrames = 0
    public private(set) var cartridges: [Message.Cartridge] = []
    public private(set) var logLines: [String] = []
    /// Commands abandoned after the retries ran out (the link counts as lost). A stop is never
    /// abandoned: the link retransmits it until acknowledged.
    public private(set) var gaveUp: [MessageID] = []
    /// The limits this host pushed last, for the ARM checksum.
    public private(set) var pushedLimits: Message.SetLimits?

    private var link: HostLink
    private var pendingRaw: [UInt8] = []

    /// The rig's clock starts at zero when the pen powers up; the host opens the line then.
    public init() { link = HostLink(openedAt: .zero) }

    public var rejectedFrames: Int { link.statistics.framesRejected }
    public var penFramesLost: Int { link.statistics.penFramesLost }
    public var retransmissions: Int { link.statistics.retransmissions }

    /// Off only to test the pen's deadman: a host that stops feeding it.
    public var heartbeatsEnabled: Bool {
        get { link.sendsHeartbeats }
        set { link.sendsHeartbeats = newValue }
    }

    public var isIdle: Bool { link.isIdle }

    /// The deadman this host must assume the pen holds (the link's: the shortest pushed or read back).
    public var assumedDeadmanMs: Int { link.assumedDeadmanMs }

    /// The longest gap this host leaves between frames: `min(100, deadman_ms / 3)` ms (PROTOCOL.md section 5).
    public var heartbeatPeriod: Duration { link.heartbeatPeriod }

    /// Queues a command. ESTOP, MOTOR_STOP and DISARM preempt whatever is in flight; the
    /// limits of a SET_LIMITS are kept for the checksum of the next ARM.
    public mutating func send(_ message: Message) {
        if case .setLimits(let limits) = message { pushedLimits = limits }
        link.send(message)
    }

    /// Sends the last command's bytes again, unchanged: a duplicate the pen must not apply.
    public mutating func repeatLastCommand() { pendingRaw += link.lastCommandFrame }

    /// Bytes to put on the link as they are (conformance tests: damaged or illegal frames).
    public mutating func sendRaw(_ bytes: [UInt8]) { pendingRaw += bytes }

    /// HELLO, SET_LIMITS, SET_SETPOINTS: the start of every link (PROTOCOL.md section 6).
    public mutating func connect(
        limits: Message.SetLimits = ScriptedHost.defaultLimits,
        depthUm: UInt16 = ScriptedHost.defaultSetpoints.depthUm, rateDhz: UInt16 = ScriptedHost.defaultSetpoints.rateDhz
    ) {
        send(.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor)))
        send(.setLimits(limits))
        send(.setSetpoints(.init(depthUm: depthUm, rateDhz: rateDhz)))
        send(.readCartridge(.init()))
    }

    /// ARM with the checksum of the limits this host pushed, then MOTOR_RUN.
    public mutating func arm(limitsCRC: UInt32? = nil) {
        let crc = limitsCRC ?? pushedLimits?.checksum ?? 0
        send(.arm(.init(limitsCRC: crc)))
        send(.motorRun(.init()))
    }

    /// Upper-dermis band in the crown with the default rate window (what the daemon pushes).
    public static let defaultLimits = ConformanceSuite.referenceLimits

    /// 800 µm at 120 Hz, inside `defaultLimits`: what `connect` sets unless told otherwise.
    public static let defaultSetpoints = Message.SetSetpoints(depthUm: 800, rateDhz: 1200)

    /// The bytes to send at `now`: raw bytes first, then what the link sends (a retransmission,
    /// the next command, or a heartbeat).
    public mutating func poll(at now: MonotonicInstant) -> [UInt8] {
        let (bytes, events) = link.poll(at: now)
        for case .gaveUp(let message) in events where !HostLink.isStop(message) { gaveUp.append(message.id) }
        guard !pendingRaw.isEmpty else { return bytes }
        defer { pendingRaw.removeAll() }
        return pendingRaw + bytes
    }

    /// Bytes from the pen, arriving at `now`.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant) {
        for case .frame(let frame, let event) in link.receiveFrames(bytes, at: now) {
            if case .ack(let ack) = frame.message {
                acks.append(Ack(time: now, command: MessageID(rawValue: ack.ackedID), seq: ack.ackedSeq, status: ack.status, detail: ack.detail))
            }
            if let event { record(event, at: now) }
        }
    }

    private mutating func record(_ event: HostLink.Event, at now: MonotonicInstant) {
        switch event {
        case .helloReply(let reply): helloReply = reply
        case .limits(let limits): self.limits = limits
        case .status(let status): lastStatus = status
        case .telemetry(let telemetry):
            lastTelemetry = telemetry
            lastTelemetryTime = now
            telemetryFrames += 1
        case .cartridge(let cartridge): cartridges.append(cartridge)
        case .fault(let fault): penFaults.append((now, fault))
        case .log(_, let text): logLines.append(text)
        case .acknowledged, .rejected, .gaveUp: break  // ACKs are recorded from their frames, above
        }
    }

    /// The last ACK for a command, if any.
    public func lastAck(for command: MessageID) -> Ack? { acks.last { $0.command == command } }
}
