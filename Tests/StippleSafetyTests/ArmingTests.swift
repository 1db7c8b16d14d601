import StippleSafety
import Testing

@Suite struct ArmingTests {
    @Test func goodFactsArmAndRecordTheCartridgeFirst() {
        var rig = Rig()
        let decision = rig.arm()
        #expect(decision.refusal == nil)
        #expect(decision.actions == [.recordCartridgeUse(cartridgeID: "CART-1", sessionID: "S1"), .armPen])
        #expect(rig.core.phase == .armed)
    }

    @Test func everyFailureIsReturnedTogetherWithACodeAndASentence() {
        var rig = Rig()
        rig.open()
        var facts = rig.goodFacts
        facts.pen = PenIdentity(serial: "PEN-2", protocolMajor: 2, protocolMinor: 1)
        facts.readBackLimitsCRC = 0x1234
        facts.cartridge = CartridgeInfo(id: "CART-9", needleCount: 1, needleDiameterUm: 350, lot: "L", expiryDay: rig.wall.day - 3)
        facts.pedalPressed = true
        facts.estopPressed = true
        facts.penFaultLatched = true
        facts.connectionAlive = false
        let refusal = rig.send(.arm(facts)).refusal
        let codes = Set(refusal?.armingFailures.map(\.code) ?? [])
        #expect(codes == [.protocolIncompatible, .wrongPen, .limitsUnverified, .setpointMissing, .needleCount, .needleDiameter,
                          .cartridgeExpired, .cartridgeMismatch, .pedalPressed, .estopPressed, .faultLatched, .clientNotConnected])
        #expect(refusal?.armingFailures.first { $0.code == .protocolIncompatible }?.message == "the pen speaks protocol 2.1, stippled speaks 1.0")
        #expect(refusal?.armingFailures.first { $0.code == .wrongPen }?.message == "this session is bound to pen PEN-1; the connected pen is \"PEN-2\"")
        #expect(rig.core.phase == .open)
    }

    @Test func noPenMeansNotIdentified() {
        var rig = Rig()
        rig.openWithSetpoint()
        var facts = rig.goodFacts
        facts.pen = nil
        #expect(rig.send(.arm(facts)).refusal?.armingFailures.map(\.code) == [.penNotIdentified])
    }

    @Test("H8: a pen other than the session's refuses to run")
    func h8WrongPenRefused() {
        var rig = Rig()
        rig.openWithSetpoint()
        var facts = rig.goodFacts
        facts.pen?.serial = "PEN-SWAPPED"
        #expect(rig.send(.arm(facts)).refusal?.armingFailures.map(\.code) == [.wrongPen])
        #expect(rig.core.phase == .open)
    }

    @Test("H9: a reused cartridge is refused, at arming and at opening")
    func h9ReusedCartridgeRefused() {
        var history = SafetyHistory()
        history.recordCartridgeUse("CART-1", session: "S0")
        var rig = Rig(history: history)
        #expect(rig.open().refusal?.code == .cartridgeReused)
        var request = Rig.request
        request.cartridgeID = "CART-2"
        rig.open(request)
        rig.send(.setSetpoint(Rig.setpoint))
        var facts = rig.goodFacts
        facts.cartridge?.id = "CART-1"
        let codes = rig.send(.arm(facts)).refusal?.armingFailures.map(\.code) ?? []
        #expect(codes.contains(.cartridgeReused))
    }

    @Test("H9: the cartridge ledger binds a cartridge to its first session for good")
    func h9LedgerSpansSessions() {
        var rig = Rig()
        rig.arm()
        #expect(rig.core.history.cartridges == ["CART-1": "S1"])
        rig.send(.closeSession)
        var next = Rig.request
        next.sessionID = "S2"
        next.clientID = "C2"
        #expect(rig.open(next).refusal?.code == .cartridgeReused)
        // Re-arming in the same session with the same cartridge stays allowed.
        var same = Rig()
        same.arm()
        same.send(.disarm)
        #expect(same.send(.arm(same.goodFacts)).refusal == nil)
    }

    @Test("H9: expired, unknown-expiry and non-conforming cartridges are refused",
          arguments: [
              (3, 250, -1, ArmingFailure.Code.cartridgeExpired),
              (3, 250, nil, .cartridgeExpiryUnknown),
              (1, 250, 10, .needleCount),
              (5, 250, 10, .needleCount),
              (3, 179, 10, .needleDiameter),
              (3, 301, 10, .needleDiameter),
          ] as [(Int, Int, Int?, ArmingFailure.Code)])
    func h9NonConformingCartridge(needles: Int, diameter: Int, expiresInDays: Int?, code: ArmingFailure.Code) {
        var rig = Rig()
        rig.openWithSetpoint()
        var facts = rig.goodFacts
        facts.cartridge = CartridgeInfo(id: "CART-1", needleCount: needles, needleDiameterUm: diameter, lot: "L",
                                        expiryDay: expiresInDays.map { rig.wall.day + $0 })
        #expect(rig.send(.arm(facts)).refusal?.armingFailures.map(\.code) == [code])
    }

    @Test func aCartridgeExpiringTodayIsStillGood() {
        var rig = Rig()
        rig.openWithSetpoint()
        var facts = rig.goodFacts
        facts.cartridge?.expiryDay = rig.wall.day
        #expect(rig.send(.arm(facts)).refusal == nil)
    }

    @Test("H13: limits not read back with the checksum of the limits the core pushed refuse arming")
    func h13UnverifiedLimitsRefused() {
        let other = SafetyLimits.defaults.penLimits(layer: .epidermis, zone: .crown).checksum
        for readBack in [UInt32?.none, 0, 1, other] {
            var rig = Rig()
            rig.openWithSetpoint()
            var facts = rig.goodFacts
            facts.readBackLimitsCRC = readBack
            #expect(rig.send(.arm(facts)).refusal?.armingFailures.map(\.code) == [.limitsUnverified], "\(String(describing: readBack))")
        }
    }

    @Test("H13: a new link or a pen reset forgets the pushed limits: the core pushes them again before anything arms")
    func h13ReconnectRepushesLimits() {
        for event in [SafetyEvent.linkLost, .penReset, .penFault(.reset)] {
            var rig = Rig()
            rig.openWithSetpoint()
            let facts = rig.goodFacts
            rig.send(event)
            #expect(rig.send(.arm(facts)).refusal?.armingFailures.map(\.code) == [.limitsUnverified], "\(event): the old read-back counts for nothing")
            let connected = rig.send(.penConnected(PenIdentity(serial: "PEN-1", protocolMajor: 1, protocolMinor: 0)))
            let expected = SafetyLimits.defaults.penLimits(layer: .upperDermis, zone: .crown)
            #expect(connected.actions == [.pushLimits(expected), .applySetpoint(Rig.setpoint)])
            #expect(rig.send(.arm(facts)).refusal == nil)
        }
    }

    @Test("H17: a pen with another protocol major is refused naming both versions")
    func h17ProtocolMismatch() {
        var rig = Rig()
        rig.openWithSetpoint()
        var facts = rig.goodFacts
        facts.pen?.protocolMajor = 3
        facts.pen?.protocolMinor = 2
        let failure = rig.send(.arm(facts)).refusal?.armingFailures.first
        #expect(failure?.code == .protocolIncompatible)
        #expect(failure?.message.contains("3.2") == true && failure?.message.contains("1.0") == true)
        var newerMinor = Rig()
        newerMinor.openWithSetpoint()
        var ok = newerMinor.goodFacts
        ok.pen?.protocolMinor = 9
        #expect(newerMinor.send(.arm(ok)).refusal == nil, "a newer minor is compatible")
    }

    @Test func theCartridgeMustBeTheSessionsAndCanBeChangedWhileDisarmed() {
        var rig = Rig()
        rig.openWithSetpoint()
        var facts = rig.goodFacts
        facts.cartridge?.id = "CART-NEW"
        #expect(rig.send(.arm(facts)).refusal?.armingFailures.map(\.code) == [.cartridgeMismatch])
        #expect(rig.send(.changeCartridge("CART-NEW")).refusal == nil)
        #expect(rig.send(.arm(facts)).refusal == nil)
        #expect(rig.send(.changeCartridge("CART-3")).refusal?.code == .illegalTransition, "not while armed")
    }

    @Test func noTimeLeftRefusesArming() {
        var rig = Rig()
        rig.openWithSetpoint()
        rig.advance(.seconds(4 * 3600 - 1))
        #expect(rig.send(.arm(rig.goodFacts)).refusal == nil)
        rig.send(.disarm)
        rig.advance(.seconds(1))
        let refusal = rig.send(.arm(rig.goodFacts)).refusal
        #expect(refusal?.code == .armingChecksFailed, "the session closed at 4:00")
        #expect(refusal?.armingFailures.map(\.code) == [.notOpen, .sessionTimeExhausted])
        #expect(rig.core.phase == .closed)
    }

    @Test func armingNeedsALiveClient() {
        var rig = Rig()
        rig.openWithSetpoint()
        var facts = rig.goodFacts
        facts.connection = nil
        #expect(rig.send(.arm(facts)).refusal?.armingFailures.map(\.code) == [.clientNotConnected])
    }

    @Test func losingTheArmingClientStopsTheNeedle() {
        var rig = Rig()
        rig.runPastSpinUp()
        #expect(rig.send(.clientDisconnected(ConnectionID(99))).actions.isEmpty, "another client leaving changes nothing")
        let decision = rig.send(.clientDisconnected(rig.connection))
        #expect(decision.firstActionIsStop)
        #expect(decision.faultsLatched == [.clientLost])
        #expect(rig.core.phase == .faulted)
    }
}
