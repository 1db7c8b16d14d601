#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `stipplectl console`'s bridge: HTTP on 127.0.0.1 to the daemon's Unix socket, run as the
/// logged-in user, so that the daemon reads that user's credentials and a technician's console
/// is a technician's (docs/console.md).
///
/// Every request the policy lets through gets an upstream connection of its own, closed when its
/// answer ends — or as soon as the browser's connection closes. An event stream is therefore one
/// upstream connection per tab: the tab's lease ends with it (a closed tab, a killed browser, a
/// killed bridge all close it), and two tabs never share a lease.
public final class ConsoleBridge: Sendable {
    public let policy: BridgePolicy
    let listener: any Channel
    let state: BridgeState

    /// Listens on `127.0.0.1:port` (0: an ephemeral port) and forwards to `socketPath`; stops go
    /// to `stopSocketPath` (the daemon's stop socket). Blocks until bound: call it from a
    /// command's thread, never from an event loop.
    public static func start(socketPath: String, stopSocketPath: String, port: Int, logger: Logger,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws -> ConsoleBridge {
        let state = BridgeState(token: BridgePolicy.secret(), cookie: BridgePolicy.secret())
        let owner = getuid()
        let listener = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                // A bound on connections: a flood (another user's, whose connections close after
                // their 403 anyway) cannot use up the bridge's file descriptors, which its pings
                // need for their upstream connections.
                guard state.connectionOpened() else { return channel.close() }
                channel.closeFuture.whenComplete { _ in state.connectionClosed() }
                return channel.eventLoop.makeCompletedFuture {
                    // Idle both ways for two minutes, between requests: forgotten keep-alive
                    // connections end here (a request in progress, a stream, is never idle).
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: .seconds(120)))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        DownstreamHandler(state: state, socketPath: socketPath, stopSocketPath: stopSocketPath, owner: owner, logger: logger))
                }
            }
            .bind(host: "127.0.0.1", port: port).wait()
        guard let bound = listener.localAddress?.port else {
            try? listener.close().wait()
            throw BridgeError(description: "the bridge's port cannot be read")
        }
        state.setPort(bound)
        return ConsoleBridge(policy: state.policy!, listener: listener, state: state)
    }

    init(policy: BridgePolicy, listener: any Channel, state: BridgeState) {
        self.policy = policy
        self.listener = listener
        self.state = state
    }

    /// Blocks until the listener closes (`close()`, or an error).
    public func wait() throws { try listener.closeFuture.wait() }

    public func close() { listener.close(promise: nil) }

    public struct BridgeError: Error, CustomStringConvertible {
        public var description: String
    }
}

/// The secrets and whether the launch token was used: shared by every connection.
final class BridgeState: Sendable {
    private let box: NIOLockedValueBox<(policy: BridgePolicy?, tokenUsed: Bool)>
    private let connections = NIOLockedValueBox(0)
    let token: String
    let cookie: String
    /// A browser holds at most six connections to one host (HTTP/1.1); this leaves room for
    /// several browsers and tools of the same user, and bounds everything else.
    static let maximumConnections = 64

    init(token: String, cookie: String) {
        self.token = token
        self.cookie = cookie
        box = NIOLockedValueBox((nil, false))
    }

    func connectionOpened() -> Bool {
        connections.withLockedValue { count in
            guard count < Self.maximumConnections else { return false }
            count += 1
            return true
        }
    }

    func connectionClosed() { connections.withLockedValue { $0 -= 1 } }

    var policy: BridgePolicy? { box.withLockedValue { $0.policy } }

    func setPort(_ port: Int) {
        box.withLockedValue { $0.policy = BridgePolicy(port: port, token: token, cookie: cookie) }
    }

    /// Decides, and uses the token up in the same step: two browsers racing with one link get one cookie.
    func decide(_ request: BridgePolicy.Request) -> BridgePolicy.Decision {
        box.withLockedValue { state in
            guard let policy = state.policy else {
                return .refuse(.init(status: 503, code: "bridge_starting", detail: "the bridge is starting"))
            }
            let decision = policy.decide(request, tokenUsed: state.tokenUsed)
            if decision == .launch { state.tokenUsed = true }
            return decision
        }
    }
}

