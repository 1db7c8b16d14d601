import StippleSim
import StippleWire
import Testing

/// The pen-side rules clarified in PROTOCOL.md 1.0 before its release: heartbeat period tied to
/// the deadman, version mismatch, repeated e-stop, ARM while armed, runaway during spin-up, the
/// order of the SET_LIMITS checks, and what HELLO and CLEAR_FAULT keep.
@Suite struct ProtocolRuleTests {
    static func connected(config: PenConfig = PenConfig(), limits: Message.SetLimits = ScriptedHost.defaultLimits) -> SimulationRig {
        var rig = SimulationRig(config: config)
        rig.host.connect(limits: limits)
        rig.run(for: .milliseconds(100))
        return rig
    }

    static func running(limits: Message.SetLimits = ScriptedHost.defaultLimits) -> SimulationRig {
        var rig = connected(limits: limits)
        rig.host.arm()
        rig.run(for: .milliseconds(100))
        rig.setPedal(true)
        rig.run(for: .milliseconds(500))
        return rig
    }

    /// Every frame the pen sent, with the time it was taken, driving the pen by hand.
    struct Trace {
        var pen: PenSimulator
        var host = ScriptedHost()
        var decoder = FrameDecoder()
        var frames: [(time: MonotonicInstant, frame: Frame)] = []
        var hostSends: [MonotonicInstant] = []
        /// Indices (into `hostSends`) of host sends the link loses.
        var lost: Set<Int> = []
        var now = MonotonicInstant.zero

        init(config: PenConfig = PenConfig()) { pen = PenSimulator(config: config) }

        /// Runs in 1 ms host ticks.
        mutating func run(for duration: Duration, each: (inout Trace) -> Void = { _ in }) {
            let end = now + duration
            while now < end {
                now += .milliseconds(1)
                let out = host.poll(at: now)
                if !out.isEmpty {
                    if !lost.contains(hostSends.count) { pen.receive(out) }
                    hostSends.append(now)
                }
                pen.advance(to: now)
                let bytes = pen.takeOutput()
                host.receive(bytes, at: now)
                for case .frame(let frame) in decoder.push(contentsOf: bytes) { frames.append((now, frame)) }
                each(&self)
            }
        }

        var faults: [Message.Fault] { frames.compactMap { if case .fault(let f) = $0.frame.message { f } else { nil } } }
    }

    // MARK: - Item 1: the heartbeat period follows the deadman

    @Test("H5: the host heartbeat period is min(100, deadman_ms / 3)")
    func h5HeartbeatPeriodFormula() {
        #expect(ProtocolTiming.hostHeartbeatPeriodMs(deadmanMs: 150) == 50)
        #expect(ProtocolTiming.hostHeartbeatPeriodMs(deadmanMs: 200) == 66)
        #expect(ProtocolTiming.hostHeartbeatPeriodMs(deadmanMs: 300) == 100)
        #expect(ProtocolTiming.hostHeartbeatPeriodMs(deadmanMs: 1000) == 100)
        #expect(ProtocolTiming.deadmanRangeMs == 150...1000)
        var host = ScriptedHost()
        #expect(host.heartbeatPeriod == .milliseconds(100), "the default 300 ms deadman")
        var limits = ScriptedHost.defaultLimits
        limits.deadmanMs = 150
        host.send(.setLimits(limits))
        #expect(host.assumedDeadmanMs == 150 && host.heartbeatPeriod == .milliseconds(50))
    }

    @Test("H5: a host following the heartbeat rule keeps a 150 ms deadman fed; frames never more than 50 ms apart")
    func h5HeartbeatFollowsTheDeadman() {
        var trace = Trace()
        var limits = ScriptedHost.defaultLimits
        limits.deadmanMs = 150
        trace.host.connect(limits: limits)
        trace.run(for: .milliseconds(100))
        trace.host.arm()
        trace.run(for: .milliseconds(100))
        trace.pen.setPedal(true)
        trace.run(for: .milliseconds(3000))
        #expect(trace.pen.penState == .running && trace.pen.latchedFault == .none)
        #expect(!trace.pen.faultHistory.contains { $0.code == .hostHeartbeatLost })
        let gaps = zip(trace.hostSends, trace.hostSends.dropFirst()).map { $1 - $0 }
        let longest = try! #require(gaps.max())
        #expect(longest <= .milliseconds(50), "longest gap \(longest)")
    }

