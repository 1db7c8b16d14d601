#if canImport(Glibc)
import Glibc
#endif
import CStippleSys
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The stop socket: `POST /v1/estop`, `/v1/stop` and `/v1/disarm`, and nothing else, on a Unix
/// socket of its own beside the API's (`api-stop.sock` next to `api.sock`), served by one thread
/// of its own (issue 15 item 8).
///
/// Why a second socket rather than priorities inside the API server: the API's connections,
/// event streams and request floods share one budget (connections in all and per user, the
/// server's event loops, the supervisor's job queue). Whatever share a stop gets of it, another
/// user working within their own limits can use up the rest. Here nothing else is served: a
/// stop's connection is never queued behind a stream or another request, and
/// - this listener has its own capacity, and each user may hold at most `perUserLimit`
///   connections on it (a user flooding it only runs into their own limit);
/// - a request head must arrive within `headTimeout` or the connection is closed;
/// - the thread asks for SCHED_FIFO like the supervisor's (where allowed), so a machine busy
///   with other work does not delay the accept;
/// - the stop runs on the supervisor in a high-priority task, whose jobs the supervisor's loop
///   runs ahead of every queued API job (`SupervisorLoop`'s urgent lane).
/// The same roles apply (SO_PEERCRED, read per connection): technicians and engineers. The
/// answers are the API's: `StopResult` JSON, or a problem document.
public final class StopSocket: @unchecked Sendable {
    public let path: String
    let policy: RolePolicy
    let supervisor: Supervisor
    let logger: Logger
    let realtimePriority: Int
    let perUserLimit: Int
    let totalLimit: Int
    let headTimeout: Duration

    private var listener: Int32 = -1
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let running = Atomic<Bool>(false)
    private var thread: Thread?

    public init(path: String, policy: RolePolicy, supervisor: Supervisor, logger: Logger, realtimePriority: Int = 0,
                perUserLimit: Int = 8, totalLimit: Int = 256, headTimeout: Duration = .seconds(1)) {
        self.path = path
        self.policy = policy
        self.supervisor = supervisor
        self.logger = logger
        self.realtimePriority = realtimePriority
        self.perUserLimit = perUserLimit
        self.totalLimit = totalLimit
        self.headTimeout = headTimeout
        var fds: [Int32] = [0, 0]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        for fd in fds where fd >= 0 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        if listener >= 0 { close(listener) }
        if wakeRead >= 0 { close(wakeRead) }
        if wakeWrite >= 0 { close(wakeWrite) }
    }

    /// The path of the stop socket that belongs to an API socket: `x.sock` → `x-stop.sock`.
    public static func path(besideAPISocket api: String) -> String {
        api.hasSuffix(".sock") ? String(api.dropLast(5)) + "-stop.sock" : api + "-stop"
    }

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Binds the socket (mode 0660, group `group`) and starts serving.
    public func start(group: String) throws(StartError) {
        try? APIServer.removeStaleSocket(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "cannot create the stop socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw StartError(description: "the stop socket path \(path) is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw StartError(description: "cannot listen on the stop socket \(path): \(reason)")
        }
        APIServer.secureSocket(path, group: group, logger: logger)
        listener = fd
        running.store(true, ordering: .relaxed)
        let thread = Thread { [self] in
            stipple_name_thread("stipple-stops")
            if realtimePriority > 0, stipple_thread_realtime(Int32(realtimePriority)) != 0 {
                logger.warning("the stop socket's thread runs at normal priority")
            }
            serve()
        }
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
        logger.info("stop socket listening", metadata: ["socket": "\(path)"])
    }

    public func stop() {
        running.store(false, ordering: .relaxed)
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        unlink(path)
    }

    // MARK: - Serving

    /// A connection still reading its request head.
    struct Connection {
        var peer: Peer
        var head: [UInt8] = []
        var deadline: ContinuousClock.Instant
    }

