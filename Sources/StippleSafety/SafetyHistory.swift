/// What is known of earlier sessions: the cartridge ledger, each client's last session, and
/// every session id ever used. The daemon loads it from its records when it builds the core;
/// the core then keeps it current itself (a session it opens, closes or arms), so the gap rule
/// and the single-use rule hold even when no caller tells the core anything. No API caller
/// supplies history, so none can bypass a rule by leaving it out.
///
/// Every identifier is kept in its canonical form (`Identifier`).
public struct SafetyHistory: Hashable, Sendable, Codable {
    /// A client's most recent session.
    public struct ClientRecord: Hashable, Sendable, Codable {
        /// The latest wall time the client's sessions were active (an end, or the last
        /// checkpoint of a session that never closed cleanly).
        public var lastActivity: WallTime
        /// A session of this client that is still open, if any.
        public var openSessionID: String?
    }

    /// Canonical cartridge id → the session that used it. A cartridge seen in any session can
    /// never be armed in another (single-use, sterile).
    public private(set) var cartridges: [String: String] = [:]
    /// Canonical client id → its most recent session.
    public private(set) var clients: [String: ClientRecord] = [:]
    /// Every canonical session id used so far: an id is never reused, so reusing one can never
    /// make a used cartridge usable again.
    public private(set) var sessionIDs: Set<String> = []

    public init() {}

    /// Adds a session from the records (or one the core opened, checkpointed or closed).
    public mutating func recordSession(id: String, client: String, lastActivity: WallTime, isOpen: Bool) {
        let session = Self.key(id)
        sessionIDs.insert(session)
        let key = Self.key(client)
        var record = clients[key] ?? ClientRecord(lastActivity: lastActivity, openSessionID: nil)
        record.lastActivity = max(record.lastActivity, lastActivity)
        if isOpen {
            record.openSessionID = session
        } else if record.openSessionID == session {
            record.openSessionID = nil
        }
        clients[key] = record
    }

    /// Binds a cartridge to a session; the first binding stays.
    public mutating func recordCartridgeUse(_ cartridgeID: String, session: String) {
        let key = Self.key(cartridgeID)
        if cartridges[key] == nil { cartridges[key] = Self.key(session) }
    }

    /// The other session that used this cartridge, if any.
    public func earlierUse(of cartridgeID: String, otherThan sessionID: String) -> String? {
        guard let session = cartridges[Self.key(cartridgeID)], session != Self.key(sessionID) else { return nil }
        return session
    }

    public func client(_ clientID: String) -> ClientRecord? { clients[Self.key(clientID)] }

    public func knowsSession(_ sessionID: String) -> Bool { sessionIDs.contains(Self.key(sessionID)) }

    /// The canonical form; an identifier with none is kept as given, so it still matches itself.
    static func key(_ id: String) -> String { Identifier.canonical(id) ?? id }
}