    @Test("H5: with the shortest deadman, two consecutive lost host frames never trip it; a third does", arguments: [2, 3])
    func h5TwoLostFramesDoNotTripTheShortestDeadman(lostInARow: Int) {
        var trace = Trace()
        var limits = ScriptedHost.defaultLimits
        limits.deadmanMs = 150
        trace.host.connect(limits: limits)
        trace.run(for: .milliseconds(100))
        trace.host.arm()
        trace.run(for: .milliseconds(100))
        trace.pen.setPedal(true)
        trace.run(for: .milliseconds(500))
        // The next frames the host sends (a heartbeat and its 50 ms retransmissions) are lost.
        trace.lost = Set(trace.hostSends.count..<(trace.hostSends.count + lostInARow))
        trace.run(for: .milliseconds(500))
        if lostInARow == 2 {
            #expect(trace.pen.latchedFault == .none && trace.pen.motorDriven)
        } else {
            #expect(trace.pen.latchedFault == .hostHeartbeatLost && !trace.pen.motorDriven)
        }
    }

    // MARK: - Item 2: version mismatch

    @Test("H17: a HELLO with another major disarms, clears limits, setpoints and the handshake, in any state")
    func h17MismatchedHelloGoesBackToBoot() {
        for armed in [false, true] {
            var rig = armed ? Self.running() : Self.connected()
            rig.host.send(.hello(.init(protoMajor: 9, protoMinor: 0)))
            rig.run(for: .milliseconds(20))
            #expect(rig.host.lastAck(for: .hello)?.status == .versionMismatch && rig.host.lastAck(for: .hello)?.detail == ProtocolVersion.major)
            #expect(rig.host.helloReply?.limitsCRC == 0, "HELLO_REPLY follows, limits gone")
            #expect(rig.pen.penState == .boot && !rig.pen.armed && !rig.pen.motorDriven)
            #expect(rig.pen.limitsCRC == 0 && rig.pen.depthSetpointUm == 0 && rig.pen.rateSetpointDhz == 0)
            let status = try! #require(rig.host.lastStatus)
            #expect(status.state == .boot && !status.flags.contains(.handshakeDone) && !status.flags.contains(.limitsSet))
        }
    }

    @Test("H17: in boot the pen accepts exactly HELLO, ESTOP, GET_STATUS, IDENTIFY, HEARTBEAT and CLEAR_FAULT")
    func h17BootAcceptsOnlyTheBootColumn() {
        var rig = Self.connected()
        rig.host.send(.hello(.init(protoMajor: 9, protoMinor: 0)))
        rig.run(for: .milliseconds(20))
        let refused: [Message] = [
            .setLimits(ScriptedHost.defaultLimits), .getLimits(.init()), .setSetpoints(.init(depthUm: 800, rateDhz: 1200)),
            .arm(.init(limitsCRC: ScriptedHost.defaultLimits.checksum)), .disarm(.init()), .motorRun(.init()), .motorStop(.init()),
            .readCartridge(.init()),
        ]
        let accepted: [Message] = [.heartbeat(.init()), .getStatus(.init()), .identify(.init(durationMs: 0)), .clearFault(.init()), .estop(.init())]
        let cartridges = rig.host.cartridges.count
        // One at a time: a stop drops the ARM and MOTOR_RUN still queued (the host's own rule).
        for message in refused + accepted {
            rig.host.send(message)
            rig.run(for: .milliseconds(10))
        }
        rig.run(for: .milliseconds(100))
        for message in refused {
            #expect(rig.host.lastAck(for: message.id)?.status == .notReady, "\(message.id)")
        }
        for message in accepted {
            #expect(rig.host.lastAck(for: message.id)?.status == .ok, "\(message.id)")
        }
        #expect(rig.host.limits?.limitsCRC == ScriptedHost.defaultLimits.checksum, "no LIMITS after the refused GET_LIMITS (the last is connect's)")
        #expect(rig.host.cartridges.count == cartridges, "no CARTRIDGE after the refused READ_CARTRIDGE")
    }

