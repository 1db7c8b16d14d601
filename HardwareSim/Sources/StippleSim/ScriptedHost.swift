import StippleWire

/// A minimal host side of the protocol for scenarios and tests: stop-and-wait commands with
/// retransmission, preempting stops, heartbeats, and a record of everything the pen said.
/// It follows PROTOCOL.md section 5 to the letter so that the pen is tested against a correct
/// host; it makes no safety decisions of its own (that is the daemon's job).
public struct ScriptedHost: Sendable {
    public struct Ack: Hashable, Sendable {
        public var time: MonotonicInstant
        public var command: MessageID
        public var seq: UInt8
        public var status: AckStatus
        public var detail: UInt8
    }

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
    public private(set) var rejectedFrames = 0
    public private(set) var penFramesLost = 0
    public private(set) var retransmissions = 0
    /// Commands abandoned after the retries ran out (the link counts as lost).
    public private(set) var gaveUp: [MessageID] = []
    /// The limits this host pushed last, for the ARM checksum.
    public private(set) var pushedLimits: Message.SetLimits?
    public var heartbeatsEnabled = true

    private var queue: [Message] = []
    private var inFlight: (message: Message, wire: [UInt8], seq: UInt8, sentAt: MonotonicInstant, retries: Int)?
    private var nextSeq: UInt8 = 1
    private var lastSend = MonotonicInstant.zero
    private var pendingRaw: [UInt8] = []
    private var lastWire: [UInt8] = []
    private var decoder = FrameDecoder()
    private var lastPenSeq: UInt8?

    public init() {}

    public var isIdle: Bool { inFlight == nil && queue.isEmpty }

    /// The deadman this host must assume the pen holds: the shorter of the one it pushed and the
    /// one the pen read back (the default before either).
    public var assumedDeadmanMs: Int {
        // Asked on every poll: no array, no allocation.
        switch (pushedLimits?.deadmanMs, limits?.deadmanMs) {
        case (let pushed?, let read?): Int(min(pushed, read))
        case (let only?, nil), (nil, let only?): Int(only)
        case (nil, nil): ProtocolTiming.deadmanDefaultMs
        }
    }

    /// The longest gap this host leaves between frames: `min(100, deadman_ms / 3)` ms (PROTOCOL.md section 5).
    public var heartbeatPeriod: Duration { ProtocolTiming.hostHeartbeatPeriod(deadmanMs: assumedDeadmanMs) }

    /// Queues a command. ESTOP, MOTOR_STOP and DISARM preempt whatever is in flight; the
    /// limits of a SET_LIMITS are kept for the checksum of the next ARM.
    public mutating func send(_ message: Message) {
        if case .setLimits(let limits) = message { pushedLimits = limits }
        switch message {
        case .estop, .motorStop, .disarm:
            inFlight = nil
            queue.insert(message, at: 0)
        default:
            queue.append(message)
        }
    }

    /// Sends the last command's bytes again, unchanged: a duplicate the pen must not apply.
    public mutating func repeatLastCommand() { pendingRaw += lastWire }

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
    public static let defaultLimits = Message.SetLimits(
        depthMinUm: 400, depthMaxUm: 1000, depthTripUm: 1300, rateMinDhz: 500, rateMaxDhz: 1500,
        rateStallDhz: 400, rateRunawayDhz: 1600, deadmanMs: 300)

    /// 800 µm at 120 Hz, inside `defaultLimits`: what `connect` sets unless told otherwise.
    public static let defaultSetpoints = Message.SetSetpoints(depthUm: 800, rateDhz: 1200)

    /// The bytes to send at `now`: raw bytes, a retransmission, the next command, or a heartbeat.
    public mutating func poll(at now: MonotonicInstant) -> [UInt8] {
        var out = pendingRaw
        pendingRaw.removeAll()
        if var flight = inFlight, now >= flight.sentAt + ProtocolTiming.ackTimeout {
            let isStop = switch flight.message {
            case .estop, .motorStop, .disarm: true
            default: false
            }
            if flight.retries >= ProtocolTiming.commandRetries && !isStop {
                gaveUp.append(flight.message.id)
                inFlight = nil
            } else {
                flight.retries += 1
                flight.sentAt = now
                retransmissions += 1
                out += flight.wire
                inFlight = flight
            }
        }
        if inFlight == nil, queue.isEmpty, heartbeatsEnabled,
           now >= lastSend + heartbeatPeriod {
            queue.append(.heartbeat(.init()))
        }
        if inFlight == nil, !queue.isEmpty {
            let message = queue.removeFirst()
            let seq = nextSeq
            nextSeq &+= 1
            let wire = FrameEncoder.encode(Frame(seq: seq, message: message))
            inFlight = (message, wire, seq, now, 0)
            lastWire = wire
            out += wire
        }
        if !out.isEmpty { lastSend = now }
        return out
    }

    /// Bytes from the pen, arriving at `now`.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant) {
        for byte in bytes {
            guard let output = decoder.push(byte) else { continue }
            switch output {
            case .rejected:
                rejectedFrames += 1
            case .frame(let frame):
                if let last = lastPenSeq, frame.seq != last &+ 1 { penFramesLost += Int(frame.seq &- last &- 1) }
                lastPenSeq = frame.seq
                record(frame, at: now)
            }
        }
    }

    private mutating func record(_ frame: Frame, at now: MonotonicInstant) {
        switch frame.message {
        case .ack(let ack):
            let command = MessageID(rawValue: ack.ackedID)
            acks.append(Ack(time: now, command: command, seq: ack.ackedSeq, status: ack.status, detail: ack.detail))
            if let flight = inFlight, flight.seq == ack.ackedSeq, flight.message.id.rawValue == ack.ackedID {
                inFlight = nil
            }
        case .helloReply(let reply): helloReply = reply
        case .limits(let limits): self.limits = limits
        case .status(let status): lastStatus = status
        case .telemetry(let telemetry):
            lastTelemetry = telemetry
            lastTelemetryTime = now
            telemetryFrames += 1
        case .cartridge(let cartridge): cartridges.append(cartridge)
        case .fault(let fault): penFaults.append((now, fault))
        case .log(let log): logLines.append(log.text.string)
        default: break
        }
    }

    /// The last ACK for a command, if any.
    public func lastAck(for command: MessageID) -> Ack? { acks.last { $0.command == command } }
}
