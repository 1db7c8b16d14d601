import Foundation
import StippleAPI
import StippleSafety
import StippleSupervision
import StippleWire

/// The engineers' bring-up calls (`stipplectl identify`, `ping`, `raw`, `selftest` through the
/// daemon). None of them can move the needle or change what the safety core relies on: `raw`
/// sends only messages that read or blink, and the port is released only while no session is
/// open. Each one is audited.
extension Supervisor {
    /// What `raw` may send through the daemon: nothing that arms, runs, changes limits or
    /// setpoints, restarts the link, or clears a latch behind the core's back.
    public static let rawAllowed: Set<MessageID> = [.heartbeat, .getLimits, .getStatus, .readCartridge, .identify]

    /// The answer to one bring-up command: the pen's ACK (or none), and the round trip as the
    /// daemon saw it (written to the link → ACK processed).
    public struct BringUpAnswer: Sendable {
        public var status: AckStatus?
        public var detail: UInt8
        public var roundTrip: Duration?
    }

    /// Sends `message` on the link and waits for its ACK (the link retransmits meanwhile).
    func exchange(_ message: Message) async throws(CommandError) -> BringUpAnswer {
        let (result, _) = await perform(.exchange(message))
        guard case .exchanged(let status, let detail, let roundTrip) = try result.get() else {
            return BringUpAnswer(status: nil, detail: 0, roundTrip: nil)
        }
        return BringUpAnswer(status: status, detail: detail, roundTrip: roundTrip)
    }

    /// An audit entry for a bring-up call, answered once durable.
    func audit(_ kind: String, actor: String, _ payload: [String: String] = [:]) async throws(CommandError) {
        let (result, _) = await perform(.audit(kind: kind, actor: actor, payload: payload))
        _ = try result.get()
    }

    /// IDENTIFY: the pen blinks its LED for `durationMs` (0 stops it).
    public func identify(durationMs: Int, actor: String) async throws(CommandError) -> BringUpAnswer {
        let answer = try await exchange(.identify(.init(durationMs: UInt16(clamping: durationMs))))
        try await audit("bringup_identify", actor: actor, ["duration_ms": String(durationMs), "answer": answer.status.map { "\($0)" } ?? "none"])
        return answer
    }

    /// `count` GET_STATUS round trips, one after the other.
    public func ping(count: Int, actor: String) async throws(CommandError) -> [BringUpAnswer] {
        var answers: [BringUpAnswer] = []
        for _ in 0..<count { answers.append(try await exchange(.getStatus(.init()))) }
        return answers
    }

    /// One frame of `rawAllowed`, sent through the link (which numbers it); the refusal of any
    /// other message says where to do it instead.
    public func raw(_ message: Message, actor: String) async throws(CommandError) -> BringUpAnswer {
        guard Self.rawAllowed.contains(message.id) else {
            let names = MessageSchema.messages.filter { Self.rawAllowed.contains($0.id) }.map(\.name).joined(separator: ", ")
            throw CommandError(.conflict, .rawRefused,
                               "\(MessageSchema.messages.first { $0.id == message.id }?.name ?? "that message") is not sent raw through the daemon: it would go around the safety core. Through the daemon raw sends only \(names); use the daemon's own commands (arm, setpoint, stop, estop, clear-fault), or stop stippled and use `stipplectl raw --port PATH`",
                               state: core.phase.rawValue)
        }
        let answer = try await exchange(message)
        try await audit("bringup_raw", actor: actor, ["message": "\(message.id)", "answer": answer.status.map { "\($0)" } ?? "none"])
        return answer
    }

    /// Lets go of the serial port for `duration` (or until `reclaimPort`), so a tool can talk to
    /// the pen directly. Only while no session is open: a session's pen stays the daemon's.
    public func releasePort(for duration: Duration, actor: String) async throws(CommandError) -> String {
        guard let path = bringUp.releasablePath else {
            throw CommandError(.conflict, .notReleasable,
                               "the pen is the daemon's in-process simulator: there is no serial port to release (`stipplectl selftest` without a daemon tests the simulator)",
                               state: core.phase.rawValue)
        }
        guard core.phase == .noSession || core.phase == .closed else {
            throw CommandError(.conflict, .sessionOpen,
                               "the port is released only while no session is open: close session \(core.session?.request.sessionID ?? "") first (`stipplectl session close`)",
                               state: core.phase.rawValue)
        }
        try await audit("bringup_port_released", actor: actor, ["port": path, "seconds": String(duration.components.seconds)])
        bringUp.requestRelease(for: duration)
        // The pen link's reader lets go at its next poll (every 50 ms).
        for _ in 0..<300 where transport != nil { try? await Task.sleep(for: .milliseconds(10)) }
        guard transport == nil else {
            bringUp.reclaim()
            throw CommandError(.unavailable, .releaseFailed, "the pen link did not let go of \(path) within 3 s", state: core.phase.rawValue)
        }
        return path
    }

    /// Takes the port back at once (it is also taken back when the release runs out).
    public func reclaimPort(actor: String) async throws(CommandError) {
        bringUp.reclaim()
        try await audit("bringup_port_reclaimed", actor: actor)
    }
}
