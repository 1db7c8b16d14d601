import StippleSafety
import StippleWire

/// The host side of the pen protocol (PROTOCOL.md section 5) as a pure state machine: bytes and
/// time in, bytes and events out. It owns sequencing, stop-and-wait, retransmission, preempting
/// stops, the heartbeat and the pen's sequence gaps; it makes no safety decision of its own —
/// the supervisor feeds its events to the safety core.
///
/// One instance is one link: a reconnect starts a new `HostLink` (nothing of an old link may
/// count towards arming a new one).
public struct HostLink: Sendable {
    /// Something the pen said or the link did, in the order it happened.
    public enum Event: Hashable, Sendable {
        /// The pen answered the command in flight.
        case acknowledged(Message, status: AckStatus, detail: UInt8)
        case helloReply(Message.HelloReply)
        case limits(Message.Limits)
        case status(Message.Status)
        case telemetry(Message.Telemetry)
        case cartridge(Message.Cartridge)
        case fault(Message.Fault)
        case log(LogLevel, String)
        /// A frame that failed the decoder: never acted on (H7).
        case rejected(FrameRejection)
        /// A command went unanswered through every retransmission: the link counts as lost.
        /// Stops are still retransmitted after this, until acknowledged.
        case gaveUp(Message)
    }

    /// One thing `receiveFrames` read: a frame with the event the link made of it, or a
    /// rejected frame. The event is nil for a frame the link does not act on: a stale ACK (the
    /// answer to a duplicate or to an abandoned command) or a host command echoed back.
    public enum Arrival: Hashable, Sendable {
        case frame(Frame, Event?)
        case rejected(FrameRejection)
    }

    /// What the link has seen, for the link-quality figure and the metrics.
    public struct Statistics: Hashable, Sendable {
        public init() {}
        public var framesReceived = 0
        public var framesRejected = 0
        /// Pen frames missing from the pen's sequence numbers.
        public var penFramesLost = 0
        public var retransmissions = 0
        public var commandsGivenUp = 0
        public var commandsSent = 0
    }

    public private(set) var statistics = Statistics()
    /// The deadman the pen holds as far as this host knows: the shorter of the one pushed and
    /// the one read back, the protocol default before either.
    public private(set) var assumedDeadmanMs = ProtocolTiming.deadmanDefaultMs
    /// When the last frame of any kind arrived from the pen.
    public private(set) var lastFrameAt: MonotonicInstant?
    /// Whether a command went unanswered through every retransmission on this link.
    public private(set) var isLost = false
    /// Whether the link sends HEARTBEAT while idle, as PROTOCOL.md section 5 requires. Only a
    /// test of the pen's deadman turns it off (the simulator's scenarios: a host gone silent).
    public var sendsHeartbeats = true
    /// The frame of the last command sent (a heartbeat included), byte for byte: written again,
    /// it is a duplicate the pen must answer but not apply (duplicate-suppression tests).
    public private(set) var lastCommandFrame: [UInt8] = []

    private struct InFlight: Sendable {
        var message: Message
        var wire: [UInt8]
        var seq: UInt8
        var sentAt: MonotonicInstant
        var retries: Int
        var reportedLost: Bool
    }

    private var decoder = FrameDecoder()
    private var queue: [Message] = []
    private var inFlight: InFlight?
    private var nextSeq: UInt8 = 1
    /// When the link last sent a frame: the idle heartbeat counts from it. The flush byte is no
    /// frame (the pen's deadman ignores it), so it does not count.
    private var lastFrameSentAt: MonotonicInstant?
    private var lastPenSeq: UInt8?
    private var flushPending = true

    /// A link opened at `openedAt` sends its first idle heartbeat one period later (the
    /// simulator's rigs, whose clock starts when the pen powers up); without it, at the first poll.
    public init(openedAt: MonotonicInstant? = nil) { lastFrameSentAt = openedAt }

    /// Nothing queued or waiting for an answer.
    public var isIdle: Bool { inFlight == nil && queue.isEmpty }

    /// The command waiting for its ACK, if any.
    public var commandInFlight: Message? { inFlight?.message }

    /// The period of the idle heartbeat: `min(100, deadman_ms / 3)` ms (PROTOCOL.md section 5).
    public var heartbeatPeriod: Duration { .milliseconds(ProtocolTiming.hostHeartbeatPeriodMs(deadmanMs: assumedDeadmanMs)) }

    /// Whether a message stops the needle: it preempts whatever is in flight and is never
    /// given up.
    public static func isStop(_ message: Message) -> Bool {
        switch message {
        case .estop, .motorStop, .disarm: true
        default: false
        }
    }

    /// Stops in the order they must reach the pen: ESTOP before MOTOR_STOP before DISARM.
    private static func stopRank(_ message: Message) -> Int {
        switch message {
        case .estop: 0
        case .motorStop: 1
        case .disarm: 2
        default: 3
        }
    }

    /// Queues a command. ESTOP, MOTOR_STOP and DISARM preempt: the command in flight is
    /// abandoned (unless it is itself a stop at least as urgent), queued ARM and MOTOR_RUN are
    /// dropped, and the stop goes out next.
    public mutating func send(_ message: Message) {
        if case .setLimits(let limits) = message {
            assumedDeadmanMs = min(assumedDeadmanMs, Int(limits.deadmanMs))
        }
        guard Self.isStop(message) else {
            queue.append(message)
            return
        }
        // A stop cancels every ARM and MOTOR_RUN still waiting: one queued behind the command in
        // flight must never reach the pen after the stop that was meant to overtake it.
        queue.removeAll { if case .arm = $0 { true } else if case .motorRun = $0 { true } else { false } }
        let rank = Self.stopRank(message)
        if let flight = inFlight {
            if flight.message.id == message.id { return }  // already going out, and retried until acknowledged
            if Self.stopRank(flight.message) > rank {
                // Abandoned: neither retransmitted nor assumed applied; a stop it was stays queued.
                if Self.isStop(flight.message) { queue.insert(flight.message, at: 0) }
                inFlight = nil
            }
        }
        queue.removeAll { $0.id == message.id }
        let position = queue.firstIndex { Self.stopRank($0) > rank } ?? queue.endIndex
        queue.insert(message, at: position)
    }

