#if canImport(Glibc)
import ArgumentParser
import Foundation
import Glibc
import StippleClient

/// `arm` and `watch --arm` are one command: arming needs a client that shows the operator is
/// present (the daemon stops the needle when that client goes away), so stipplectl arms only
/// while it runs. It opens the event stream as the presence lease, arms, shows the live view,
/// and on Ctrl-C (or SIGTERM) disarms first and then lets the lease go. It ends by itself when
/// the pen leaves armed/running for any other reason: exit status 5 when a fault stopped it.
struct Arm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Arm the pen and hold it armed while this command runs (Ctrl-C disarms).",
        discussion: """
            Runs every arming check; a refusal lists each failed check. While it runs, this command is \
            the operator-presence lease the daemon requires: it keeps the event stream open, sends a \
            sign of life every 250 ms (a stopped or hung stipplectl loses the lease within a second), \
            and shows the live view (as `watch`). Ctrl-C disarms and exits 0. If the needle is stopped any other \
            way it exits by itself: 5 when a fault stopped it, 0 when it was disarmed or the session closed. \
            The needle moves only while the pedal is pressed. `watch --arm` is the same command.
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var view: LiveViewOptions

    func run() throws {
        try LiveSession(client: options.client(), options: view, arm: true).run()
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Live view of state, depth, rate, warnings and faults (redrawn in place on a terminal, plain lines when piped).",
        discussion: """
            From the daemon's event stream. On a terminal the view redraws in place; piped, it prints one \
            line per event (telemetry at most once a second); with --json, every event as one JSON object \
            per line, as the daemon sent it. Ctrl-C quits. A plain `watch` is only a viewer; `watch --arm` \
            arms and holds the operator-presence lease like `stipplectl arm`.
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var view: LiveViewOptions

    @Flag(help: "Arm the pen and hold the operator-presence lease while watching (as `stipplectl arm`).")
    var arm = false

    func run() throws {
        try LiveSession(client: options.client(), options: view, arm: arm).run()
    }
}

struct LiveViewOptions: ParsableArguments {
    @Option(name: .customLong("client-id"), help: "The presence id to hold the lease with (default: stipplectl-PID).")
    var clientID: String?

    @Flag(name: .customLong("full-rate"), help: "Every telemetry frame (engineers), not 10 a second.")
    var fullRate = false

    @Option(help: "Stop after this many seconds (0: until Ctrl-C). An armed pen is disarmed first.")
    var seconds: Double = 0

    func validate() throws {
        if let clientID, !(1...64).contains(clientID.count) || !clientID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            throw ValidationError("--client-id: 1 to 64 letters, digits, - or _")
        }
        if seconds < 0 { throw ValidationError("--seconds: 0 or more") }
    }
}

/// The event stream, the optional lease, and the view, on the command's own thread.
final class LiveSession {
    let client: DaemonClient
    let options: LiveViewOptions
    let arm: Bool
    let queue = StreamQueue()
    var status: JSON = .null
    var limits: JSON = .null
    var telemetry: JSON = .null
    var recent: [String] = []
    var armed = false
    let view: LiveView

    init(client: DaemonClient, options: LiveViewOptions, arm: Bool) {
        self.client = client
        self.options = options
        self.arm = arm
        let mode: LiveView.Mode = Output.json ? .json : isatty(STDOUT_FILENO) == 1 ? .terminal : .lines
        view = LiveView(mode: mode, socket: client.location.path)
    }

    var clientID: String { options.clientID ?? "stipplectl-\(getpid())" }

    func run() throws {
        let interrupts = InterruptHandler(queue: queue)
        defer { withExtendedLifetime(interrupts) {} }
        limits = (try? client.get("/v1/limits").json) ?? .null
        let reader = EventStreamReader(client: client, clientID: arm ? clientID : nil, fullRate: options.fullRate, queue: queue)
        reader.start()
        let pinger = arm ? PresencePinger(client: client, clientID: clientID) : nil
        defer {
            pinger?.close()
            reader.close()
            view.finish()
        }
        // The stream's first event is the status: from then on the lease is held.
        guard let first = try waitForStatus() else { return }
        // When arming, nothing is shown before the answer: a refusal prints only the problem.
        handle(first, show: !arm)
        pinger?.start()
        if arm {
            let reply: DaemonClient.Reply
            do {
                reply = try client.post("/v1/arm", headers: ["X-Stipple-Client": clientID])
            } catch {
                view.finish()
                throw error
            }
            armed = true
            view.event(first)
            status = reply.json
            view.note("armed as \(clientID): the needle moves while the pedal is down")
            if Output.json { Output.line(JSON.object(["type": "armed", "client": .string(clientID), "status": reply.json]).compactText) }
        }
        let deadline = options.seconds > 0 ? Date(timeIntervalSinceNow: options.seconds) : nil
        var lastRefresh = Date()
        while true {
            let item = queue.next(timeout: 0.25)
            if let deadline, Date() >= deadline { return try release(reason: "time is up") }
            switch item {
            case .interrupted:
                return try release(reason: "interrupted")
            case .ended(let failure):
                if let failure { throw failure }
                return
            case .tick:
                break
            case .event(let event):
                handle(event)
                if let outcome = try leaseOutcome(event) { return try outcome() }
            }
            if Date().timeIntervalSince(lastRefresh) >= 1 {
                lastRefresh = Date()
                if let fresh = try? client.get("/v1/status").json { status = fresh }
            }
            render()
        }
    }

