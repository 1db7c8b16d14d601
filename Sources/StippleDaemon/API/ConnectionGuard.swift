import CStippleSys
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the API answering an e-stop however many connections others open (H12, H14):
///
/// - every connection must send a complete request head within `headTimeout`, or it is closed
///   (idle and slowloris connections cannot sit on the connection budget);
/// - each user may hold at most `perUserLimit` connections (`nonMemberLimit` for callers with no
///   role, who get their 403 on those and nothing more); a new connection from a user at the
///   limit closes that user's oldest connection still waiting for its first request, or is
///   itself refused if all of them are busy.
///
/// The per-request credential check (`CredentialsMiddleware`) still decides what a caller may do.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer  // never unwrapped: anything read means a request head arrived

    /// One open connection, shared with the registry.
    final class Entry: Sendable {
        let channel: any Channel
        let opened = ContinuousClock.now
        let sawRequest = Atomic<Bool>(false)
        init(channel: any Channel) { self.channel = channel }
    }

    /// Every guarded connection, by user.
    final class Registry: Sendable {
        private let connections = Mutex<[UInt32: [Entry]]>([:])
        let perUserLimit: Int
        let nonMemberLimit: Int

        init(perUserLimit: Int = 16, nonMemberLimit: Int = 4) {
            self.perUserLimit = perUserLimit
            self.nonMemberLimit = nonMemberLimit
        }

        /// Admits `entry` for `uid`, evicting the user's oldest idle connection if need be.
        func admit(_ entry: Entry, uid: UInt32, member: Bool) -> Bool {
            let limit = member ? perUserLimit : nonMemberLimit
            let evicted: Entry? = connections.withLock { all in
                var mine = all[uid] ?? []
                var victim: Entry?
                if mine.count >= limit {
                    guard let index = mine.firstIndex(where: { !$0.sawRequest.load(ordering: .relaxed) }) else { return entry }
                    victim = mine.remove(at: index)
                }
                mine.append(entry)
                all[uid] = mine
                return victim
            }
            if let evicted {
                evicted.channel.close(promise: nil)
                return evicted !== entry
            }
            return true
        }

        func release(_ entry: Entry, uid: UInt32) {
            connections.withLock { all in
                all[uid]?.removeAll { $0 === entry }
                if all[uid]?.isEmpty == true { all[uid] = nil }
            }
        }
    }

    let policy: RolePolicy
    let registry: Registry
    let headTimeout: TimeAmount
    private var entry: Entry?
    private var uid: UInt32?
    private var timeout: Scheduled<Void>?

    init(policy: RolePolicy, registry: Registry, headTimeout: TimeAmount = .seconds(3)) {
        self.policy = policy
        self.registry = registry
        self.headTimeout = headTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let entry, !entry.sawRequest.load(ordering: .relaxed) {
            entry.sawRequest.store(true, ordering: .relaxed)
            timeout?.cancel()
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        if let entry, let uid { registry.release(entry, uid: uid) }
        entry = nil
        context.fireChannelInactive()
    }

    private func start(context: ChannelHandlerContext) {
        guard entry == nil else { return }
        let channel = context.channel
        let entry = Entry(channel: channel)
        self.entry = entry
        timeout = context.eventLoop.scheduleTask(in: headTimeout) {
            if !entry.sawRequest.load(ordering: .relaxed) { channel.close(promise: nil) }
        }
        guard let provider = channel as? any SocketOptionProvider else {
            channel.close(promise: nil)
            return
        }
        let policy = policy
        let registry = registry
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        provider.unsafeGetSocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
            .whenComplete { (result: Result<stipple_ucred, any Error>) in
                guard case .success(let credentials) = result else {
                    channel.close(promise: nil)
                    return
                }
                let member = policy.peer(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid).role >= .technician
                if registry.admit(entry, uid: credentials.uid, member: member) {
                    if channel.isActive {
                        bound.value.uid = credentials.uid
                    } else {
                        registry.release(entry, uid: credentials.uid)  // it closed meanwhile
                    }
                } else {
                    channel.close(promise: nil)
                }
            }
    }
}
