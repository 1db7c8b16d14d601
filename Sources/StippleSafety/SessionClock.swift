/// Session time: how long since the session started, pauses included, on a monotonic clock.
///
/// This is a value the daemon persists (`checkpoint`), so that a daemon restart continues the
/// same four hours instead of starting new ones. Within one boot the monotonic clock carries
/// over exactly; across a reboot (when the monotonic clock restarts) the time the machine was
/// down is taken from the wall clock, and never counted as negative.
public struct SessionClock: Hashable, Sendable, Codable {
    /// Session time at the checkpoint.
    public private(set) var elapsedAtCheckpoint: Duration
    /// Monotonic reading at the checkpoint (meaningful only within `bootID`).
    public private(set) var checkpointMonotonic: MonotonicInstant
    /// Wall time at the checkpoint, used only to bridge a reboot.
    public private(set) var checkpointWall: WallTime
    /// Identifies the boot the monotonic reading belongs to (Linux: /proc/sys/kernel/random/boot_id).
    public private(set) var bootID: String
    /// Wall time the session started, for records.
    public let startedWall: WallTime

    public init(startedAt now: MonotonicInstant, wall: WallTime, bootID: String) {
        elapsedAtCheckpoint = .zero
        checkpointMonotonic = now
        checkpointWall = wall
        self.bootID = bootID
        startedWall = wall
    }

    /// Session time at `now` (a reading of the same boot's monotonic clock).
    public func elapsed(at now: MonotonicInstant) -> Duration {
        elapsedAtCheckpoint + max(.zero, now - checkpointMonotonic)
    }

    /// Folds the time since the last checkpoint in; the result is what to persist.
    public mutating func checkpoint(at now: MonotonicInstant, wall: WallTime) {
        elapsedAtCheckpoint = elapsed(at: now)
        checkpointMonotonic = now
        checkpointWall = wall
    }

    /// The clock after a daemon restart. Same boot: exact, whatever the wall clock did. New
    /// boot: the wall-clock time since the checkpoint is added, or nothing if the wall clock
    /// went backwards — session time never decreases.
    public func restored(at now: MonotonicInstant, wall: WallTime, bootID: String) -> SessionClock {
        var clock = self
        if bootID == self.bootID {
            clock.elapsedAtCheckpoint = elapsed(at: now)
        } else {
            let downtime = Duration.seconds(max(0, wall.secondsSince1970 - checkpointWall.secondsSince1970))
            clock.elapsedAtCheckpoint = elapsedAtCheckpoint + downtime
        }
        clock.checkpointMonotonic = now
        clock.checkpointWall = wall
        clock.bootID = bootID
        return clock
    }
}

/// What the daemon knows of a client's earlier sessions, for the gap rule.
public struct ClientHistory: Hashable, Sendable, Codable {
    /// The latest wall time any earlier session of this client was active (its end, or its last
    /// checkpoint if it never closed cleanly); nil for a new client.
    public var lastSessionActivity: WallTime?
    /// Whether a session of this client is open right now.
    public var hasOpenSession: Bool

    public init(lastSessionActivity: WallTime? = nil, hasOpenSession: Bool = false) {
        self.lastSessionActivity = lastSessionActivity
        self.hasOpenSession = hasOpenSession
    }
}

/// Cartridges already used, by id, with the session that used each. A cartridge seen in any
/// earlier session can never be armed again (single-use, sterile).
public struct CartridgeLedger: Hashable, Sendable, Codable {
    public private(set) var sessionByCartridge: [String: String]

    public init(sessionByCartridge: [String: String] = [:]) { self.sessionByCartridge = sessionByCartridge }

    /// The other session that used this cartridge, if any.
    public func earlierUse(of cartridgeID: String, otherThan sessionID: String) -> String? {
        guard let session = sessionByCartridge[cartridgeID], session != sessionID else { return nil }
        return session
    }

    public mutating func record(_ cartridgeID: String, in sessionID: String) {
        if sessionByCartridge[cartridgeID] == nil { sessionByCartridge[cartridgeID] = sessionID }
    }
}