    /// The bytes to write at `now` — a retransmission, the next command, or a heartbeat — and
    /// any command given up.
    public mutating func poll(at now: MonotonicInstant) -> (bytes: [UInt8], events: [Event]) {
        var out: [UInt8] = []
        var events: [Event] = []
        if flushPending {
            out.append(0)  // PROTOCOL.md section 6 step 1: end whatever the pen half-received
            flushPending = false
        }
        if var flight = inFlight, now - flight.sentAt >= .milliseconds(ProtocolTiming.ackTimeoutMs) {
            if flight.retries >= ProtocolTiming.commandRetries {
                if !flight.reportedLost {
                    statistics.commandsGivenUp += 1
                    isLost = true
                    events.append(.gaveUp(flight.message))
                    flight.reportedLost = true
                }
                if Self.isStop(flight.message) {
                    flight.sentAt = now
                    statistics.retransmissions += 1
                    out += flight.wire
                    lastFrameSentAt = now
                    inFlight = flight
                } else {
                    inFlight = nil
                }
            } else {
                flight.retries += 1
                flight.sentAt = now
                statistics.retransmissions += 1
                out += flight.wire
                lastFrameSentAt = now
                inFlight = flight
            }
        }
        if sendsHeartbeats, inFlight == nil, queue.isEmpty, lastFrameSentAt.map({ now - $0 >= heartbeatPeriod }) ?? true {
            queue.append(.heartbeat(.init()))
        }
        if inFlight == nil, !queue.isEmpty {
            let message = queue.removeFirst()
            let seq = nextSeq
            nextSeq &+= 1
            let wire = FrameEncoder.encode(Frame(seq: seq, message: message))
            inFlight = InFlight(message: message, wire: wire, seq: seq, sentAt: now, retries: 0, reportedLost: false)
            statistics.commandsSent += 1
            out += wire
            lastCommandFrame = wire
            lastFrameSentAt = now
        }
        return (out, events)
    }

    /// Bytes from the pen, arriving at `now`, as events in order.
    public mutating func receive(_ bytes: some Sequence<UInt8>, at now: MonotonicInstant) -> [Event] {
        var events: [Event] = []
        decode(bytes, at: now) { arrival in
            switch arrival {
            case .frame(_, let event?): events.append(event)
            case .frame(_, nil): break
            case .rejected(let rejection): events.append(.rejected(rejection))
            }
        }
        return events
    }

    /// `receive` for tools that watch the wire itself (the simulator's scripted host, the
    /// conformance suite): the same effect on the link, and every frame with its event.
    public mutating func receiveFrames(_ bytes: some Sequence<UInt8>, at now: MonotonicInstant) -> [Arrival] {
        var arrivals: [Arrival] = []
        decode(bytes, at: now) { arrivals.append($0) }
        return arrivals
    }

    private mutating func decode(_ bytes: some Sequence<UInt8>, at now: MonotonicInstant, _ body: (Arrival) -> Void) {
        // Callers in other modules reach this generic code unspecialised, where iterating a
        // `Sequence` costs witness calls per byte: contiguous bytes are read directly.
        let wasContiguous: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            for byte in buffer { decode(byte, at: now, body) }
        }
        if wasContiguous == nil {
            for byte in bytes { decode(byte, at: now, body) }
        }
    }

    private mutating func decode(_ byte: UInt8, at now: MonotonicInstant, _ body: (Arrival) -> Void) {
        guard let output = decoder.push(byte) else { return }
        switch output {
        case .rejected(let rejection):
            statistics.framesRejected += 1
            body(.rejected(rejection))
        case .frame(let frame):
            statistics.framesReceived += 1
            lastFrameAt = now
            if let last = lastPenSeq, frame.seq != last &+ 1 { statistics.penFramesLost += Int(frame.seq &- last &- 1) }
            lastPenSeq = frame.seq
            body(.frame(frame, event(for: frame)))
        }
    }

    private mutating func event(for frame: Frame) -> Event? {
        switch frame.message {
        case .ack(let ack):
            // Only the ACK of the command in flight counts: matching seq and id (any other is stale).
            guard let flight = inFlight, flight.seq == ack.ackedSeq, flight.message.id.rawValue == ack.ackedID else { return nil }
            inFlight = nil
            if flight.reportedLost { isLost = false }
            return .acknowledged(flight.message, status: ack.status, detail: ack.detail)
        case .helloReply(let reply): return .helloReply(reply)
        case .limits(let limits):
            if limits.limitsCRC != 0 { assumedDeadmanMs = min(assumedDeadmanMs, Int(limits.deadmanMs)) }
            return .limits(limits)
        case .status(let status): return .status(status)
        case .telemetry(let telemetry): return .telemetry(telemetry)
        case .cartridge(let cartridge): return .cartridge(cartridge)
        case .fault(let fault): return .fault(fault)
        case .log(let log): return .log(log.level, log.text.string)
        default: return nil  // a host command echoed back, or a message this host ignores (counted as received)
        }
    }
}
