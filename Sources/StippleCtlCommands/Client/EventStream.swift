#if canImport(Glibc)
import Dispatch
import Foundation
import Glibc
import StippleClient
import StippleTransport

/// What the reading thread hands the command's own thread, in order.
enum StreamItem: Sendable {
    case event(DaemonEventLine)
    case ended(CtlError?)
    case interrupted
    case tick
}

/// A queue between the stream's reading thread (and the signal handler) and the command.
final class StreamQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [StreamItem] = []

    func push(_ item: StreamItem) {
        condition.lock()
        items.append(item)
        condition.signal()
        condition.unlock()
    }

    /// The next item, or `.tick` after `timeout` without one.
    func next(timeout: TimeInterval) -> StreamItem {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while items.isEmpty {
            if !condition.wait(until: deadline) { return .tick }
        }
        return items.removeFirst()
    }
}

/// A Server-Sent Events stream on a thread of its own, its events into the queue: the daemon's
/// `GET /v1/events` (with a client id, the open stream is that client's operator-presence lease:
/// the daemon stops the needle if it closes while the pen is armed) or the bring-up trace. One
/// reader for both, so a refusal, a lost daemon and an ended stream read the same everywhere.
final class EventStreamReader: @unchecked Sendable {
    let client: DaemonClient
    let path: String
    let headers: [String: String]
    /// "the event stream", "the trace stream": for the messages.
    let what: String
    let queue: StreamQueue
    let stop = StopFlag()
    private var thread: Thread?

    init(client: DaemonClient, path: String, headers: [String: String] = [:], what: String, queue: StreamQueue) {
        self.client = client
        self.path = path
        self.headers = headers
        self.what = what
        self.queue = queue
    }

    /// `GET /v1/events`, as `clientID`'s lease when given.
    convenience init(client: DaemonClient, clientID: String?, fullRate: Bool, queue: StreamQueue) {
        self.init(client: client, path: "/v1/events\(fullRate ? "?telemetry=full" : "")",
                  headers: clientID.map { ["X-Stipple-Client": $0] } ?? [:], what: "the event stream", queue: queue)
    }

    func start() {
        let thread = Thread { [self] in read() }
        thread.name = "stipplectl-events"
        self.thread = thread
        thread.start()
    }

    /// What the stream brought: an error answer's status and body, or events.
    private final class Collected {
        var parser = SSEParser()
        var errorStatus = 0
        var errorBody = Data()
    }

    private func read() {
        let collected = Collected()
        let queue = queue
        let failure: CtlError?
        do {
            try client.http.stream(
                path, headers: headers, stop: stop,
                onHead: { status, _ in collected.errorStatus = (200..<300).contains(status) ? 0 : status },
                onBody: { body in
                    if collected.errorStatus != 0 {
                        collected.errorBody.append(body)
                    } else {
                        for event in collected.parser.push(body) { queue.push(.event(event)) }
                    }
                    return true
                })
            failure = streamEnded(collected)
        } catch let error as SystemCallError {
            failure = client.unreachable(error)
        } catch {
            failure = CtlError(.unreachable, code: "stream_failed", "\(what) failed: \(error)")
        }
        queue.push(.ended(failure))
    }

    private func streamEnded(_ collected: Collected) -> CtlError? {
        if collected.errorStatus != 0 {
            return DaemonClient.refusal(HTTPAnswer(status: collected.errorStatus, headers: [:], body: collected.errorBody),
                                        method: "GET", path: path)
        }
        if stop.isSet { return nil }
        return CtlError(.unreachable, code: "stream_ended", "stippled closed \(what) (did it stop? `systemctl status stippled`)")
    }

    /// Closes the stream (ends the lease); returns once the reading thread has let go.
    func close() {
        stop.raise()
        while let thread, !thread.isFinished { usleep(5_000) }
    }
}

/// SIGINT and SIGTERM become `.interrupted` on the queue instead of killing the process, so a
/// command holding the pen armed can disarm before it exits.
final class InterruptHandler: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []

    init(queue: StreamQueue) {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { queue.push(.interrupted) }
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }
}
#endif

/// The holder's signs of life (`POST /v1/presence`, every 250 ms) on a thread of its own: the
/// daemon does not count an open stream as a person at the controls (a process stopped with
/// Ctrl-Z keeps its socket open), so a lease needs these too. Sent from this same process, as the
/// daemon checks the pid; a stopped or hung stipplectl stops sending them and loses the lease.
final class PresencePinger: @unchecked Sendable {
    let client: DaemonClient
    let clientID: String
    let stop = StopFlag()
    let interval: TimeInterval = 0.25

    init(client: DaemonClient, clientID: String) {
        self.client = client
        self.clientID = clientID
    }

    func start() {
        let thread = Thread { [self] in
            while !stop.isSet {
                // A refusal (the stream not yet registered, the daemon restarting) is not fatal
                // here: the event stream reports what matters, and the lease simply runs out.
                _ = try? client.post("/v1/presence", headers: ["X-Stipple-Client": clientID])
                Thread.sleep(forTimeInterval: interval)
            }
        }
        thread.name = "stipplectl-presence"
        thread.start()
    }

    func close() { stop.raise() }
}
