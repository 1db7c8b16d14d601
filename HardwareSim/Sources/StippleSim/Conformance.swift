import StippleWire

/// A byte link to a pen: the in-process simulator, a pty, or a real pen's serial port.
public protocol PenPort: AnyObject {
    func write(_ bytes: [UInt8]) throws
    /// Whatever arrives within `timeoutMs` (possibly nothing).
    func read(timeoutMs: Int) throws -> [UInt8]
}

/// The in-process simulator seen as a port, on the virtual clock: reading waits in simulated
/// time, so the whole conformance suite runs in milliseconds.
public final class SimulatedPenPort: PenPort {
    public private(set) var pen: PenSimulator
    private var now: SimTime = 0

    public init(config: PenConfig = PenConfig(), seed: UInt64 = 1) {
        pen = PenSimulator(config: config, seed: seed)
    }

    public func write(_ bytes: [UInt8]) throws { pen.receive(bytes) }

    public func read(timeoutMs: Int) throws -> [UInt8] {
        let deadline = now + SimTime(timeoutMs) * 1000
        var out = pen.takeOutput()
        while out.isEmpty && now < deadline {
            now += 1000
            pen.advance(to: now)
            out = pen.takeOutput()
        }
        return out
    }
}

/// The protocol conformance suite: every message and every error path of PROTOCOL.md, run
/// against any `PenPort`. Written for real firmware as much as for the simulator: it needs
/// nothing but the link (a cartridge in the slot and the pedal released).
public struct ConformanceSuite {
    public struct Check: Sendable, CustomStringConvertible {
        public var name: String
        public var passed: Bool
        public var detail: String
        public var description: String { "\(passed ? "ok  " : "FAIL") \(name)\(detail.isEmpty ? "" : " — \(detail)")" }
    }

    let port: any PenPort
    var decoder = FrameDecoder()
    var seq: UInt8 = 0x40
    public private(set) var checks: [Check] = []
    /// How long to wait for an answer; real pens need real time, the simulator takes virtual time.
    let replyTimeoutMs: Int

    public init(port: any PenPort, replyTimeoutMs: Int = 200) {
        self.port = port
        self.replyTimeoutMs = replyTimeoutMs
    }

    public var passed: Bool { checks.allSatisfy(\.passed) }

    // MARK: - Exchange helpers

    mutating func nextSeq() -> UInt8 {
        seq &+= 1
        return seq
    }

    /// Sends a command with a fresh seq and collects frames until its ACK (and data reply).
    mutating func command(_ message: Message, reply: MessageID? = nil) throws -> (ack: Message.Ack?, data: Message?, seq: UInt8) {
        let seq = nextSeq()
        try port.write(FrameEncoder.encode(Frame(seq: seq, message: message)))
        return try awaitAck(seq: seq, id: message.id.rawValue, reply: reply)
    }

    mutating func awaitAck(seq: UInt8, id: UInt8, reply: MessageID?) throws -> (ack: Message.Ack?, data: Message?, seq: UInt8) {
        var ack: Message.Ack?
        var data: Message?
        try collect { frame in
            if case .ack(let a) = frame.message, a.ackedSeq == seq, a.ackedID == id { ack = a }
            if let reply, ack != nil, frame.message.id == reply { data = frame.message }
            // HELLO_REPLY follows every HELLO, even a refused one; other replies only success.
            return ack != nil && (reply == nil || data != nil || (ack?.status != .ok && reply != .helloReply))
        }
        return (ack, data, seq)
    }

    /// Reads frames until `done` says so or the timeout passes; returns whether it was satisfied.
    @discardableResult
    mutating func collect(timeoutMs: Int? = nil, _ done: (Frame) -> Bool) throws -> Bool {
        var waited = 0
        let limit = timeoutMs ?? replyTimeoutMs
        while waited <= limit {
            let bytes = try port.read(timeoutMs: 10)
            for byte in bytes {
                if case .frame(let frame)? = decoder.push(byte) {
                    if done(frame) { return true }
                }
            }
            if bytes.isEmpty { waited += 10 }
        }
        return false
    }

    mutating func check(_ name: String, _ passed: Bool, _ detail: @autoclosure () -> String = "") {
        checks.append(Check(name: name, passed: passed, detail: passed ? "" : detail()))
    }

    mutating func drain() throws { _ = try collect(timeoutMs: 30) { _ in false } }

    // MARK: - The suite

