import StippleLink
import StippleTransport
import StippleWire

/// The protocol conformance suite: every message and every error path of PROTOCOL.md, run
/// against any `PenTransport`. Written for real firmware as much as for the simulator: it needs
/// nothing but the link (a cartridge in the slot, the pedal and the e-stop button released).
///
/// Its host side is the daemon's own `HostLink` (PROTOCOL.md section 5: stop-and-wait, a
/// command without an ACK resent every 50 ms at most five times, HEARTBEAT while idle), so the
/// pen is held to the host it will meet. Only the frames the suite breaks on purpose (an
/// unknown id, a short payload, a field out of range, a bad CRC, garbage, a duplicate) go
/// around the link, as raw bytes.
public struct ConformanceSuite {
    public struct Check: Sendable, CustomStringConvertible {
        public var name: String
        public var passed: Bool
        public var detail: String
        public var description: String { "\(passed ? "ok  " : "FAIL") \(name)\(detail.isEmpty ? "" : " — \(detail)")" }
    }

    /// What the pen answered a command: its ACK, and the data reply after it, if any.
    struct Answer {
        var ack: Message.Ack?
        var data: Message?
    }

    let transport: any PenTransport
    /// The pen's clock: CLOCK_MONOTONIC for a device, virtual time for the in-process pen.
    let clock: () -> MonotonicInstant
    var link = HostLink()
    /// The seq of the last frame the suite broke on purpose. None of those passes the pen's
    /// decoder, so none meets its duplicate filter, whatever the link's own numbers are.
    var rawSeq: UInt8 = 0x80
    public private(set) var checks: [Check] = []
    /// Every FAULT the pen sent while the suite listened.
    public private(set) var faults: [Message.Fault] = []
    /// How many frames of each message the suite received.
    public private(set) var received: [MessageID: Int] = [:]
    /// Every frame the suite's decoder rejected.
    public private(set) var rejections: [FrameRejection] = []
    /// How long to wait for an answer; real pens need real time, the simulator takes virtual time.
    let replyTimeout: Duration

    /// Against a device in real time: a real pen, or a pty served by `stipple-sim serve --pty`.
    public init(transport: any PenTransport, replyTimeout: Duration = .milliseconds(200)) {
        self.init(transport: transport, clock: MonotonicClock.now, replyTimeout: replyTimeout)
    }

    /// Against a pen on a clock of its own (the simulator's virtual time: `StippleSim` adds
    /// `init(simulated:)`). The suite itself knows nothing of the simulator, so that a tool can
    /// hold a real pen to the protocol without linking one.
    public init(transport: any PenTransport, clock: @escaping () -> MonotonicInstant, replyTimeout: Duration) {
        self.transport = transport
        self.clock = clock
        self.replyTimeout = replyTimeout
    }

    /// The limit set the protocol's tests push (400–1000 µm, trip at 1300, 50–150 Hz, stall 40,
    /// runaway 160, a 300 ms deadman): the suite's, and the simulator's scripted host's too.
    public static let referenceLimits = Message.SetLimits(
        depthMinUm: 400, depthMaxUm: 1000, depthTripUm: 1300, rateMinDhz: 500, rateMaxDhz: 1500,
        rateStallDhz: 400, rateRunawayDhz: 1600, deadmanMs: 300)

    public var passed: Bool { checks.allSatisfy(\.passed) }

    var now: MonotonicInstant { clock() }

    // MARK: - Exchange helpers

    /// Sends a command through the link (after the one in flight: stop-and-wait) and collects
    /// frames until its ACK and data reply.
    mutating func command(_ message: Message, reply: MessageID? = nil) throws -> Answer {
        try collect(untilIdle: true) { _, _ in false }
        link.send(message)
        var answer = Answer()
        try collect { frame, event in
            if case .acknowledged(let acked, _, _)? = event, acked == message, case .ack(let ack) = frame.message { answer.ack = ack }
            if let reply, answer.ack != nil, frame.message.id == reply { answer.data = frame.message }
            // HELLO_REPLY follows every HELLO, even a refused one; other replies only success.
            return answer.ack != nil && (reply == nil || answer.data != nil || (answer.ack?.status != .ok && reply != .helloReply))
        }
        return answer
    }

