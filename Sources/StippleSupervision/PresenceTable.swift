import StippleSafety
import StippleWire

/// Who is at the controls: the operator-presence lease, as a pure value (time in, decisions out),
/// so the supervisor's core can carry it and tests can drive every order of events (issue 15).
///
/// Presence belongs to **connections and the credentials read from them**, never to a name a
/// client chooses:
/// - each `GET /v1/events` that names a client is a *stream* with an id the daemon allocates
///   (never reused, never derived from the client's name) and the peer's uid and pid;
/// - arming is granted only to a peer that holds such a stream under the same client id, from the
///   same uid **and** pid, and binds the lease to that one stream: another process or user using
///   the same client id can neither keep the lease alive nor take it over;
/// - an open socket is not a sign of life (a client stopped with SIGSTOP keeps its socket open):
///   the holder must also ping (`POST /v1/presence`) within the window, or it loses the lease.
///
/// Time is the real monotonic clock even when the simulator accelerates the session clock: a
/// person's screen does not speed up.
public struct PresenceTable: Sendable {
    /// The peer as read from its socket (SO_PEERCRED), and the client id it chose. The id only
    /// tells apart the clients of one process (a console bridge serving several browser tabs).
    public struct Holder: Hashable, Sendable, CustomStringConvertible {
        public var uid: UInt32
        public var pid: Int32
        public var client: String

        public init(uid: UInt32, pid: Int32, client: String) {
            self.uid = uid
            self.pid = pid
            self.client = client
        }

        public var description: String { "client \(client) (uid \(uid), pid \(pid))" }
    }

    /// One open event stream: a connection, with whose credentials, and its last sign of life.
    public struct Stream: Sendable {
        public var id: ConnectionID
        public var holder: Holder
        public var lastSign: MonotonicInstant
    }

    /// Why arming cannot be granted to a caller: each says what the client must do.
    public enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        case noStream(Holder)
        case stale(Holder, silentFor: Duration)

        public var description: String {
            switch self {
            case .noStream(let holder):
                "\(holder) holds no event stream of its own: open GET /v1/events with the same X-Stipple-Client from the same process"
            case .stale(let holder, let silence):
                "\(holder) has sent no sign of life for \(silence.clockText): POST /v1/presence at least every \(PresenceTable.recommendedPing.milliseconds) ms"
            }
        }
    }

    /// How long a holder may go without a sign of life.
    public let window: Duration
    /// Open streams by id. Bounded by the API's connection limits (each stream is a connection).
    public private(set) var streams: [ConnectionID: Stream] = [:]
    /// The stream that armed, while the session is armed.
    public private(set) var lease: ConnectionID?
    /// The next stream id: only ever increases, so an id is never reused or aliased, however many
    /// streams come and go.
    private var nextID: UInt64 = 1

    /// What clients are told to do: well inside the window, even on a loaded machine.
    public static let recommendedPing = Duration.milliseconds(250)

    public init(window: Duration) { self.window = window }

    /// A stream opened by `holder` at `now`: its id. Opening is itself a sign of life.
    public mutating func open(_ holder: Holder, at now: MonotonicInstant) -> ConnectionID {
        let id = ConnectionID(nextID)
        nextID &+= 1
        streams[id] = Stream(id: id, holder: holder, lastSign: now)
        return id
    }

    /// A stream closed. Returns the lease if this stream held it: the lease is lost at once (a
    /// page reloading never gets it back; the technician arms again).
    public mutating func close(_ id: ConnectionID) -> ConnectionID? {
        streams.removeValue(forKey: id)
        guard lease == id else { return nil }
        lease = nil
        return id
    }

    /// A sign of life from `holder`: refreshes every stream of that exact peer and client id.
    /// Returns how many streams it refreshed (0: the holder has no stream; the ping keeps nothing).
    @discardableResult
    public mutating func sign(_ holder: Holder, at now: MonotonicInstant) -> Int {
        var refreshed = 0
        for (id, stream) in streams where stream.holder == holder {
            streams[id]?.lastSign = max(stream.lastSign, now)
            refreshed += 1
        }
        return refreshed
    }

    /// The stream an arm asked by `holder` would bind to: the newest of the holder's own streams,
    /// if it has shown a sign of life within the window.
    public func candidate(for holder: Holder, at now: MonotonicInstant) -> Result<ConnectionID, Refusal> {
        guard let newest = streams.values.filter({ $0.holder == holder }).max(by: { $0.id.value < $1.id.value }) else {
            return .failure(.noStream(holder))
        }
        let silence = now - newest.lastSign
        guard silence <= window else { return .failure(.stale(holder, silentFor: silence)) }
        return .success(newest.id)
    }

    /// The session armed on `id`'s behalf: that stream now holds the lease, and only it.
    public mutating func bind(_ id: ConnectionID) {
        lease = streams[id] == nil ? nil : id
    }

    /// The session is no longer armed: nobody holds the lease.
    public mutating func release() { lease = nil }

    /// The lease, if its holder has gone quiet for longer than the window (or its stream is gone):
    /// the lease is then dropped and returned, for the core to stop the needle.
    public mutating func expire(at now: MonotonicInstant) -> ConnectionID? {
        guard let lease else { return nil }
        if let stream = streams[lease], now - stream.lastSign <= window { return nil }
        self.lease = nil
        return lease
    }

    /// Whether `id` still holds a live lease at `now`.
    public func isAlive(_ id: ConnectionID, at now: MonotonicInstant) -> Bool {
        guard let stream = streams[id] else { return false }
        return now - stream.lastSign <= window
    }
}