    public mutating func run() throws {
        // The longest deadman the protocol allows: over a real link on a busy machine the
        // suite's own pauses must not trip it in the middle of the arming checks.
        var limits = ScriptedHost.defaultLimits
        limits.deadmanMs = 1000
        let expectedCRC = limits.checksum

        // Handshake and versions.
        try drain()
        var r = try command(.hello(.init(protoMajor: 9, protoMinor: 0)), reply: .helloReply)
        check("HELLO with another major is refused with version_mismatch", r.ack?.status == .versionMismatch, "ack \(String(describing: r.ack))")
        if case .helloReply(let reply)? = r.data {
            check("a refused HELLO still gets HELLO_REPLY naming the pen's version", Int(reply.protoMajor) == Int(r.ack?.detail ?? 255))
        } else {
            check("a refused HELLO still gets HELLO_REPLY naming the pen's version", false, "no HELLO_REPLY")
        }
        r = try command(.setLimits(limits))
        check("commands other than HELLO/ESTOP/GET_STATUS/IDENTIFY need the handshake (not_ready)", r.ack?.status == .notReady, "ack \(String(describing: r.ack))")
        r = try command(.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor)), reply: .helloReply)
        check("HELLO with our major is accepted", r.ack?.status == .ok, "ack \(String(describing: r.ack))")
        if case .helloReply(let reply)? = r.data {
            check("HELLO_REPLY names protocol \(ProtocolVersion.major).x, a serial and a depth ceiling <= 2000 um",
                  reply.protoMajor == ProtocolVersion.major && !reply.serial.isEmpty && reply.depthCeilingUm <= 2000, "\(Message.helloReply(reply))")
        } else {
            check("HELLO_REPLY follows the ACK", false, "none")
        }
        r = try command(.heartbeat(.init()))
        check("HEARTBEAT is acknowledged ok", r.ack?.status == .ok)

        // Limits.
        r = try command(.getLimits(.init()), reply: .limits)
        if case .limits(let l)? = r.data {
            check("before SET_LIMITS, LIMITS reports none (checksum 0)", l.limitsCRC == 0, "\(Message.limits(l))")
        } else {
            check("GET_LIMITS answers LIMITS", false, "none")
        }
        var bad = limits
        bad.depthTripUm = 900
        r = try command(.setLimits(bad))
        check("inconsistent limits (trip below the band) are refused with bad_field", r.ack?.status == .badField, "ack \(String(describing: r.ack))")
        r = try command(.setLimits(limits), reply: .limits)
        check("SET_LIMITS is accepted", r.ack?.status == .ok)
        if case .limits(let l)? = r.data {
            check("LIMITS reads back the same limits with checksum CRC-32C of the 16 bytes", l.limitsCRC == expectedCRC && l.depthTripUm == limits.depthTripUm,
                  "crc \(l.limitsCRC), expected \(expectedCRC)")
        } else {
            check("SET_LIMITS is followed by LIMITS", false, "none")
        }

        // Setpoints.
        r = try command(.setSetpoints(.init(depthUm: 1100, rateDhz: 1200)))
        check("a setpoint outside the band is refused (out_of_limits, field 0)", r.ack?.status == .outOfLimits && r.ack?.detail == 0, "ack \(String(describing: r.ack))")
        r = try command(.setSetpoints(.init(depthUm: 800, rateDhz: 1200)))
        check("a setpoint inside the limits is accepted", r.ack?.status == .ok)

        // Status, identify, cartridge.
        r = try command(.getStatus(.init()), reply: .status)
        if case .status(let status)? = r.data {
            check("STATUS reports idle with the setpoint", status.state == .idle && status.depthSetpointUm == 800, "\(Message.status(status))")
        } else {
            check("GET_STATUS answers STATUS", false, "none")
        }
        r = try command(.identify(.init(durationMs: 500)))
        check("IDENTIFY is acknowledged ok", r.ack?.status == .ok)
        r = try command(.readCartridge(.init()), reply: .cartridge)
        check("READ_CARTRIDGE answers CARTRIDGE (or no_cartridge)", (r.ack?.status == .ok && r.data != nil) || r.ack?.status == .noCartridge)

        // Arming.
        r = try command(.motorRun(.init()))
        check("MOTOR_RUN while disarmed is refused (not_armed)", r.ack?.status == .notArmed, "ack \(String(describing: r.ack))")
        r = try command(.arm(.init(limitsCRC: expectedCRC ^ 1)))
        check("ARM with a checksum other than the pen's is refused (limits_mismatch)", r.ack?.status == .limitsMismatch, "ack \(String(describing: r.ack))")
        r = try command(.arm(.init(limitsCRC: expectedCRC)))
        check("ARM with the right checksum is accepted", r.ack?.status == .ok, "ack \(String(describing: r.ack))")
        r = try command(.setLimits(limits))
        check("SET_LIMITS while armed is refused (armed_locked)", r.ack?.status == .armedLocked, "ack \(String(describing: r.ack))")
        r = try command(.motorRun(.init()))
        check("MOTOR_RUN while armed is accepted", r.ack?.status == .ok)
        r = try command(.motorStop(.init()))
        check("MOTOR_STOP is accepted", r.ack?.status == .ok)
        r = try command(.disarm(.init()))
        check("DISARM is accepted", r.ack?.status == .ok)

        // Duplicates: the same bytes again are answered again, identically.
        let dupSeq = nextSeq()
        let wire = FrameEncoder.encode(Frame(seq: dupSeq, message: .setSetpoints(.init(depthUm: 700, rateDhz: 1100))))
        try port.write(wire)
        let first = try awaitAck(seq: dupSeq, id: MessageID.setSetpoints.rawValue, reply: nil)
        try port.write(wire)
        let second = try awaitAck(seq: dupSeq, id: MessageID.setSetpoints.rawValue, reply: nil)
        check("a retransmitted command is acknowledged again with the same status", first.ack != nil && first.ack == second.ack,
              "\(String(describing: first.ack)) then \(String(describing: second.ack))")

        // Error paths.
        let unknownSeq = nextSeq()
        try port.write(FrameEncoder.encode(id: 0x3F, seq: unknownSeq, payload: []))
        let unknown = try awaitAck(seq: unknownSeq, id: 0x3F, reply: nil)
        check("an unknown command id is answered unknown_message", unknown.ack?.status == .unknownMessage, "ack \(String(describing: unknown.ack))")
        let shortSeq = nextSeq()
        try port.write(FrameEncoder.encode(id: MessageID.hello.rawValue, seq: shortSeq, payload: [1]))
        let short = try awaitAck(seq: shortSeq, id: MessageID.hello.rawValue, reply: nil)
        check("a short payload is answered bad_length with the length needed", short.ack?.status == .badLength && short.ack?.detail == 2, "ack \(String(describing: short.ack))")
        let fieldSeq = nextSeq()
        try port.write(FrameEncoder.encode(id: MessageID.setSetpoints.rawValue, seq: fieldSeq, payload: [0xFF, 0xFF, 0xB0, 0x04]))
        let field = try awaitAck(seq: fieldSeq, id: MessageID.setSetpoints.rawValue, reply: nil)
        check("a field outside its protocol range is answered bad_field with its index", field.ack?.status == .badField && field.ack?.detail == 0, "ack \(String(describing: field.ack))")
        let crcSeq = nextSeq()
        var corrupt = FrameEncoder.encode(id: MessageID.heartbeat.rawValue, seq: crcSeq, payload: [])
        corrupt[3] ^= 0x10
        try port.write(corrupt)
        let silent = try awaitAck(seq: crcSeq, id: MessageID.heartbeat.rawValue, reply: nil)
        check("a frame with a bad CRC gets no answer", silent.ack == nil)
        try port.write([0x13, 0x37, 0xFF, 0x42])
        r = try command(.heartbeat(.init()))
        check("after garbage on the line the next frame is understood", r.ack?.status == .ok)

        // E-stop.
        r = try command(.estop(.init()))
        check("ESTOP is acknowledged ok", r.ack?.status == .ok)
        r = try command(.estop(.init()))
        check("ESTOP is idempotent", r.ack?.status == .ok)
        r = try command(.getStatus(.init()), reply: .status)
        if case .status(let status)? = r.data {
            check("after ESTOP the pen is faulted with estop latched", status.state == .faulted && status.fault == .estop && status.flags.contains(.estopLatched), "\(Message.status(status))")
        }
        r = try command(.arm(.init(limitsCRC: expectedCRC)))
        check("ARM while e-stop is latched is refused (estop_latched)", r.ack?.status == .estopLatched, "ack \(String(describing: r.ack))")
        r = try command(.clearFault(.init()))
        check("CLEAR_FAULT clears the e-stop once its cause is gone", r.ack?.status == .ok)
        r = try command(.getStatus(.init()), reply: .status)
        if case .status(let status)? = r.data {
            check("after CLEAR_FAULT the pen is idle and disarmed", status.state == .idle && !status.flags.contains(.armed), "\(Message.status(status))")
        }

        // Periodic traffic and sequence numbers.
        var telemetry = 0
        var statuses = 0
        var lastSeq: UInt8?
        var gaps = 0
        try collect(timeoutMs: 1300) { frame in
            if case .telemetry = frame.message { telemetry += 1 }
            if case .status = frame.message { statuses += 1 }
            if let last = lastSeq, frame.seq != last &+ 1 { gaps += 1 }
            lastSeq = frame.seq
            return false
        }
        check("idle TELEMETRY arrives about every 100 ms", telemetry >= 9, "\(telemetry) frames in 1.3 s")
        check("STATUS arrives at least every second", statuses >= 1, "\(statuses) in 1.3 s")
        check("pen frames are numbered consecutively", gaps == 0, "\(gaps) gaps")
    }
}