/// One browser connection: checks each request and forwards it over a fresh upstream connection.
final class DownstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let state: BridgeState
    let socketPath: String
    let stopSocketPath: String
    let owner: UInt32
    let logger: Logger
    var peerIsOwner = false
    var peerUID: UInt32?

    /// The request being forwarded: its upstream, once connected, and what came before that.
    var upstream: (any Channel)?
    var pending: [HTTPClientRequestPart] = []
    var forwarding = false
    /// Which request is being forwarded: an upstream connect that completes for an earlier one
    /// (its browser request already answered or gone) is closed, never attached to this one.
    var generation = 0
    /// The current request was answered by the bridge: its body is dropped.
    var discarding = false
    /// Whether the browser keeps the connection after the current request (HTTP/1.1 default;
    /// `Connection: close` or HTTP/1.0 say otherwise, and the bridge then closes it).
    var keepAlive = true

    init(state: BridgeState, socketPath: String, stopSocketPath: String, owner: UInt32, logger: Logger) {
        self.state = state
        self.socketPath = socketPath
        self.stopSocketPath = stopSocketPath
        self.owner = owner
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        if let peerPort = context.remoteAddress?.port, let serverPort = context.localAddress?.port {
            peerUID = LoopbackPeer.owner(peerPort: peerPort, serverPort: serverPort)
            peerIsOwner = peerUID == owner
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The browser went away: so does the request's upstream (and with a stream, its lease).
        upstream?.close(promise: nil)
        upstream = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        upstream?.close(promise: nil)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(head, context: context)
        case .body(let buffer):
            if discarding { return }
            send(.body(.byteBuffer(buffer)))
        case .end(let trailers):
            if discarding { discarding = false; return }
            send(.end(trailers))
        }
    }

    func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        discarding = false
        generation += 1
        keepAlive = head.isKeepAlive
        let request = BridgePolicy.Request(
            method: head.method.rawValue, uri: head.uri,
            headers: head.headers.map { (name: $0.name, value: $0.value) }, peerIsOwner: peerIsOwner)
        switch state.decide(request) {
        case .refuse(let refusal):
            logger.notice("refused a request", metadata: [
                "code": "\(refusal.code)", "method": "\(head.method)", "path": "\(request.path.prefix(120))",
                "peer_uid": "\(peerUID.map(String.init) ?? "unknown")",
            ])
            discarding = true
            answer(context: context, status: refusal.status, code: refusal.code, detail: refusal.detail,
                   close: refusal.code == "bridge_other_user")
        case .launch:
            discarding = true
            var headers = HTTPHeaders()
            headers.add(name: "Location", value: "/console/")
            if let policy = state.policy { headers.add(name: "Set-Cookie", value: policy.setCookie) }
            headers.add(name: "Content-Length", value: "0")
            respond(context: context, HTTPResponseHead(version: head.version, status: .seeOther, headers: headers), body: nil)
        case .forward:
            forwarding = true
            var upstreamHead = head
            upstreamHead.version = .http1_1
            for name in ["cookie", "connection", "keep-alive", "proxy-connection", "te", "upgrade", "host", "transfer-encoding"] {
                upstreamHead.headers.remove(name: name)
            }
            if let length = head.headers.first(name: "content-length") {
                upstreamHead.headers.replaceOrAdd(name: "Content-Length", value: length)
            } else if head.headers.contains(name: "transfer-encoding") {
                upstreamHead.headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            }
            upstreamHead.headers.add(name: "Host", value: "localhost")
            upstreamHead.headers.add(name: "Connection", value: "close")
            pending = [.head(upstreamHead)]
            // Stops go to the daemon's stop socket, whose capacity no load on the API socket can
            // take (docs/openapi.yaml); the API socket answers them the same if it cannot.
            let stop = head.method == .POST && ["/v1/stop", "/v1/estop", "/v1/disarm"].contains(request.path)
            connect(context: context, to: stop ? stopSocketPath : socketPath)
        }
    }

    func connect(context: ChannelHandlerContext, to path: String) {
        let loop = context.eventLoop
        let generation = generation
        let downstream = NIOLoopBound(self, eventLoop: loop)
        let downstreamContext = NIOLoopBound(context, eventLoop: loop)
        ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        UpstreamHandler(downstream: downstream.value, context: downstreamContext.value))
                }
            }
            .connect(unixDomainSocketPath: path)
            .assumeIsolated()
            .whenComplete { result in
                let handler = downstream.value
                switch result {
                case .success(let channel):
                    guard handler.forwarding, handler.generation == generation, downstreamContext.value.channel.isActive else {
                        channel.close(promise: nil)
                        return
                    }
                    handler.upstream = channel
                    // A browser that reads slowly slows the daemon's stream to it, rather than
                    // the bridge buffering it without bound.
                    channel.setOption(ChannelOptions.autoRead, value: downstreamContext.value.channel.isWritable).whenComplete { _ in }
                    for part in handler.pending { channel.write(part, promise: nil) }
                    handler.pending = []
                    channel.flush()
                case .failure:
                    guard handler.generation == generation else { return }
                    if path != handler.socketPath {
                        // No stop socket (an older daemon, or it is gone): the API socket.
                        handler.connect(context: downstreamContext.value, to: handler.socketPath)
                        return
                    }
                    handler.forwarding = false
                    handler.pending = []
                    handler.discarding = true
                    let (code, detail) = DaemonAbsence.describe(socketPath: handler.socketPath)
                    handler.answer(context: downstreamContext.value, status: 503, code: code, detail: detail)
                }
            }
    }

    func send(_ part: HTTPClientRequestPart) {
        guard forwarding else { return }
        if let upstream {
            upstream.writeAndFlush(part, promise: nil)
        } else {
            pending.append(part)
        }
    }

    /// The upstream's answer has ended: the next request gets a connection of its own.
    func finished() {
        forwarding = false
        upstream?.close(promise: nil)
        upstream = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        upstream?.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenComplete { _ in }
        context.fireChannelWritabilityChanged()
    }

    func answer(context: ChannelHandlerContext, status: Int, code: String, detail: String, close: Bool = false) {
        let body = "{\"status\":\(status),\"code\":\"\(code)\",\"title\":\"\(HTTPResponseStatus(statusCode: status).reasonPhrase)\",\"detail\":\(jsonString(detail))}"
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/problem+json")
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        // Another user's connection gets its answer and is closed: it holds nothing open here.
        if close { headers.add(name: "Connection", value: "close") }
        respond(context: context, HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers),
                body: context.channel.allocator.buffer(string: body), close: close)
    }

    func respond(context: ChannelHandlerContext, _ head: HTTPResponseHead, body: ByteBuffer?, close: Bool = false) {
        var head = head
        Self.secure(&head.headers)
        let close = close || !keepAlive
        if close { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        if close {
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            // Only a connection between requests is idle: a stream may be quiet for minutes
            // (no pen, no telemetry) and still be a tab's presence.
            if !forwarding { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    static func secure(_ headers: inout HTTPHeaders) {
        for (name, value) in BridgePolicy.securityHeaders { headers.replaceOrAdd(name: name, value: value) }
    }
}

/// The daemon's answer to one forwarded request, relayed to the browser as it comes (an event
/// stream event by event).
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    let downstream: DownstreamHandler
    let context: ChannelHandlerContext
    var ended = false

    init(downstream: DownstreamHandler, context: ChannelHandlerContext) {
        self.downstream = downstream
        self.context = context
    }

    func channelRead(context upstreamContext: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(var head):
            for name in ["connection", "keep-alive"] { head.headers.remove(name: name) }
            // A stream's connection is the stream's alone: when the page lets go of it, the
            // browser closes the socket at once rather than keeping it for another request.
            if !downstream.keepAlive || head.headers["content-type"].contains(where: { $0.lowercased().hasPrefix("text/event-stream") }) {
                downstream.keepAlive = false
                head.headers.add(name: "Connection", value: "close")
            }
            // The daemon's own policy stands where it set one (the session report allows its
            // inline CSS by hash, and nothing else); every other answer gets the console's.
            let policy = head.headers["content-security-policy"]
            DownstreamHandler.secure(&head.headers)
            if let own = policy.first, policy.count == 1, own.contains("default-src 'none'") {
                head.headers.replaceOrAdd(name: "Content-Security-Policy", value: own)
            }
            context.write(downstream.wrapOutboundOut(.head(head)), promise: nil)
            context.flush()
        case .body(let buffer):
            context.writeAndFlush(downstream.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end:
            ended = true
            // Done with this request before its end is written: writing it lets the pipeline hand
            // over the browser's next request at once, which must find the handler ready.
            let close = !downstream.keepAlive
            downstream.finished()
            let channel = context.channel
            context.writeAndFlush(downstream.wrapOutboundOut(.end(nil))).whenComplete { _ in
                if close { channel.close(promise: nil) }
            }
        }
    }

    func channelInactive(context upstreamContext: ChannelHandlerContext) {
        // The daemon closed before its answer ended (it stopped, or dropped the stream): the
        // browser must see the break, not a stream that merely went quiet.
        if !ended && context.channel.isActive { context.close(promise: nil) }
        upstreamContext.fireChannelInactive()
    }

    func errorCaught(context upstreamContext: ChannelHandlerContext, error: any Error) {
        upstreamContext.close(promise: nil)
    }
}

func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// Why the daemon cannot be reached, in words a technician can act on: stopped, starting, or
/// refused to start (the reason it left beside its socket, `stippled.refused`).
enum DaemonAbsence {
    static func describe(socketPath: String) -> (code: String, detail: String) {
        let directory = socketPath.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if let note = LoopbackPeer.read("\(directory)/stippled.refused"), !note.isEmpty {
            let text = note.split(whereSeparator: \.isNewline).joined(separator: " ").prefix(2000)
            return ("bridge_daemon_refused", "stippled refused to start: \(text) — an engineer must correct this (journalctl -u stippled); the console reconnects by itself once it runs")
        }
        var info = stat()
        if lstat(socketPath, &info) == 0 {
            return ("bridge_daemon_starting", "stippled is starting or stopping (its socket \(socketPath) takes no connections yet); the console reconnects by itself")
        }
        return ("bridge_daemon_down", "stippled is not running (no socket at \(socketPath)); the console reconnects by itself once it runs")
    }
}
