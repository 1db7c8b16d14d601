#if canImport(Glibc)
import Glibc
#endif
import CStippleSys
import Foundation
import Logging
import ServiceLifecycle
import StippleAPI
import StippleRequests
import StippleSupervision
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
/// - the thread runs at normal priority on purpose: anyone may make it busy (connections in a
///   loop), and a real-time thread kept busy would starve the machine or be killed by
///   `LimitRTTIME=`; what a stop needs to be fast — the supervisor's thread and the records'
///   writer — is real-time, and this thread only reads a request line and hands it over;
/// - a user's connections count against their limit until their stop has been carried out, so no
///   user can queue more than `perUserLimit` stops; at most 16 connections are accepted a round
///   before those accepted are read; a full descriptor table pauses accepting instead of spinning;
/// - the stop runs on the supervisor in a high-priority task, whose jobs the supervisor's loop
///   runs ahead of every queued API job (`SupervisorLoop`'s urgent lane).
/// The same roles apply (SO_PEERCRED, read per connection): technicians and engineers. The
/// answers are the API's: `StopResult` JSON, or a problem document.
public final class StopSocket: @unchecked Sendable {
    public let path: String
    let policy: RolePolicy
    let supervisor: Supervisor
    let logger: Logger
    let perUserLimit: Int
    let totalLimit: Int
    let headTimeout: Duration

    private var listener: Int32 = -1
    /// Connections per uid, from accept until answered and closed (answers close on other threads).
    private let held = Mutex<[UInt32: Int]>([:])
    /// Roles by uid, looked up at most once a second per user (group look-ups are slow; a user
    /// connecting in a loop must not make every connection pay them).
    private var roles: [UInt64: (peer: Peer, at: ContinuousClock.Instant)] = [:]
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let running = Atomic<Bool>(false)
    private var thread: Thread?

    public init(path: String, policy: RolePolicy, supervisor: Supervisor, logger: Logger,
                perUserLimit: Int = 8, totalLimit: Int = 256, headTimeout: Duration = .seconds(1)) {
        self.path = path
        self.policy = policy
        self.supervisor = supervisor
        self.logger = logger
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
        APIServer.secureSocket(path, group: group, engineerGroup: policy.engineerGroup, logger: logger)
        listener = fd
        running.store(true, ordering: .relaxed)
        let thread = Thread { [self] in
            stipple_name_thread("stipple-stops")
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
        var uid: UInt32
        var pid: Int32
        var gid: UInt32
        var head: [UInt8] = []
        var deadline: ContinuousClock.Instant
    }

    private func serve() {
        var connections: [Int32: Connection] = [:]
        var buffer = [UInt8](repeating: 0, count: 4096)
        var drain = [UInt8](repeating: 0, count: 64)
        var acceptPausedUntil = ContinuousClock.now
        while running.load(ordering: .relaxed) {
            let accepting = connections.count < totalLimit && ContinuousClock.now >= acceptPausedUntil
            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: accepting ? listener : -1, events: Int16(POLLIN), revents: 0)]
            for fd in connections.keys { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            _ = poll(&fds, nfds_t(fds.count), 100)
            if fds[0].revents != 0 { while read(wakeRead, &drain, drain.count) > 0 {} }
            if fds[1].revents != 0, !acceptAll(into: &connections) {
                // Out of descriptors: stop polling the listener for a moment instead of spinning.
                acceptPausedUntil = .now + .milliseconds(50)
            }
            for entry in fds.dropFirst(2) where entry.revents != 0 {
                guard var connection = connections[entry.fd] else { continue }
                let count = recv(entry.fd, &buffer, buffer.count, 0)
                if count <= 0 {
                    if count == 0 || (errno != EAGAIN && errno != EINTR) {
                        connections[entry.fd] = nil
                        finish(entry.fd, uid: connection.uid)
                    }
                    continue
                }
                let searchFrom = max(0, connection.head.count - 3)
                connection.head += buffer[0..<count]
                if let request = Self.requestLine(connection.head, searchFrom: searchFrom) {
                    connections[entry.fd] = nil
                    handle(request, peer: peer(connection), fd: entry.fd)
                } else if connection.head.count > 8192 {
                    connections[entry.fd] = nil
                    respond(entry.fd, uid: connection.uid, problem: Problem(431, .headTooLarge, "a request head must fit in 8 KiB"))
                } else {
                    connections[entry.fd] = connection
                }
            }
            let now = ContinuousClock.now
            for (fd, connection) in connections where connection.deadline < now {
                connections[fd] = nil
                finish(fd, uid: connection.uid)
            }
        }
        for (fd, connection) in connections { finish(fd, uid: connection.uid) }
        close(listener)
        listener = -1
    }

