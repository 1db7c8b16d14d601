#if canImport(Glibc)
import Glibc
#endif
import CStippleSys
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import StippleAPI
import StippleRecords
import StippleRequests
import StippleSafety

/// The request context: the socket channel, from which the peer's credentials come.
public struct APIContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel
    public var peer: Peer?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    public var maxUploadSize: Int { JSONBody.maximumBytes }
}

/// The local API: HTTP/1.1 and JSON on a Unix socket — never a TCP listener (H14). Routes are
/// versioned (`/v1/...`); the contract is docs/openapi.yaml.
public struct APIServer: Sendable {
    public var socketPath: String
    public var policy: RolePolicy
    public var supervisor: Supervisor
    public var records: RecordStore?
    public var logger: Logger
    /// A bound on concurrent connections: a flood cannot exhaust the daemon.
    public var maxConnections = 128
    public var idleTimeout = TimeAmount.seconds(30)
    /// The Prometheus text of every metric, served at `/metrics`; nil: no metrics.
    public var metrics: (@Sendable () -> [UInt8])?
    /// The simulated pen's controls, served at `/v1/sim` (`--pen sim` only; nil: 404 there).
    public var simulator: (any SimulatedPenControl)?
    /// The technician's console, served at `/console/` (`ConsoleFiles.none`: 404 there).
    public var console: ConsoleFiles = .none
    /// In-process route tests only (HummingbirdTesting has no socket to read SO_PEERCRED from):
    /// the caller for a request. Internal, so that nothing but `@testable` code can set it.
    var peerForTesting: (@Sendable (Request) -> Peer?)?
    /// In-process route tests only: sees every request and its final answer (problems
    /// included), so the tests can hold each status to the ones docs/openapi.yaml declares.
    var answerObserverForTesting: (@Sendable (Request, Response) -> Void)?

    public init(socketPath: String, policy: RolePolicy, supervisor: Supervisor, records: RecordStore?, logger: Logger) {
        self.socketPath = socketPath
        self.policy = policy
        self.supervisor = supervisor
        self.records = records
        self.logger = logger
    }

    /// The application, ready to run as a service. `onReady` runs once the socket is bound
    /// and its mode set (0660, group `stipple` where it exists).
    public func application(onReady: @escaping @Sendable () async -> Void = {}) throws -> some ApplicationProtocol {
        try Self.removeStaleSocket(socketPath)
        let router = Router(context: APIContext.self)
        // Outermost first: every error (unknown routes included) becomes a problem; then the
        // credential check guards every route.
        if let answerObserverForTesting { router.middlewares.add(AnswerObserver(observe: answerObserverForTesting)) }
        router.middlewares.add(ProblemMiddleware(logger: logger))
        router.middlewares.add(CredentialsMiddleware(policy: policy, logger: logger, peerForTesting: peerForTesting))
        Routes(supervisor: supervisor, records: records, logger: logger, metrics: metrics, simulator: simulator, console: console)
            .register(on: router)
        let path = socketPath
        let group = policy.technicianGroup
        let engineerGroup = policy.engineerGroup
        let guardPolicy = policy
        let registry = ConnectionGuard.Registry()
        let logger = logger
        return Application(
            router: router,
            server: .http1(configuration: .init(
                additionalChannelHandlers: [ConnectionGuard(policy: guardPolicy, registry: registry)], idleTimeout: idleTimeout)),
            configuration: .init(
                address: .unixDomainSocket(path: path), serverName: "stippled",
                availableConnectionsDelegate: MaximumAvailableConnections(maxConnections)),
            onServerRunning: { _ in
                Self.secureSocket(path, group: group, engineerGroup: engineerGroup, logger: logger)
                await onReady()
            },
            logger: logger)
    }

    /// Something other than a socket where the API's socket goes: the daemon will not start.
    public struct SocketPathTaken: Error, CustomStringConvertible {
        public var path: String
        public var description: String { "\(path) exists and is not a socket; refusing to replace it" }
    }

    /// A socket file left by a daemon that died: removed; anything else at the path: refused.
    static func removeStaleSocket(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw SocketPathTaken(path: path)
        }
        unlink(path)
    }

    /// Mode 0660 and the technicians' group: the first of two checks (the second is the
    /// credential check on every request, which holds even if this mode is loosened).
    ///
    /// Engineers (`engineerGroup`) get read-write by an ACL entry of their own: an engineer who is
    /// only in `stipple-eng` reaches the socket as a technician does, without having to be in two
    /// groups for one role (issue 16). Where the file system has no ACLs the socket stays
    /// technicians-only at the file level and the log says so.
    static func secureSocket(_ path: String, group: String, engineerGroup: String? = nil, logger: Logger) {
        chmod(path, 0o660)
        if let gid = RolePolicy.groupID(group) {
            if chown(path, UInt32.max, gid) != 0 {
                logger.warning("cannot give the API socket to group \(group)", metadata: ["errno": "\(errno)"])
            }
        }
        if let engineerGroup, let gid = RolePolicy.groupID(engineerGroup) {
            let refused = stipple_grant_group_rw(path, gid)
            if refused != 0 {
                logger.warning("cannot let group \(engineerGroup) open the socket (no ACL): engineers must also be in group \(group)",
                               metadata: ["path": "\(path)", "error": "\(String(cString: strerror(refused)))"])
            }
        }
    }
}

/// Reads SO_PEERCRED of the connection and decides the role; refuses callers with none.
struct CredentialsMiddleware: RouterMiddleware {
    typealias Context = APIContext
    let policy: RolePolicy
    let logger: Logger
    var peerForTesting: (@Sendable (Request) -> Peer?)? = nil

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        var context = context
        let peer: Peer
        if let peerForTesting {
            guard let given = peerForTesting(request) else {
                return Problem(403, .noCredentials, "the caller's credentials cannot be read").response
            }
            peer = given
        } else {
            guard let provider = context.channel as? any SocketOptionProvider else {
                return Problem(403, .noCredentials, "the caller's credentials cannot be read").response
            }
            let credentials: stipple_ucred
            do {
                credentials = try await provider.unsafeGetSocketOption(
                    level: .socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED)).get()
            } catch {
                return Problem(403, .noCredentials, "the caller's credentials cannot be read: \(error)").response
            }
            peer = policy.peer(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
        }
        guard peer.role >= .technician else {
            logger.notice("refused a caller with no role", metadata: ["uid": "\(peer.uid)", "user": "\(peer.userName)"])
            return Problem(403, .notAMember,
                           "permission denied: \(peer.userName) is not in group \(policy.technicianGroup) (technicians) or \(policy.engineerGroup) (engineers) (ask an administrator: usermod -aG \(policy.technicianGroup) \(peer.userName))").response
        }
        context.peer = peer
        return try await next(request, context)
    }
}

/// Outside every other middleware: the answer as the client gets it (`answerObserverForTesting`).
struct AnswerObserver: RouterMiddleware {
    typealias Context = APIContext
    let observe: @Sendable (Request, Response) -> Void

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        observe(request, response)
        return response
    }
}