    private func serve() {
        var connections: [Int32: Connection] = [:]
        var buffer = [UInt8](repeating: 0, count: 4096)
        var drain = [UInt8](repeating: 0, count: 64)
        while running.load(ordering: .relaxed) {
            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: connections.count < totalLimit ? listener : -1, events: Int16(POLLIN), revents: 0)]
            for fd in connections.keys { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            _ = poll(&fds, nfds_t(fds.count), 100)
            if fds[0].revents != 0 { while read(wakeRead, &drain, drain.count) > 0 {} }
            if fds[1].revents != 0 { acceptAll(into: &connections) }
            for entry in fds.dropFirst(2) where entry.revents != 0 {
                guard var connection = connections[entry.fd] else { continue }
                let count = recv(entry.fd, &buffer, buffer.count, 0)
                if count <= 0 {
                    if count == 0 || (errno != EAGAIN && errno != EINTR) {
                        connections[entry.fd] = nil
                        close(entry.fd)
                    }
                    continue
                }
                connection.head += buffer[0..<count]
                if let request = Self.requestLine(connection.head) {
                    connections[entry.fd] = nil
                    handle(request, peer: connection.peer, fd: entry.fd)
                } else if connection.head.count > 8192 {
                    connections[entry.fd] = nil
                    respond(entry.fd, problem: Problem(431, "head_too_large", "a request head must fit in 8 KiB"))
                } else {
                    connections[entry.fd] = connection
                }
            }
            let now = ContinuousClock.now
            for (fd, connection) in connections where connection.deadline < now {
                connections[fd] = nil
                close(fd)
            }
        }
        for fd in connections.keys { close(fd) }
        close(listener)
        listener = -1
    }

    private func acceptAll(into connections: inout [Int32: Connection]) {
        while connections.count < totalLimit {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var credentials = stipple_ucred()
            guard stipple_peer_credentials(fd, &credentials) == 0 else {
                close(fd)
                continue
            }
            let peer = policy.peer(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
            let held = connections.values.filter { $0.peer.uid == peer.uid }.count
            guard held < perUserLimit else {
                respond(fd, problem: Problem(429, "too_many_connections",
                                             "\(peer.userName) already holds \(perUserLimit) connections to the stop socket"))
                continue
            }
            connections[fd] = Connection(peer: peer, deadline: .now + headTimeout)
        }
    }

    /// The request line once the whole head has arrived (the body, if any, is not needed).
    static func requestLine(_ head: [UInt8]) -> (method: String, path: String)? {
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        guard head.count >= 4, (0...(head.count - 4)).contains(where: { Array(head[$0..<$0 + 4]) == end }) else { return nil }
        let line = head.prefix { $0 != UInt8(ascii: "\r") }
        let parts = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard parts.count == 3 else { return ("", "") }
        let path = parts[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        return (String(parts[0]), path)
    }

    private func handle(_ request: (method: String, path: String), peer: Peer, fd: Int32) {
        guard peer.role >= .technician else {
            respond(fd, problem: Problem(403, "not_a_member",
                                         "permission denied: \(peer.userName) is not in group \(policy.technicianGroup)"))
            return
        }
        let kind: StopKind
        switch request.path {
        case "/v1/estop": kind = .estop
        case "/v1/stop": kind = .stop
        case "/v1/disarm": kind = .disarm
        default:
            respond(fd, problem: Problem(404, "no_such_route", "the stop socket serves POST /v1/estop, /v1/stop and /v1/disarm; use the API socket for the rest"))
            return
        }
        guard request.method == "POST" else {
            respond(fd, problem: Problem(405, "method_not_allowed", "\(request.method) is not allowed on \(request.path)"))
            return
        }
        // On the supervisor's thread in its urgent lane; answered from the records' queue.
        supervisor.stopFromSocket(kind, actor: peer.description) { [self] result in
            do {
                respond(fd, status: 200, body: try Self.encoder.encode(result), type: "application/json")
            } catch {
                respond(fd, problem: Problem(503, "internal", "the stop was made; its answer could not be encoded"))
            }
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }()

    private func respond(_ fd: Int32, problem: Problem) {
        let body = (try? Self.encoder.encode(problem)) ?? Data()
        respond(fd, status: problem.status, body: body, type: "application/problem+json")
    }

    /// Writes the whole answer (waiting at most a second for room) and closes the connection.
    private func respond(_ fd: Int32, status: Int, body: Data, type: String) {
        let head = "HTTP/1.1 \(status) \(Problem.title(status))\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        var bytes = Array(head.utf8) + Array(body)
        let deadline = ContinuousClock.now + .seconds(1)
        while !bytes.isEmpty && ContinuousClock.now < deadline {
            let written = send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL))
            if written > 0 {
                bytes.removeFirst(written)
            } else if written < 0 && (errno == EAGAIN || errno == EINTR) {
                var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&entry, 1, 50)
            } else {
                break
            }
        }
        close(fd)
    }
}

/// The three stops, by the route that asks for them.
public enum StopKind: String, Sendable {
    case estop, stop, disarm
}

extension Supervisor {
    /// A stop from the stop socket or the API: run it in a high-priority task so the supervisor's
    /// loop takes it ahead of queued work (the caller's own task may be at any priority).
    public nonisolated func urgently(_ kind: StopKind, actor: String) async throws(CommandError) -> StopResult {
        let task = Task(priority: .high) { () async -> Result<StopResult, CommandError> in
            do throws(CommandError) {
                switch kind {
                case .estop: return .success(try await self.emergencyStop(actor: actor))
                case .stop: return .success(try await self.disarm(actor: actor, kind: "stop"))
                case .disarm: return .success(try await self.disarm(actor: actor))
                }
            } catch {
                return .failure(error)
            }
        }
        return try await task.value.get()
    }
}

/// The stop socket as a service of the daemon's group: serves until the graceful shutdown.
public struct StopSocketService: Service {
    let socket: StopSocket
    let group: String

    public init(socket: StopSocket, group: String) {
        self.socket = socket
        self.group = group
    }

    public func run() async throws {
        try socket.start(group: group)
        try? await gracefulShutdown()
        socket.stop()
    }
}