    /// Writes bytes as they are, around the link, once nothing is in flight.
    mutating func writeRaw(_ bytes: [UInt8]) throws {
        try collect(untilIdle: true) { _, _ in false }
        try transport.write(bytes)
    }

    /// A frame broken on purpose (`damage` may break it further): written raw, then frames
    /// collected until an ACK names its seq and id.
    mutating func rawCommand(id: UInt8, payload: [UInt8], damage: (inout [UInt8]) -> Void = { _ in }) throws -> Message.Ack? {
        rawSeq &+= 1
        var wire = FrameEncoder.encode(id: id, seq: rawSeq, payload: payload)
        damage(&wire)
        try writeRaw(wire)
        return try awaitAck(seq: rawSeq, id: id)
    }

    /// Collects frames until an ACK names `seq` and `id`.
    mutating func awaitAck(seq: UInt8, id: UInt8) throws -> Message.Ack? {
        var ack: Message.Ack?
        try collect { frame, _ in
            if case .ack(let a) = frame.message, a.ackedSeq == seq, a.ackedID == id { ack = a }
            return ack != nil
        }
        return ack
    }

    /// Reads frames until `done` says so (or, with `untilIdle`, the link has nothing queued or
    /// in flight) or the timeout passes; returns whether it was satisfied. Meanwhile the link
    /// does what a host must: it resends an unanswered command and keeps the deadman fed. A
    /// command it gives up on simply gets no answer, and the check that sent it fails.
    @discardableResult
    mutating func collect(timeout: Duration? = nil, untilIdle: Bool = false, _ done: (Frame, HostLink.Event?) -> Bool) throws -> Bool {
        let deadline = now + (timeout ?? replyTimeout)
        while now <= deadline {
            if untilIdle && link.isIdle { return true }
            let bytes = link.poll(at: now).bytes
            if !bytes.isEmpty { try transport.write(bytes) }
            let input = try transport.read(timeout: .milliseconds(10))
            // Every frame of the read is counted, also those after the one that satisfies `done`
            // (a data reply often arrives in the same read as its ACK).
            var satisfied = false
            for arrival in link.receiveFrames(input, at: now) {
                switch arrival {
                case .frame(let frame, let event):
                    if case .fault(let fault) = frame.message { faults.append(fault) }
                    received[frame.message.id, default: 0] += 1
                    if !satisfied && done(frame, event) { satisfied = true }
                case .rejected(let rejection):
                    rejections.append(rejection)
                }
            }
            if satisfied { return true }
        }
        return false
    }

    mutating func check(_ name: String, _ passed: Bool, _ detail: @autoclosure () -> String = "") {
        checks.append(Check(name: name, passed: passed, detail: passed ? "" : detail()))
    }

    mutating func drain(_ time: Duration = .milliseconds(30)) throws { _ = try collect(timeout: time) { _, _ in false } }

    /// GET_STATUS and its STATUS.
    mutating func status() throws -> Message.Status? {
        if case .status(let status)? = try command(.getStatus(.init()), reply: .status).data { return status }
        return nil
    }

    // MARK: - The suite

