import StippleWire

/// Arming: every check, all evaluated, whatever state the session is in.
extension SafetyCore {
    /// Every arming check, all evaluated; empty means the pen may be armed.
    public func armingFailures(_ facts: ArmingFacts, at now: MonotonicInstant) -> [ArmingFailure] {
        var failures: [ArmingFailure] = []
        func fail(_ code: ArmingFailure.Code, _ message: String) { failures.append(ArmingFailure(code, message)) }
        let sessionIsOpen = session != nil && closeReason == nil
        if phase != .open && !(phase == .faulted && sessionIsOpen) {
            let state = phase == .faulted ? (session == nil ? "faulted with no session" : "closed") : phase.rawValue
            fail(.notOpen, "the session is \(state); arming needs an open, disarmed session")
        }
        if let pen = facts.pen {
            if pen.protocolMajor != facts.hostProtocolMajor {
                fail(.protocolIncompatible, "the pen speaks protocol \(pen.protocolMajor).\(pen.protocolMinor), stippled speaks \(facts.hostProtocolMajor).\(facts.hostProtocolMinor)")
            }
            if let bound = session?.request.penSerial, !Identifier.same(pen.serial, bound) {
                fail(.wrongPen, "this session is bound to pen \(bound); the connected pen is \"\(pen.serial)\"")
            }
        } else {
            fail(.penNotIdentified, "no pen has completed the handshake")
        }
        if let setpoint = session?.setpoint, let zone = session?.request.zone {
            let violations = limits.validateSetpoint(setpoint, in: zone)
            if !violations.isEmpty {
                fail(.setpointInvalid, "the setpoint no longer passes the limits in force: \(violations.map(\.description).joined(separator: "; "))")
            }
        } else {
            fail(.setpointMissing, "no depth and rate setpoint has been set")
        }
        // The core compares the pen's read-back with the checksum of the limits it decided to
        // push itself on this link: no caller-supplied pair of numbers can satisfy it.
        if let expected = expectedPenLimits {
            if pushedLimits != expected {
                fail(.limitsUnverified, "the limits for this setpoint have not been pushed to the pen on this link")
            } else if facts.readBackLimitsCRC != expected.checksum {
                let readBack = facts.readBackLimitsCRC.map { "0x" + String($0, radix: 16) } ?? "nothing"
                fail(.limitsUnverified, "the pen read back limits checksum \(readBack); the limits pushed have 0x\(String(expected.checksum, radix: 16))")
            }
        } else {
            fail(.limitsUnverified, "no limits have been pushed to the pen (they follow the setpoint)")
        }
        if let cartridge = facts.cartridge {
            if cartridge.needleCount != AbsoluteLimits.needleCount {
                fail(.needleCount, "the cartridge has \(cartridge.needleCount) needles; SMP needs \(AbsoluteLimits.needleCount)")
            }
            if !AbsoluteLimits.needleDiameterUm.contains(cartridge.needleDiameterUm) {
                fail(.needleDiameter, "needle diameter \(cartridge.needleDiameterUm) µm is outside \(AbsoluteLimits.needleDiameterUm.lowerBound)...\(AbsoluteLimits.needleDiameterUm.upperBound) µm")
            }
            if let expiry = cartridge.expiryDay {
                if expiry < facts.today { fail(.cartridgeExpired, "cartridge \(cartridge.id) expired (last valid day \(expiry), today is day \(facts.today))") }
            } else {
                fail(.cartridgeExpiryUnknown, "cartridge \(cartridge.id) has no known expiry date")
            }
            if let session {
                if let other = history.earlierUse(of: cartridge.id, otherThan: session.request.sessionID) {
                    fail(.cartridgeReused, "cartridge \(cartridge.id) was already used in session \(other)")
                }
                if !Identifier.same(cartridge.id, session.cartridgeID) {
                    fail(.cartridgeMismatch, "the pen holds cartridge \"\(cartridge.id)\" but the session records \(session.cartridgeID)")
                }
            }
        } else {
            fail(.noCartridge, "no cartridge is in the pen")
        }
        if facts.pedalPressed { fail(.pedalPressed, "release the pedal before arming") }
        if facts.estopPressed { fail(.estopPressed, "the emergency stop is pressed") }
        if !faults.isEmpty || facts.penFaultLatched {
            let names = faults.map(\.rawValue) + (facts.penFaultLatched ? ["pen"] : [])
            fail(.faultLatched, "a fault is latched (\(names.joined(separator: ", "))); clear it first")
        }
        if session != nil && sessionRemaining(at: now) <= .zero {
            fail(.sessionTimeExhausted, "the session has used its \(limits.sessionLength.clockText)")
        }
        if facts.connection == nil || !facts.connectionAlive {
            fail(.clientNotConnected, "the client asking to arm has no live connection")
        }
        return failures
    }

    mutating func arm(_ facts: ArmingFacts, at now: MonotonicInstant, into actions: inout [SafetyAction]) -> SafetyRefusal? {
        let failures = armingFailures(facts, at: now)
        guard failures.isEmpty, phase == .open, let session, let connection = facts.connection else {
            let list = failures.isEmpty ? [ArmingFailure(.notOpen, "the session is \(phase.rawValue)")] : failures
            return SafetyRefusal(.armingChecksFailed, "\(list.count) arming check(s) failed", armingFailures: list)
        }
        history.recordCartridgeUse(session.cartridgeID, session: session.request.sessionID)
        actions.append(.recordCartridgeUse(cartridgeID: session.cartridgeID, sessionID: session.request.sessionID))
        actions.append(.armPen)
        phase = .armed
        armedConnection = connection
        armCount &+= 1
        armedCartridge = facts.cartridge
        armedAt = now
        motionStoppedAt = nil  // from here, a motor on without the pedal is unexpected motion
        penHasDepthSensor = facts.pen?.hasDepthSensor ?? true
        pedalPressed = false
        rateViolationRun = 0
        depthMissingRun = 0
        depthSameRun = 0
        lastDepthUm = nil
        return nil
    }
}
