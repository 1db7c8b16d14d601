import StippleSafety
import StippleWire
import Testing

/// Every event in every state, the illegal ones included: the resulting state, or the refusal.
@Suite struct StateMachineTests {
    enum Outcome: Equatable, Sendable, CustomStringConvertible {
        case to(SessionPhase)
        case refused(SafetyRefusal.Code)
        var description: String {
            switch self {
            case .to(let phase): "-> \(phase.rawValue)"
            case .refused(let code): "refused \(code.rawValue)"
            }
        }
    }

    static let phases: [SessionPhase] = [.noSession, .open, .armed, .running, .paused, .closed, .faulted]

    static let second = SessionRequest(
        sessionID: "S2", clientID: "C2", technician: "Ana", zone: .crown, cartridgeID: "CART-2",
        pigmentLots: ["PIG-LOT-9"], penSerial: "PEN-1")

    /// (event name, event builder, outcome per phase in `phases` order)
    static let table: [(String, @Sendable (Rig) -> SafetyEvent, [Outcome])] = [
        ("open", { rig in .openSession(second, wall: rig.wall, bootID: "boot-A") },
         [.to(.open), .refused(.sessionAlreadyOpen), .refused(.sessionAlreadyOpen), .refused(.sessionAlreadyOpen),
          .refused(.sessionAlreadyOpen), .to(.open), .refused(.faultLatched)]),
        ("set_setpoint", { _ in .setSetpoint(Setpoint(layer: .upperDermis, depthUm: 700, rateHz: 110)) },
         [.refused(.illegalTransition), .to(.open), .to(.armed), .to(.running), .to(.paused), .refused(.illegalTransition), .refused(.illegalTransition)]),
        ("change_cartridge", { _ in .changeCartridge("CART-3") },
         [.refused(.illegalTransition), .to(.open), .refused(.illegalTransition), .refused(.illegalTransition),
          .refused(.illegalTransition), .refused(.illegalTransition), .refused(.illegalTransition)]),
        ("arm", { rig in .arm(rig.goodFacts) },
         [.refused(.armingChecksFailed), .to(.armed), .refused(.armingChecksFailed), .refused(.armingChecksFailed),
          .refused(.armingChecksFailed), .refused(.armingChecksFailed), .refused(.armingChecksFailed)]),
        ("pedal_press", { _ in .pedal(pressed: true) },
         [.to(.noSession), .to(.open), .to(.running), .to(.running), .to(.running), .to(.closed), .to(.faulted)]),
        ("pedal_release", { _ in .pedal(pressed: false) },
         [.to(.noSession), .to(.open), .to(.armed), .to(.paused), .to(.paused), .to(.closed), .to(.faulted)]),
        ("tick", { rig in .tick(wall: rig.wall) },
         [.to(.noSession), .to(.open), .to(.armed), .to(.running), .to(.paused), .to(.closed), .to(.faulted)]),
        ("disarm", { _ in .disarm },
         [.to(.noSession), .to(.open), .to(.open), .to(.open), .to(.open), .to(.closed), .to(.faulted)]),
        ("close", { _ in .closeSession },
         [.refused(.illegalTransition), .to(.closed), .to(.closed), .to(.closed), .to(.closed), .refused(.illegalTransition), .to(.faulted)]),
        ("estop", { _ in .emergencyStop(.api) },
         [.to(.faulted), .to(.faulted), .to(.faulted), .to(.faulted), .to(.faulted), .to(.faulted), .to(.faulted)]),
        ("pen_fault", { _ in .penFault(.overCurrent) },
         [.to(.faulted), .to(.faulted), .to(.faulted), .to(.faulted), .to(.faulted), .to(.faulted), .to(.faulted)]),
        ("pen_reset", { _ in .penReset },
         [.to(.noSession), .to(.open), .to(.faulted), .to(.faulted), .to(.faulted), .to(.closed), .to(.faulted)]),
        ("link_lost", { _ in .linkLost },
         [.to(.noSession), .to(.open), .to(.faulted), .to(.faulted), .to(.faulted), .to(.closed), .to(.faulted)]),
        ("cartridge_removed", { _ in .cartridgeRemoved },
         [.to(.noSession), .to(.open), .to(.faulted), .to(.faulted), .to(.faulted), .to(.closed), .to(.faulted)]),
        ("client_lost", { rig in .clientDisconnected(rig.connection) },
         [.to(.noSession), .to(.open), .to(.faulted), .to(.faulted), .to(.faulted), .to(.closed), .to(.faulted)]),
        ("clear_fault", { _ in .clearFault },
         [.refused(.illegalTransition), .refused(.illegalTransition), .refused(.illegalTransition), .refused(.illegalTransition),
          .refused(.illegalTransition), .refused(.illegalTransition), .to(.open)]),
    ]

    static var cases: [(String, SessionPhase)] {
        table.flatMap { entry in phases.map { (entry.0, $0) } }
    }

    @Test(arguments: cases)
    func transition(event name: String, from phase: SessionPhase) {
        let entry = Self.table.first { $0.0 == name }!
        let expected = entry.2[Self.phases.firstIndex(of: phase)!]
        var rig = Rig()
        rig.bring(to: phase)
        let before = rig.core.phase
        let decision = rig.send(entry.1(rig))
        let outcome: Outcome = decision.refusal.map { .refused($0.code) } ?? .to(rig.core.phase)
        #expect(outcome == expected, "\(name) from \(phase)")
        if decision.refusal != nil {
            #expect(rig.core.phase == before, "a refusal changes nothing")
            #expect(!decision.stopsNeedle || before == .faulted)
        }
    }

    @Test func everyStateAndEventIsInTheTable() {
        #expect(Set(Self.phases) == Set(SessionPhase.allCases))
        #expect(Self.table.allSatisfy { $0.2.count == Self.phases.count })
    }

    @Test func transitionsIntoFaultedAlwaysStopFirst() {
        for phase in Self.phases {
            var rig = Rig()
            rig.bring(to: phase)
            let decision = rig.send(.emergencyStop(.api))
            #expect(decision.actions.first == .emergencyStopPen)
            #expect(decision.actions.contains(.stopNeedle(.emergencyStop)) || phase == .faulted)
        }
    }

    @Test func clearingAFaultNeverRearms() {
        var rig = Rig()
        rig.bring(to: .faulted)
        let decision = rig.send(.clearFault)
        #expect(decision.actions == [.clearPenFault])
        #expect(rig.core.phase == .open)
        rig.send(.pedal(pressed: true))
        #expect(rig.core.phase == .open, "the pedal does nothing until a new arm")
        #expect(rig.send(.arm(rig.goodFacts)).refusal == nil)
    }

    @Test func clearingReturnsToWhereTheSessionWas() {
        var none = Rig()
        none.send(.emergencyStop(.gpio))
        #expect(none.send(.clearFault).refusal?.code == .faultPersists, "no frame since the fault: no evidence the cause is gone")
        none.idleFrame()
        none.send(.clearFault)
        #expect(none.core.phase == .noSession)
        var closed = Rig()
        closed.bring(to: .closed)
        closed.send(.emergencyStop(.api))
        closed.idleFrame()
        closed.send(.clearFault)
        #expect(closed.core.phase == .closed)
    }

    @Test func aSessionNeedsEverythingTheRecordsNeed() {
        var rig = Rig()
        var request = Rig.request
        request.pigmentLots = []
        request.technician = "  "
        let refusal = rig.open(request).refusal
        #expect(refusal?.code == .badRequest)
        #expect(refusal?.violations.map(\.field) == ["technician", "pigment_lots"])
    }
}