    @Test("H17: a mismatched HELLO keeps a latched fault latched")
    func h17MismatchedHelloKeepsTheFault() {
        var rig = Self.running()
        rig.inject(.overCurrent(ma: 2000))
        rig.run(for: .milliseconds(20))
        #expect(rig.pen.latchedFault == .overCurrent)
        rig.host.send(.hello(.init(protoMajor: 9, protoMinor: 0)))
        rig.run(for: .milliseconds(20))
        #expect(rig.pen.latchedFault == .overCurrent && rig.pen.penState == .faulted && rig.pen.limitsCRC == 0)
    }

    // MARK: - Item 3: a repeated e-stop sends no second FAULT

    @Test("H12: once an e-stop is latched, neither ESTOP nor the button sends another FAULT")
    func h12RepeatedEstopSendsNoSecondFault() {
        var rig = Self.running()
        rig.host.send(.estop(.init()))
        rig.run(for: .milliseconds(20))
        rig.host.send(.estop(.init()))
        rig.run(for: .milliseconds(20))
        rig.setEstopButton(true)
        rig.setEstopButton(true)
        rig.run(for: .milliseconds(20))
        rig.host.send(.estop(.init()))
        rig.run(for: .milliseconds(20))
        #expect(rig.host.penFaults.filter { $0.fault.code == .estop }.count == 1)
        #expect(rig.pen.faultHistory.filter { $0.code == .estop }.count == 1)
        #expect(rig.host.acks.filter { $0.command == .estop }.allSatisfy { $0.status == .ok })
        // Released and cleared, a new e-stop is a new event with its own FAULT.
        rig.setEstopButton(false)
        rig.host.send(.clearFault(.init()))
        rig.run(for: .milliseconds(20))
        #expect(rig.host.lastAck(for: .clearFault)?.status == .ok)
        rig.setEstopButton(true)
        rig.run(for: .milliseconds(20))
        #expect(rig.host.penFaults.filter { $0.fault.code == .estop }.count == 2)
    }

    @Test("H12: a held button at boot latches once; a later ESTOP adds nothing")
    func h12ButtonHeldThenEstopCommand() {
        var rig = SimulationRig()
        rig.setEstopButton(true)
        rig.host.send(.estop(.init()))
        rig.run(for: .milliseconds(50))
        #expect(rig.host.penFaults.filter { $0.fault.code == .estop }.count == 1)
    }

    // MARK: - Item 4: ARM while armed, e-stop precedence

    @Test("H13: ARM while armed with the pen's checksum is a no-op")
    func h13ArmWithSameChecksumWhileArmedIsANoOp() {
        var rig = Self.running()
        rig.host.send(.arm(.init(limitsCRC: ScriptedHost.defaultLimits.checksum)))
        rig.run(for: .milliseconds(50))
        #expect(rig.host.lastAck(for: .arm)?.status == .ok)
        #expect(rig.pen.armed && rig.pen.motorDriven, "still armed and running")
    }

    @Test("H13: ARM while armed with another checksum is refused and disarms")
    func h13ArmWithWrongChecksumWhileArmedDisarms() {
        var rig = Self.running()
        rig.host.send(.arm(.init(limitsCRC: ScriptedHost.defaultLimits.checksum ^ 1)))
        rig.run(for: .milliseconds(20))
        #expect(rig.host.lastAck(for: .arm)?.status == .limitsMismatch)
        #expect(!rig.pen.armed && !rig.pen.motorDriven && rig.pen.penState == .idle)
        let strokes = rig.pen.strokeCount
        rig.run(for: .milliseconds(200))
        #expect(rig.pen.strokeCount == strokes, "the held pedal moves nothing")
    }

    @Test("H12: with an e-stop latched on top of another fault, ARM and MOTOR_RUN answer estop_latched")
    func h12EstopLatchedTakesPrecedenceOverFaultLatched() {
        var rig = Self.running()
        rig.inject(.overCurrent(ma: 2000))
        rig.run(for: .milliseconds(20))
        rig.host.send(.arm(.init(limitsCRC: ScriptedHost.defaultLimits.checksum)))
        rig.host.send(.motorRun(.init()))
        rig.run(for: .milliseconds(20))
        #expect(rig.host.lastAck(for: .arm)?.status == .faultLatched && rig.host.lastAck(for: .arm)?.detail == FaultCode.overCurrent.rawValue)
        #expect(rig.host.lastAck(for: .motorRun)?.status == .faultLatched)
        rig.host.send(.estop(.init()))
        rig.host.send(.arm(.init(limitsCRC: ScriptedHost.defaultLimits.checksum)))
        rig.host.send(.motorRun(.init()))
        rig.run(for: .milliseconds(20))
        #expect(rig.host.lastAck(for: .arm)?.status == .estopLatched)
        #expect(rig.host.lastAck(for: .motorRun)?.status == .estopLatched)
    }

