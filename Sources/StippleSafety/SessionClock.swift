import StippleWire

/// Session time: how long since the session started, pauses included, on a monotonic clock.
///
/// This is a value the daemon persists (`checkpoint`), so that a daemon restart continues the
/// same four hours instead of starting new ones. Session time never goes backwards, whatever
/// the input: every doubt resolves toward more elapsed time, or, where no bound can be trusted,
/// toward a locked session (`Restored.Trust.untrusted`).
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

    /// Session time at `now` (a reading of the same boot's monotonic clock). A reading behind
    /// the checkpoint adds nothing; it never takes time away.
    public func elapsed(at now: MonotonicInstant) -> Duration {
        Self.plausible(elapsedAtCheckpoint) + max(.zero, now - checkpointMonotonic)
    }

    /// Far beyond any session (about 34,000 years), small enough that sums never overflow: a
    /// record claiming more is clamped here, and a session past its four hours closes anyway.
    public static let maximumElapsed = Duration.seconds(Int64(1) << 40)

    /// A persisted session time within 0...`maximumElapsed`.
    static func plausible(_ elapsed: Duration) -> Duration { min(max(.zero, elapsed), maximumElapsed) }

    /// Folds the time since the last checkpoint in; the result is what to persist.
    public mutating func checkpoint(at now: MonotonicInstant, wall: WallTime) {
        observe(now)
        checkpointWall = max(checkpointWall, wall)
    }

    /// One reading of the monotonic clock. Session time is the sum of the forward steps between
    /// successive readings: a reading behind the last one adds nothing and gives nothing back,
    /// and later readings count from it — so a clock that keeps stepping back still reaches the
    /// four hours at the real rate, instead of standing still until it has caught up (H4).
    public mutating func observe(_ now: MonotonicInstant) {
        elapsedAtCheckpoint = elapsed(at: now)
        checkpointMonotonic = now
    }

    /// Session time at least `elapsed` (another record, such as the audit chain, shows more):
    /// the larger time wins, nothing is given back.
    public mutating func raise(atLeast elapsed: Duration) {
        elapsedAtCheckpoint = max(Self.plausible(elapsedAtCheckpoint), Self.plausible(elapsed))
    }

    /// Session time never beyond `limit`: a session closed by its time limit used exactly that
    /// much, even when the close was noticed late (a daemon that was down at 4:00).
    public mutating func cap(at limit: Duration) {
        elapsedAtCheckpoint = min(Self.plausible(elapsedAtCheckpoint), limit)
    }

    /// The clock after a restart, and whether its reading can be trusted.
    public struct Restored: Hashable, Sendable {
        public enum Trust: Hashable, Sendable {
            /// Same boot: exact, from the monotonic clock, whatever the wall clock did.
            case exact
            /// New boot: the downtime was bridged with the wall clock.
            case bridged(downtime: Duration)
            /// No trustworthy bound on the time that passed (or the record contradicts
            /// itself): the session must be locked, not continued with time given back.
            case untrusted(reason: String)
        }
        public var clock: SessionClock
        public var trust: Trust
    }

    /// The clock after a daemon restart.
    ///
    /// - same boot: exact — unless the monotonic clock reads behind the checkpoint, which
    ///   cannot happen within one boot: the record is wrong, so it is untrusted;
    /// - new boot: the wall-clock time since the checkpoint is added; a wall clock behind the
    ///   checkpoint gives no bound on the downtime, so it is untrusted (never "zero downtime");
    /// - a negative persisted session time is a corrupted record: untrusted.
    ///
    /// An untrusted clock keeps the largest session time it can justify.
    public func restored(at now: MonotonicInstant, wall: WallTime, bootID: String) -> Restored {
        var clock = self
        clock.elapsedAtCheckpoint = Self.plausible(elapsedAtCheckpoint)
        clock.checkpointMonotonic = now
        clock.checkpointWall = max(wall, checkpointWall)
        clock.bootID = bootID
        if elapsedAtCheckpoint < .zero {
            return Restored(clock: clock, trust: .untrusted(reason: "the persisted session time \(elapsedAtCheckpoint.clockText) is negative"))
        }
        if bootID == self.bootID {
            guard now >= checkpointMonotonic else {
                return Restored(clock: clock, trust: .untrusted(
                    reason: "the monotonic clock reads \(now), behind the checkpoint \(checkpointMonotonic) of the same boot"))
            }
            clock.elapsedAtCheckpoint = elapsed(at: now)
            return Restored(clock: clock, trust: .exact)
        }
        guard wall >= checkpointWall else {
            return Restored(clock: clock, trust: .untrusted(
                reason: "after a reboot the wall clock reads \((checkpointWall - wall).clockText) behind the last checkpoint"))
        }
        let downtime = wall - checkpointWall
        clock.elapsedAtCheckpoint = Self.plausible(Self.plausible(elapsedAtCheckpoint) + downtime)
        return Restored(clock: clock, trust: .bridged(downtime: downtime))
    }
}