    func waitForStatus() throws -> DaemonEventLine? {
        let deadline = Date(timeIntervalSinceNow: 10)
        while Date() < deadline {
            switch queue.next(timeout: 0.25) {
            case .event(let event) where event.name == "status": return event
            case .event, .tick: continue
            case .interrupted: return nil
            case .ended(let failure): throw failure ?? CtlError(.unreachable, code: "stream_ended", "stippled closed the event stream at once")
            }
        }
        throw CtlError(.unreachable, code: "daemon_not_answering", "stippled at \(client.location.path) sent no status on its event stream within 10 s")
    }

    func handle(_ event: DaemonEventLine, show: Bool = true) {
        if show { view.event(event) }
        switch event.name {
        case "status":
            status = event.data
        case "telemetry":
            telemetry = event.data
        case "state":
            if case .object(var object) = status { object["phase"] = event.data["phase"]; status = .object(object) }
            // The last frame was taken while the needle ran: after a stop or a fault it would
            // keep showing `motor ON` and `pedal down` on the final screen. Shown as unknown until
            // the pen's next frame says how it is now.
            if !["running", "paused"].contains(event.data["phase"].text) { telemetry = .null }
            recent.append("\(clockNow()) state \(event.data["from"].text) → \(event.data["phase"].text)")
        case "fault":
            telemetry = .null
            recent.append("\(clockNow()) FAULT \(event.data["reason"].text): \(event.data["detail"].text)")
        case "warning":
            recent.append("\(clockNow()) warning \(event.data["kind"].text): \(event.data["detail"].text)")
        case "link":
            recent.append("\(clockNow()) link \(event.data["state"].text)\(event.data["reason"].string.map { ": \($0)" } ?? "")")
        case "session":
            recent.append("\(clockNow()) session \(event.data["session_id"].string ?? "") \(event.data["state"].text)")
        default:
            break
        }
        if recent.count > 4 { recent.removeFirst(recent.count - 4) }
        if event.name != "telemetry", event.name != "status", let fresh = try? client.get("/v1/status").json { status = fresh }
    }

    /// While holding the pen armed: has it left armed/running? Then the command ends.
    func leaseOutcome(_ event: DaemonEventLine) throws -> (() throws -> Void)? {
        guard armed, event.name == "state" || event.name == "fault" else { return nil }
        let phase = status["phase"].string ?? event.data["phase"].string ?? ""
        guard !["armed", "running", "paused"].contains(phase) else { return nil }
        armed = false
        render(force: true)
        if phase == "faulted" {
            let faults = status["faults"].array.map(\.text).joined(separator: ", ")
            return { throw CtlError(.stoppedByFault, code: "stopped_by_fault",
                                    "the needle was stopped: fault \(faults.isEmpty ? "latched" : faults) (`stipplectl status`; `stipplectl clear-fault` once the cause is gone)") }
        }
        return { [self] in view.note("no longer armed (state \(phase)): the lease is released") }
    }

    /// Ctrl-C or time up: disarm first if this command armed, then let the lease go.
    func release(reason: String) throws {
        if armed {
            armed = false
            let reply = try client.post("/v1/disarm")
            status = reply.json
            view.note("\(reason): disarmed (state \(reply.json["phase"].text))")
            render(force: true)
            if Output.json { Output.line(JSON.object(["type": "disarmed", "status": reply.json]).compactText) }
        }
    }

    func render(force: Bool = false) {
        view.render(status: status, telemetry: telemetry, limits: limits, recent: recent, lease: armed ? clientID : nil, force: force)
    }

    func clockNow() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        return formatter.string(from: Date())
    }
}
#endif