    // MARK: - Item 7: runaway has no grace

    @Test("H3: a motor that runs away during spin-up is stopped at once, inside the stall grace")
    func h3RunawayDuringSpinUpStopsAtOnce() {
        var rig = Self.connected()
        rig.host.arm()
        rig.run(for: .milliseconds(100))
        rig.inject(.rateRunaway(hz: 200))
        rig.setPedal(true)
        let start = rig.now
        var trippedAt: MonotonicInstant?
        rig.run(for: .milliseconds(400)) { rig in
            if trippedAt == nil, rig.pen.latchedFault != .none { trippedAt = rig.now }
        }
        let tripped = try! #require(trippedAt)
        #expect(rig.pen.latchedFault == .rateRunaway && !rig.pen.motorDriven)
        #expect(tripped - start < ProtocolTiming.stallGrace, "before the 250 ms grace ends")
        // The rate crosses 160 Hz about 97 ms in (200 Hz target, 60 ms time constant): tripped right there.
        #expect(tripped - start <= .milliseconds(110))
        let value = try! #require(rig.host.penFaults.last { $0.fault.code == .rateRunaway }?.fault.value)
        #expect((1601...1620).contains(value), "the first rate above rate_runaway_dhz: \(value)")
    }

    @Test("H3: a stall still waits out the 250 ms spin-up grace")
    func h3StallWaitsOutTheSpinUpGrace() {
        var rig = Self.connected()
        rig.host.arm()
        rig.run(for: .milliseconds(100))
        rig.inject(.stall)
        rig.setPedal(true)
        let start = rig.now
        var trippedAt: MonotonicInstant?
        rig.run(for: .milliseconds(400)) { rig in
            if trippedAt == nil, rig.pen.latchedFault != .none { trippedAt = rig.now }
        }
        let tripped = try! #require(trippedAt)
        #expect(rig.pen.latchedFault == .stall)
        #expect(tripped - start >= ProtocolTiming.stallGrace && tripped - start <= .milliseconds(262))
    }

    // MARK: - Item 8: SET_LIMITS relations in rule 9's order

    static let relations: [(name: String, detail: UInt8, limits: Message.SetLimits)] = {
        let base = ScriptedHost.defaultLimits
        func with(_ change: (inout Message.SetLimits) -> Void) -> Message.SetLimits {
            var l = base
            change(&l)
            return l
        }
        return [
            ("depth_min_um < depth_max_um", 0, with { $0.depthMinUm = 1000 }),
            ("depth_max_um <= depth_trip_um", 1, with { $0.depthTripUm = 999 }),
            ("depth_trip_um <= ceiling", 2, with { $0.depthTripUm = 1600 }),
            ("rate_stall_dhz < rate_min_dhz", 3, with { $0.rateStallDhz = 500 }),
            ("rate_min_dhz <= rate_max_dhz", 3, with { $0.rateMaxDhz = 499 }),
            ("rate_max_dhz < rate_runaway_dhz", 4, with { $0.rateRunawayDhz = 1500 }),
            ("the first failing relation wins", 0, with { $0.depthMinUm = 1000; $0.rateRunawayDhz = 1500 }),
            ("depth before rate", 1, with { $0.depthTripUm = 999; $0.rateStallDhz = 500 }),
        ]
    }()

    @Test("H2: each SET_LIMITS relation is refused with the lower field index of the first failing one", arguments: 0..<8)
    func h2LimitRelationsInRuleOrder(index: Int) {
        let relation = Self.relations[index]
        var config = PenConfig()
        config.depthCeilingUm = 1500
        var rig = Self.connected(config: config)
        let limitsBefore = rig.host.limits
        rig.host.send(.setLimits(relation.limits))
        rig.run(for: .milliseconds(50))
        let ack = rig.host.lastAck(for: .setLimits)
        #expect(ack?.status == .badField && ack?.detail == relation.detail, "\(relation.name): \(String(describing: ack))")
        #expect(rig.host.limits == limitsBefore, "\(relation.name): no LIMITS after a refusal")
        #expect(rig.pen.limitsCRC == ScriptedHost.defaultLimits.checksum && rig.pen.depthSetpointUm == 800, "\(relation.name): nothing changed")
    }