    /// Accepts what is waiting, at most `acceptBatch` a round (connections already accepted are
    /// read before more are taken: one user connecting in a loop cannot keep this thread from
    /// reading another user's stop); false when the descriptor table is full (EMFILE/ENFILE).
    private func acceptAll(into connections: inout [Int32: Connection]) -> Bool {
        var accepted = 0
        while connections.count < totalLimit && accepted < Self.acceptBatch {
            accepted += 1
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return errno != EMFILE && errno != ENFILE }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var credentials = stipple_ucred()
            guard stipple_peer_credentials(fd, &credentials) == 0 else {
                close(fd)
                continue
            }
            // The limit first, from the credentials alone: a user connecting in a loop costs
            // no user or group look-ups.
            let admitted = held.withLock { held -> Bool in
                guard held[credentials.uid, default: 0] < perUserLimit else { return false }
                held[credentials.uid, default: 0] += 1
                return true
            }
            guard admitted else {
                // Best effort and no wait: the answer is prepared once, and the connection closed.
                _ = Self.tooMany.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                close(fd)
                continue
            }
            connections[fd] = Connection(uid: credentials.uid, pid: credentials.pid, gid: credentials.gid, deadline: .now + headTimeout)
        }
        return true
    }

    static let acceptBatch = 16

    /// The 429 a user over their limit gets, built once.
    static let tooMany: [UInt8] = {
        let body = (try? encoder.encode(Problem(429, .tooManyConnections,
                                                "you already hold the most connections the stop socket allows one user (waiting or being carried out); close one"))) ?? Data()
        return Array("HTTP/1.1 429 \(Problem.title(429))\r\nContent-Type: application/problem+json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + Array(body)
    }()

    /// The caller's role, looked up at most once a second per uid and primary gid.
    private func peer(_ connection: Connection) -> Peer {
        let key = UInt64(connection.uid) << 32 | UInt64(connection.gid)
        if let cached = roles[key], ContinuousClock.now - cached.at < .seconds(1) {
            var peer = cached.peer
            peer.pid = connection.pid
            return peer
        }
        let peer = policy.peer(pid: connection.pid, uid: connection.uid, gid: connection.gid)
        if roles.count > 1024 { roles.removeAll() }
        roles[key] = (peer, .now)
        return peer
    }

    /// Closes an answered (or abandoned) connection; it no longer counts against its user.
    private func finish(_ fd: Int32, uid: UInt32?) {
        close(fd)
        release(uid)
    }

    /// The connection no longer counts against its user (answered, or its stop carried out).
    private func release(_ uid: UInt32?) {
        guard let uid else { return }
        held.withLock { held in
            held[uid, default: 1] -= 1
            if held[uid, default: 0] <= 0 { held[uid] = nil }
        }
    }

    /// The request line once the whole head has arrived (the body, if any, is not needed).
    /// Only the bytes from `searchFrom` on are scanned for the blank line (the rest was scanned).
    static func requestLine(_ head: [UInt8], searchFrom: Int = 0) -> (method: String, path: String)? {
        guard head.count >= 4 else { return nil }
        var index = max(0, searchFrom)
        var found = false
        while index + 4 <= head.count {
            if head[index] == 13 && head[index + 1] == 10 && head[index + 2] == 13 && head[index + 3] == 10 {
                found = true
                break
            }
            index += 1
        }
        guard found else { return nil }
        let line = head.prefix { $0 != UInt8(ascii: "\r") }
        let parts = String(decoding: line, as: UTF8.self).split(separator: " ")
        guard parts.count == 3 else { return ("", "") }
        let path = parts[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        return (String(parts[0]), path)
    }

    private func handle(_ request: (method: String, path: String), peer: Peer, fd: Int32) {
        let uid = peer.uid
        guard peer.role >= .technician else {
            respond(fd, uid: uid, problem: Problem(403, .notAMember,
                                         "permission denied: \(peer.userName) is not in group \(policy.technicianGroup) (technicians) or \(policy.engineerGroup) (engineers)"))
            return
        }
        let kind: StopKind
        switch request.path {
        case "/v1/estop": kind = .estop
        case "/v1/stop": kind = .stop
        case "/v1/disarm": kind = .disarm
        default:
            respond(fd, uid: uid, problem: Problem(404, .noSuchRoute, "the stop socket serves POST /v1/estop, /v1/stop and /v1/disarm; use the API socket for the rest"))
            return
        }
        guard request.method == "POST" else {
            respond(fd, uid: uid, problem: Problem(405, .methodNotAllowed, "\(request.method) is not allowed on \(request.path) (allowed: POST)"),
                    extraHeaders: "Allow: POST\r\n")
            return
        }
        // On the supervisor's thread in its urgent lane; answered from the records' queue. The
        // connection stops counting against its user once the stop is carried out: a slow disk
        // holds answers back, never the next stop.
        supervisor.stopFromSocket(kind, actor: peer.description, executed: { [self] in release(uid) }) { [self] result in
            do {
                respond(fd, uid: nil, status: 200, body: try Self.encoder.encode(result), type: "application/json")
            } catch {
                respond(fd, uid: nil, problem: Problem(503, ._internal, "the stop was made; its answer could not be encoded"))
            }
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }()

    private func respond(_ fd: Int32, uid: UInt32?, problem: Problem, extraHeaders: String = "") {
        let body = (try? Self.encoder.encode(problem)) ?? Data()
        respond(fd, uid: uid, status: problem.status, body: body, type: "application/problem+json", extraHeaders: extraHeaders)
    }

    /// Writes the whole answer (waiting at most a second for room) and closes the connection.
    private func respond(_ fd: Int32, uid: UInt32?, status: Int, body: Data, type: String, extraHeaders: String = "") {
        let head = "HTTP/1.1 \(status) \(Problem.title(status))\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\n\(extraHeaders)Connection: close\r\n\r\n"
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
        finish(fd, uid: uid)
    }
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