    public mutating func run() throws {
        // The longest deadman the protocol allows: over a real link on a busy machine the
        // suite's own pauses must not trip it in the middle of the arming checks.
        var limits = Self.referenceLimits
        limits.deadmanMs = 1000
        let expectedCRC = limits.checksum
        let ours = Message.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor))
        let setpoints = Message.setSetpoints(.init(depthUm: 800, rateDhz: 1200))

        // Handshake and versions.
        try drain()
        let resetsAtStart = faults.filter { $0.code == .reset }.count
        var r = try command(.hello(.init(protoMajor: 9, protoMinor: 0)), reply: .helloReply)
        check("HELLO with another major is refused with version_mismatch", r.ack?.status == .versionMismatch, "ack \(String(describing: r.ack))")
        if case .helloReply(let reply)? = r.data {
            check("a refused HELLO still gets HELLO_REPLY naming the pen's version", Int(reply.protoMajor) == Int(r.ack?.detail ?? 255))
        } else {
            check("a refused HELLO still gets HELLO_REPLY naming the pen's version", false, "no HELLO_REPLY")
        }
        r = try command(.setLimits(limits))
        check("commands outside the boot column need the handshake (not_ready)", r.ack?.status == .notReady, "ack \(String(describing: r.ack))")
        let rejectedBefore = rejections.count
        r = try command(ours, reply: .helloReply)
        check("HELLO with our major is accepted", r.ack?.status == .ok, "ack \(String(describing: r.ack))")
        var ceiling = Int(FirmwareAbsoluteLimits.depthCeilingUm)
        if case .helloReply(let reply)? = r.data {
            ceiling = Int(reply.depthCeilingUm)
            check("HELLO_REPLY names protocol \(ProtocolVersion.major).x and a depth ceiling <= 2000 um",
                  reply.protoMajor == ProtocolVersion.major && reply.depthCeilingUm <= 2000, "\(Message.helloReply(reply))")
        } else {
            check("HELLO_REPLY follows the ACK", false, "none")
        }
        let emptySerial = rejections[rejectedBefore...].contains { $0.messageID == .helloReply && $0.field == "serial" }
        if case .helloReply(let reply)? = r.data {
            check("HELLO_REPLY carries a non-empty serial", !reply.serial.isEmpty, "\(Message.helloReply(reply))")
        } else {
            check("HELLO_REPLY carries a non-empty serial", false, emptySerial ? "HELLO_REPLY with an empty serial (rejected as bad_field)" : "no HELLO_REPLY")
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
        // Rule 9: each relation alone broken; the detail is the lower field index of the relation.
        var relations: [(String, UInt8, (inout Message.SetLimits) -> Void)] = [
            ("depth_min_um < depth_max_um", 0, { $0.depthMinUm = $0.depthMaxUm }),
            ("depth_max_um <= depth_trip_um", 1, { $0.depthTripUm = $0.depthMaxUm - 1 }),
            ("depth_trip_um <= the depth ceiling", 2, { $0.depthTripUm = UInt16(ceiling + 1) }),
            ("rate_stall_dhz < rate_min_dhz", 3, { $0.rateStallDhz = $0.rateMinDhz }),
            ("rate_min_dhz <= rate_max_dhz", 3, { $0.rateMaxDhz = $0.rateMinDhz - 1 }),
            ("rate_max_dhz < rate_runaway_dhz", 4, { $0.rateMaxDhz = $0.rateRunawayDhz }),
        ]
        if ceiling < Int(limits.depthMaxUm) { relations.remove(at: 2) }  // no limit set can reach the ceiling relation alone
        for (relation, index, breakIt) in relations {
            var bad = limits
            breakIt(&bad)
            let limitsBefore = received[.limits, default: 0]
            r = try command(.setLimits(bad), reply: .limits)
            try drain()
            let extraLimits = received[.limits, default: 0] - limitsBefore
            check("SET_LIMITS breaking \(relation) is refused bad_field, detail \(index), with no LIMITS",
                  r.ack?.status == .badField && r.ack?.detail == index && extraLimits == 0,
                  "ack \(String(describing: r.ack)), \(extraLimits) LIMITS")
        }
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
        r = try command(setpoints)
        check("a setpoint inside the limits is accepted", r.ack?.status == .ok)

        // Status, identify, cartridge.
        if let status = try status() {
            check("STATUS reports idle with the setpoint", status.state == .idle && status.depthSetpointUm == 800, "\(Message.status(status))")
        } else {
            check("GET_STATUS answers STATUS", false, "none")
        }
        r = try command(.identify(.init(durationMs: 500)))
        check("IDENTIFY is acknowledged ok", r.ack?.status == .ok)
        r = try command(.readCartridge(.init()), reply: .cartridge)
        check("READ_CARTRIDGE answers CARTRIDGE (or no_cartridge)", (r.ack?.status == .ok && r.data != nil) || r.ack?.status == .noCartridge)

        // An accepted HELLO keeps the limits and clears the setpoints (rule 12).
        r = try command(ours, reply: .helloReply)
        if case .helloReply(let reply)? = r.data {
            check("an accepted HELLO keeps the limits (HELLO_REPLY limits_crc)", r.ack?.status == .ok && reply.limitsCRC == expectedCRC, "\(Message.helloReply(reply))")
        } else {
            check("an accepted HELLO keeps the limits (HELLO_REPLY limits_crc)", false, "no HELLO_REPLY")
        }
        let afterHello = try status()
        r = try command(.arm(.init(limitsCRC: expectedCRC)))
        check("an accepted HELLO clears the setpoints: ARM needs a fresh SET_SETPOINTS (no_limits)",
              afterHello?.depthSetpointUm == 0 && afterHello?.rateSetpointDhz == 0 && r.ack?.status == .noLimits,
              "\(afterHello.map { Message.status($0).description } ?? "no STATUS"), ack \(String(describing: r.ack))")
        r = try command(setpoints)

        // Arming.
        r = try command(.motorRun(.init()))
        check("MOTOR_RUN while disarmed is refused (not_armed)", r.ack?.status == .notArmed, "ack \(String(describing: r.ack))")
        r = try command(.arm(.init(limitsCRC: expectedCRC ^ 1)))
        check("ARM with a checksum other than the pen's is refused (limits_mismatch)", r.ack?.status == .limitsMismatch, "ack \(String(describing: r.ack))")
        r = try command(.arm(.init(limitsCRC: expectedCRC)))
        check("ARM with the right checksum is accepted", r.ack?.status == .ok, "ack \(String(describing: r.ack))")
        r = try command(.setLimits(limits))
        check("SET_LIMITS while armed is refused (armed_locked)", r.ack?.status == .armedLocked, "ack \(String(describing: r.ack))")
        r = try command(.arm(.init(limitsCRC: expectedCRC)))
        let stillArmed = try status()
        check("ARM while armed with the same checksum is ok and changes nothing", r.ack?.status == .ok && stillArmed?.state == .armed,
              "ack \(String(describing: r.ack)), \(stillArmed.map { Message.status($0).description } ?? "no STATUS")")
        r = try command(.motorRun(.init()))
        check("MOTOR_RUN while armed is accepted", r.ack?.status == .ok)
        r = try command(.motorStop(.init()))
        check("MOTOR_STOP is accepted", r.ack?.status == .ok)
        r = try command(.arm(.init(limitsCRC: expectedCRC ^ 1)))
        let disarmed = try status()
        check("ARM while armed with another checksum is refused (limits_mismatch) and disarms",
              r.ack?.status == .limitsMismatch && disarmed?.state == .idle && disarmed?.flags.contains(.armed) == false,
              "ack \(String(describing: r.ack)), \(disarmed.map { Message.status($0).description } ?? "no STATUS")")
        r = try command(.disarm(.init()))
        check("DISARM is accepted", r.ack?.status == .ok)

        // Duplicates: the link's own bytes again (same seq) are answered again, identically.
        let first = try command(.setSetpoints(.init(depthUm: 700, rateDhz: 1100))).ack
        try writeRaw(link.lastCommandFrame)
        let second = try first.flatMap { try awaitAck(seq: $0.ackedSeq, id: $0.ackedID) }
        check("a retransmitted command is acknowledged again with the same status", first != nil && first == second,
              "\(String(describing: first)) then \(String(describing: second))")

        // Error paths.
        let unknown = try rawCommand(id: 0x3F, payload: [])
        check("an unknown command id is answered unknown_message", unknown?.status == .unknownMessage, "ack \(String(describing: unknown))")
        let short = try rawCommand(id: MessageID.hello.rawValue, payload: [1])
        check("a short payload is answered bad_length with the length needed", short?.status == .badLength && short?.detail == 2, "ack \(String(describing: short))")
        let field = try rawCommand(id: MessageID.setSetpoints.rawValue, payload: [0xFF, 0xFF, 0xB0, 0x04])
        check("a field outside its protocol range is answered bad_field with its index", field?.status == .badField && field?.detail == 0, "ack \(String(describing: field))")
        let silent = try rawCommand(id: MessageID.heartbeat.rawValue, payload: []) { $0[3] ^= 0x10 }
        check("a frame with a bad CRC gets no answer", silent == nil)
        try writeRaw([0x13, 0x37, 0xFF, 0x42])
        r = try command(.heartbeat(.init()))
        check("after garbage on the line the next frame is understood", r.ack?.status == .ok)

        // E-stop.
        r = try command(setpoints)
        var faultsBefore = faults.count
        r = try command(.estop(.init()))
        try drain()
        check("ESTOP is acknowledged ok", r.ack?.status == .ok)
        var newFaults = faults[faultsBefore...].map(\.code)
        check("ESTOP sends one FAULT estop", newFaults == [.estop], "\(newFaults)")
        faultsBefore = faults.count
        r = try command(.estop(.init()))
        try drain()
        check("ESTOP is idempotent", r.ack?.status == .ok)
        newFaults = faults[faultsBefore...].map(\.code)
        check("a repeated ESTOP sends no second FAULT", newFaults.isEmpty, "\(newFaults)")
        if let status = try status() {
            check("after ESTOP the pen is faulted with estop latched", status.state == .faulted && status.fault == .estop && status.flags.contains(.estopLatched), "\(Message.status(status))")
        }
        r = try command(.arm(.init(limitsCRC: expectedCRC)))
        check("ARM while e-stop is latched is refused (estop_latched)", r.ack?.status == .estopLatched, "ack \(String(describing: r.ack))")
        r = try command(.motorRun(.init()))
        check("MOTOR_RUN while e-stop is latched is refused (estop_latched)", r.ack?.status == .estopLatched, "ack \(String(describing: r.ack))")
        r = try command(.clearFault(.init()))
        check("CLEAR_FAULT clears the e-stop once its cause is gone", r.ack?.status == .ok)
        if let status = try status() {
            check("after CLEAR_FAULT the pen is idle and disarmed", status.state == .idle && !status.flags.contains(.armed), "\(Message.status(status))")
            check("CLEAR_FAULT keeps the limits and the setpoints", status.flags.contains(.limitsSet) && status.depthSetpointUm == 800 && status.rateSetpointDhz == 1200,
                  "\(Message.status(status))")
        }

        // A HELLO with another major: back to boot, no limits, no setpoints, in any state.
        r = try command(.hello(.init(protoMajor: 9, protoMinor: 0)), reply: .helloReply)
        if let status = try status() {
            check("a HELLO with another major puts an idle pen back in boot without limits or setpoints",
                  r.ack?.status == .versionMismatch && status.state == .boot && !status.flags.contains(.handshakeDone)
                      && !status.flags.contains(.limitsSet) && status.depthSetpointUm == 0 && status.rateSetpointDhz == 0,
                  "\(Message.status(status))")
        }
        var bootRefusals: [String] = []
        let dataBefore = received[.limits, default: 0] + received[.cartridge, default: 0]
        for message: Message in [.setLimits(limits), .getLimits(.init()), setpoints, .arm(.init(limitsCRC: expectedCRC)),
                                 .disarm(.init()), .motorRun(.init()), .motorStop(.init()), .readCartridge(.init())] {
            r = try command(message, reply: message.id == .getLimits ? .limits : message.id == .readCartridge ? .cartridge : nil)
            if r.ack?.status != .notReady || r.data != nil { bootRefusals.append("\(message.id) \(String(describing: r.ack?.status))") }
        }
        for message: Message in [.heartbeat(.init()), .identify(.init(durationMs: 0)), .clearFault(.init())] {
            r = try command(message)
            if r.ack?.status != .ok { bootRefusals.append("\(message.id) \(String(describing: r.ack?.status))") }
        }
        try drain()
        if received[.limits, default: 0] + received[.cartridge, default: 0] != dataBefore { bootRefusals.append("a LIMITS or CARTRIDGE after a refusal") }
        check("in boot the pen accepts exactly the boot column; the rest is not_ready with no data reply", bootRefusals.isEmpty, bootRefusals.joined(separator: ", "))
        _ = try command(ours, reply: .helloReply)
        _ = try command(.setLimits(limits), reply: .limits)
        _ = try command(setpoints)
        r = try command(.arm(.init(limitsCRC: expectedCRC)))
        let armedBefore = r.ack?.status == .ok
        r = try command(.hello(.init(protoMajor: 9, protoMinor: 0)), reply: .helloReply)
        if let status = try status() {
            check("a HELLO with another major disarms an armed pen and puts it back in boot",
                  armedBefore && r.ack?.status == .versionMismatch && status.state == .boot && !status.flags.contains(.armed), "\(Message.status(status))")
        }
        r = try command(ours, reply: .helloReply)
        if case .helloReply(let reply)? = r.data {
            check("after a mismatched HELLO the limits are gone (limits_crc 0)", reply.limitsCRC == 0, "\(Message.helloReply(reply))")
        } else {
            check("after a mismatched HELLO the limits are gone (limits_crc 0)", false, "no HELLO_REPLY")
        }

        try decisions(limits: limits, setpoints: setpoints, hello: ours)

        // Periodic traffic and sequence numbers; the STATUS period restarts after any STATUS.
        var telemetry = 0
        var statusTimes: [UInt32] = (try status()).map { [$0.penTimeUs] } ?? []
        let lostBefore = link.statistics.penFramesLost
        try collect(timeout: .milliseconds(2300)) { frame, _ in
            if case .telemetry = frame.message { telemetry += 1 }
            if case .status(let status) = frame.message { statusTimes.append(status.penTimeUs) }
            return false
        }
        let lost = link.statistics.penFramesLost - lostBefore
        // pen_time_us is a wrapping u32 counter: a gap is the wrapping difference, read as time.
        let statusGaps = zip(statusTimes, statusTimes.dropFirst()).map { Duration.microseconds($1 &- $0) }
        check("idle TELEMETRY arrives about every 100 ms", telemetry >= 18, "\(telemetry) frames in 2.3 s")
        check("STATUS arrives at least every second",
              statusTimes.count >= 2 && statusGaps.allSatisfy { $0 <= ProtocolTiming.statusPeriod + .milliseconds(20) }, "STATUS at pen times \(statusTimes)")
        check("pen frames are numbered consecutively", lost == 0, "\(lost) frames missing")
        let moreResets = faults.filter { $0.code == .reset }.count - resetsAtStart
        check("FAULT reset is not repeated while the pen runs", moreResets == 0, "\(moreResets) more")
    }

    /// The questions PROTOCOL.md 1.0 left open, as section 7's "Decisions" answers them; every
    /// pen must answer them the same way. Leaves the pen idle with the limits and setpoints set.
    mutating func decisions(limits: Message.SetLimits, setpoints: Message, hello: Message) throws {
        let crc = limits.checksum
        _ = try command(.setLimits(limits), reply: .limits)
        _ = try command(setpoints)

        // A duplicate is recognised by (seq, msg_id) alone: the same header with other bytes is
        // a retransmission, answered again and never applied.
        let first = try command(.setSetpoints(.init(depthUm: 700, rateDhz: 1100))).ack
        if let first {
            try writeRaw(FrameEncoder.encode(Frame(seq: first.ackedSeq, message: .setSetpoints(.init(depthUm: 900, rateDhz: 1100)))))
            let again = try awaitAck(seq: first.ackedSeq, id: first.ackedID)
            let after = try status()
            check("decided: a frame repeating (seq, msg_id) with other bytes is a retransmission: answered again, not applied",
                  again == first && after?.depthSetpointUm == 700, "\(String(describing: again)), \(after.map { Message.status($0).description } ?? "no STATUS")")
        } else {
            check("decided: a frame repeating (seq, msg_id) with other bytes is a retransmission: answered again, not applied", false, "no ACK")
        }

        // A command refused from its header (bad_field) is remembered too: the same (seq, msg_id)
        // with valid bytes gets the same refusal and is not applied.
        let refused = try rawCommand(id: MessageID.setSetpoints.rawValue, payload: [0x84, 0x03, 0x64, 0x00])  // 900 um, 10.0 Hz
        try writeRaw(FrameEncoder.encode(Frame(seq: rawSeq, message: .setSetpoints(.init(depthUm: 900, rateDhz: 1100)))))
        let repeated = try awaitAck(seq: rawSeq, id: MessageID.setSetpoints.rawValue)
        let unchanged = try status()
        check("decided: a refused command is remembered: its (seq, msg_id) with valid bytes gets the same answer, not applied",
              refused?.status == .badField && repeated == refused && unchanged?.depthSetpointUm == 700,
              "\(String(describing: refused)) then \(String(describing: repeated)), \(unchanged.map { Message.status($0).description } ?? "no STATUS")")

        // A HELLO is never a retransmission: repeating the remembered (seq, HELLO) is answered
        // (ACK and HELLO_REPLY) and applied again.
        let greeted = try command(hello, reply: .helloReply)
        if let ack = greeted.ack {
            let repliesBefore = received[.helloReply, default: 0]
            try writeRaw(link.lastCommandFrame)
            let again = try awaitAck(seq: ack.ackedSeq, id: ack.ackedID)
            try drain()
            let replies = received[.helloReply, default: 0] - repliesBefore
            check("decided: a HELLO repeating the remembered (seq, HELLO) is answered ACK and HELLO_REPLY again",
                  again?.status == .ok && replies == 1, "\(String(describing: again)), \(replies) HELLO_REPLY")
        }
        _ = try command(setpoints)

        // A CRC-valid host frame carrying a pen -> host id is ignored: no answer at all.
        rawSeq &+= 1
        let echoSeq = rawSeq
        let echoed = FrameEncoder.encode(Frame(seq: echoSeq, message: .ack(.init(ackedSeq: 1, ackedID: 1, status: .ok, detail: 0))))
        try writeRaw(echoed)
        var answered = false
        try collect(timeout: .milliseconds(100)) { frame, _ in
            if case .ack(let ack) = frame.message, ack.ackedSeq == echoSeq, ack.ackedID == MessageID.ack.rawValue { answered = true }
            return answered
        }
        check("decided: a CRC-valid frame with a pen -> host id from the host gets no answer", !answered)

        // An inconsistent SET_LIMITS while armed: armed_locked (the lock is checked first).
        var r = try command(.arm(.init(limitsCRC: crc)))
        var bad = limits
        bad.depthMinUm = bad.depthMaxUm
        let locked = try command(.setLimits(bad))
        check("decided: an inconsistent SET_LIMITS while armed is answered armed_locked",
              r.ack?.status == .ok && locked.ack?.status == .armedLocked, "arm \(String(describing: r.ack)), set_limits \(String(describing: locked.ack))")

        // ESTOP on top of another fault: FAULT estop is sent; STATUS names the first fault and
        // flags the latched e-stop. The other fault: the deadman, by going silent while armed.
        let silence = now + .milliseconds(Int64(limits.deadmanMs) + 200)
        var lost = false
        while now < silence && !lost {
            for arrival in link.receiveFrames(try transport.read(timeout: .milliseconds(10)), at: now) {
                if case .frame(let frame, _) = arrival, case .fault(let fault) = frame.message {
                    faults.append(fault)
                    lost = lost || fault.code == .hostHeartbeatLost
                }
            }
        }
        let faultsBefore = faults.count
        r = try command(.estop(.init()))
        try drain()
        let status = try status()
        let newFaults = faults[faultsBefore...].map(\.code)
        check("decided: ESTOP on top of another fault sends FAULT estop; STATUS names the first fault and flags the e-stop",
              lost && newFaults == [.estop] && status?.fault == .hostHeartbeatLost && status?.flags.contains(.estopLatched) == true,
              "deadman fired: \(lost), then \(newFaults), \(status.map { Message.status($0).description } ?? "no STATUS")")
        r = try command(.clearFault(.init()))
        check("CLEAR_FAULT clears both once their causes are gone", r.ack?.status == .ok, "ack \(String(describing: r.ack))")
    }
}