    // MARK: - Item 9: what HELLO and CLEAR_FAULT keep; data replies; STATUS period; FAULT reset

    @Test("H13: an accepted HELLO keeps the limits but clears the setpoints; ARM then needs SET_SETPOINTS")
    func h13AcceptedHelloKeepsLimitsClearsSetpoints() {
        var rig = Self.running()
        rig.host.send(.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor)))
        rig.run(for: .milliseconds(20))
        #expect(rig.host.lastAck(for: .hello)?.status == .ok)
        #expect(rig.host.helloReply?.limitsCRC == ScriptedHost.defaultLimits.checksum)
        #expect(!rig.pen.armed && rig.pen.depthSetpointUm == 0 && rig.pen.rateSetpointDhz == 0)
        rig.setPedal(false)
        rig.host.arm()
        rig.run(for: .milliseconds(20))
        #expect(rig.host.lastAck(for: .arm)?.status == .noLimits)
        rig.host.send(.setSetpoints(.init(depthUm: 800, rateDhz: 1200)))
        rig.host.arm()
        rig.run(for: .milliseconds(20))
        #expect(rig.host.lastAck(for: .arm)?.status == .ok && rig.pen.armed)
    }

    @Test("CLEAR_FAULT keeps limits and setpoints and leaves the pen disarmed")
    func clearFaultKeepsLimitsAndSetpoints() {
        var rig = Self.running()
        rig.inject(.stall)
        rig.run(for: .milliseconds(20))
        #expect(rig.pen.latchedFault == .stall)
        rig.host.send(.clearFault(.init()))
        rig.run(for: .milliseconds(20))
        #expect(rig.host.lastAck(for: .clearFault)?.status == .ok, "stall: the motor is stopped, so clearing is allowed")
        #expect(rig.pen.penState == .idle && !rig.pen.armed)
        #expect(rig.pen.limitsCRC == ScriptedHost.defaultLimits.checksum && rig.pen.depthSetpointUm == 800 && rig.pen.rateSetpointDhz == 1200)
    }

    @Test("CLEAR_FAULT follows the cause-gone table: e-stop button, excess current, temperature 5 degC under the limit")
    func clearFaultFollowsTheCauseGoneTable() {
        var button = Self.running()
        button.setEstopButton(true)
        button.host.send(.clearFault(.init()))
        button.run(for: .milliseconds(20))
        #expect(button.host.lastAck(for: .clearFault)?.status == .conditionPersists && button.host.lastAck(for: .clearFault)?.detail == FaultCode.estop.rawValue)
        button.setEstopButton(false)
        button.host.send(.clearFault(.init()))
        button.run(for: .milliseconds(20))
        #expect(button.host.lastAck(for: .clearFault)?.status == .ok)

        var current = Self.running()
        current.inject(.overCurrent(ma: 2000))
        current.run(for: .milliseconds(20))
        current.host.send(.clearFault(.init()))
        current.run(for: .milliseconds(20))
        #expect(current.host.lastAck(for: .clearFault)?.status == .conditionPersists && current.host.lastAck(for: .clearFault)?.detail == FaultCode.overCurrent.rawValue)
        current.inject(.overCurrent(ma: 0))
        current.host.send(.clearFault(.init()))
        current.run(for: .milliseconds(20))
        #expect(current.host.lastAck(for: .clearFault)?.status == .ok)

        var config = PenConfig()
        config.thermalTimeConstant = .milliseconds(200)
        var heat = SimulationRig(config: config)
        heat.host.connect()
        heat.run(for: .milliseconds(100))
        heat.inject(.overTemperature(dc: 600))
        heat.run(for: .milliseconds(20))
        #expect(heat.pen.latchedFault == .overTemperature)
        heat.host.send(.clearFault(.init()))
        heat.run(for: .milliseconds(20))
        #expect(heat.host.lastAck(for: .clearFault)?.status == .conditionPersists && heat.host.lastAck(for: .clearFault)?.detail == FaultCode.overTemperature.rawValue)
        #expect(heat.pen.faultHistory.filter { $0.code == .overTemperature }.count == 1, "a hot pen does not repeat its FAULT")
        heat.inject(.overTemperature(dc: 0))
        var cleared: Double?
        for _ in 0..<100 where cleared == nil {
            heat.host.send(.clearFault(.init()))
            heat.run(for: .milliseconds(20))
            if heat.host.lastAck(for: .clearFault)?.status == .ok { cleared = heat.pen.temperature }
        }
        let at = try! #require(cleared)
        #expect(at <= Double(config.overTemperatureDc - 50), "cleared only 5 degC under the limit: \(at)")
    }

    @Test("Data replies: HELLO_REPLY always, STATUS always, LIMITS and CARTRIDGE only after ok")
    func dataRepliesFollowTheirAcks() {
        var config = PenConfig()
        config.cartridge = nil
        var trace = Trace(config: config)
        trace.host.send(.getLimits(.init()))  // boot: not_ready
        trace.host.send(.hello(.init(protoMajor: 9, protoMinor: 0)))  // refused
        trace.host.send(.getStatus(.init()))
        trace.host.send(.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: 0)))
        var bad = ScriptedHost.defaultLimits
        bad.depthTripUm = 900
        trace.host.send(.setLimits(bad))  // bad_field
        trace.host.send(.readCartridge(.init()))  // no_cartridge
        trace.host.send(.setLimits(ScriptedHost.defaultLimits))  // ok
        trace.run(for: .milliseconds(100))
        // The frames that follow each ACK, up to the next ACK.
        var replies: [String] = []
        for (index, entry) in trace.frames.enumerated() {
            guard case .ack(let ack) = entry.frame.message else { continue }
            let next = trace.frames.dropFirst(index + 1).first?.frame.message
            let data = next.flatMap { [.helloReply, .limits, .status, .cartridge].contains($0.id) ? $0.id.name : nil } ?? "-"
            replies.append("\(MessageID(rawValue: ack.ackedID)) \(ack.status) \(data)")
        }
        #expect(replies == [
            "get_limits not_ready -",
            "hello version_mismatch hello_reply",
            "get_status ok status",
            "hello ok hello_reply",
            "set_limits bad_field -",
            "read_cartridge no_cartridge -",
            "set_limits ok limits",
        ])
    }

    @Test("STATUS: the 1 s period restarts after any STATUS")
    func statusPeriodRestartsAfterAnyStatus() {
        var trace = Trace()
        trace.host.heartbeatsEnabled = false
        trace.run(for: .milliseconds(500))
        trace.host.send(.getStatus(.init()))
        trace.run(for: .milliseconds(2200))
        let times = trace.frames.compactMap { if case .status(let s) = $0.frame.message { s.penTimeUs / 1000 } else { nil } }
        // The firmware core sends a periodic report when less than one tick (1 ms) of its period
        // remains, so a pen ticking every millisecond is never late: 999 ms after each STATUS.
        #expect(times == [0, 500, 1499, 2498], "boot, GET_STATUS at 500 ms, then a tick short of a second after each (pen time, ms): \(times)")
    }

    @Test("FAULT reset is sent once at boot, never repeated; a host that missed it learns from STATUS and HELLO")
    func faultResetIsSentOnceAtBoot() {
        var trace = Trace()
        trace.run(for: .milliseconds(3000))
        #expect(trace.faults.map(\.code) == [.reset], "sent at boot with nobody listening, then never again")
        trace.host.connect()
        trace.run(for: .milliseconds(2000))
        #expect(trace.faults.map(\.code) == [.reset])
        // A host that missed the reset: STATUS says boot without a handshake.
        var late = ScriptedHost()
        var pen = PenSimulator()
        _ = pen.takeOutput()  // the reset notice is lost
        pen.advance(to: .zero + .seconds(1))
        late.receive(pen.takeOutput(), at: .zero + .seconds(1))
        #expect(late.penFaults.isEmpty)
        #expect(late.lastStatus?.state == .boot && late.lastStatus?.flags.contains(.handshakeDone) == false)
    }
}
