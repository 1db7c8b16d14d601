import Dispatch
import Foundation
import StippleRecords
import Synchronization

/// Serialises every write to the records on one queue of its own, in the order the supervisor
/// submits them, so that the supervisor never waits for a disk commit on the stop path, and a
/// caller that must not answer before its write is durable awaits its ticket. Because the queue is
/// serial, a ticket completing means every write submitted before it is durable too.
public final class RecordWriter: Sendable {
    public let store: RecordStore
    private let queue: SerialWorker
    private let failures = Mutex<[String]>([])
    private let failureTotal = Mutex(0)

    /// Where each new audit head is kept outside the database, if anywhere (`AuditWitness`).
    let witness: AuditWitness?

    /// `realtimePriority` (0: normal scheduling): the writer's thread under SCHED_FIFO, as the
    /// supervisor's, so that commits — and the answers that wait for them — keep their pace on a
    /// busy machine (`SerialWorker`).
    public init(store: RecordStore, witness: AuditWitness? = nil, realtimePriority: Int = 0) {
        self.store = store
        self.witness = witness
        queue = SerialWorker(name: "stipple-records", realtimePriority: realtimePriority)
    }

    /// The result of one submitted write.
    public final class Ticket: Sendable {
        private let state = Mutex<(result: Result<Void, any Error>?, waiters: [CheckedContinuation<Void, any Error>])>((nil, []))

        fileprivate func complete(_ result: Result<Void, any Error>) {
            let waiters = state.withLock { state in
                state.result = result
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(with: result) }
        }

        /// Returns once the write is on disk; throws what the write threw.
        public func durable() async throws {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let done = state.withLock { state -> Result<Void, any Error>? in
                    if let result = state.result { return result }
                    state.waiters.append(continuation)
                    return nil
                }
                if let done { continuation.resume(with: done) }
            }
        }
    }

    /// A write that failed and must still land (it records something that happened: a fault, a
    /// stop, the session's state), retried in order before anything newer is written.
    private struct Pending {
        let what: String
        let body: @Sendable (RecordStore) throws -> Void
    }

    /// Only touched on `queue`.
    private nonisolated(unsafe) var pending: [Pending] = []
    private let pendingWhat = Mutex<[String]>([])
    /// Whether the newest write failed: the disk refused the last thing asked of it.
    private let lastFailed = Mutex<String?>(nil)

    /// Submits a write; it runs after every write submitted before it.
    ///
    /// - `retry: true` (facts that happened: faults, stops, state, warnings): a failed write is
    ///   kept in memory and retried, in order, before every later write and on `retryPending()`,
    ///   so it is recorded as soon as the disk has room again;
    /// - `retry: false` (what a command asks for before it takes effect: a setpoint, an arm, a
    ///   limits change): a failed write is dropped — the command is refused, and nothing of it
    ///   may appear in the records later.
    ///
    /// `then`, if given, runs on the writer's queue once the write is done (or failed): a caller
    /// that must not wait on Swift's cooperative pool (the stop socket's answers) gets its result
    /// there, with no task hop.
    @discardableResult
    public func submit(_ what: String, retry: Bool = true, touchesDisk: Bool = true, _ body: @escaping @Sendable (RecordStore) throws -> Void,
                       then: (@Sendable (Result<Void, any Error>) -> Void)? = nil) -> Ticket {
        let ticket = Ticket()
        let store = store
        queue.async { [self] in
            let result: Result<Void, any Error>
            do {
                let drained = try drainPending(store)
                try body(store)
                // Committed: only now may a witness see the head it made.
                if let witness = self.witness, let head = try? store.auditHead() { witness.record(head) }
                // Only a write that reached the disk shows the disk takes writes again (a barrier
                // writes nothing).
                if touchesDisk || drained > 0 { lastFailed.withLock { $0 = nil } }
                result = .success(())
            } catch {
                self.failureTotal.withLock { $0 += 1 }
                self.failures.withLock { failures in
                    failures.append("\(what): \(error)")
                    if failures.count > 1000 { failures.removeFirst(failures.count - 1000) }
                }
                lastFailed.withLock { $0 = "\(what): \(error)" }
                if retry { keep(Pending(what: what, body: body)) }
                result = .failure(error)
            }
            ticket.complete(result)
            then?(result)
        }
        return ticket
    }

    /// Runs on `queue`: the kept writes first, in order; stops at the first that still fails.
    @discardableResult
    private func drainPending(_ store: RecordStore) throws -> Int {
        var drained = 0
        while let first = pending.first {
            try first.body(store)
            pending.removeFirst()
            _ = pendingWhat.withLock { $0.removeFirst() }
            drained += 1
        }
        return drained
    }

    private func keep(_ write: Pending) {
        pending.append(write)
        pendingWhat.withLock { $0.append(write.what) }
    }

    /// While the records are not writable: the kept writes again, then a probe write (a barrier
    /// touches no disk and proves nothing). The supervisor calls it about once a second.
    public func retryPending(at wall: Int64) {
        guard !isWritable else { return }
        submit("probe", retry: false) { try $0.probeWrite(at: wall) }
    }

    /// The disk refused a write at start (the daemon starts faulted, never armable).
    public func startedUnwritable(_ why: String) { lastFailed.withLock { $0 = why } }

    /// Whether the records take writes now: nothing kept waiting, and the newest write landed.
    public var isWritable: Bool { unrecorded.isEmpty && lastFailed.withLock { $0 == nil } }

    /// Why the records are not writable, in words (status, refusals); nil when they are.
    public var unwritableReason: String? {
        let kept = unrecorded
        let last = lastFailed.withLock { $0 }
        if kept.isEmpty && last == nil { return nil }
        var parts: [String] = []
        if let last { parts.append("the last write failed (\(last))") }
        if !kept.isEmpty { parts.append("\(kept.count) record(s) kept in memory until the disk has room: \(kept.prefix(5).joined(separator: ", "))") }
        return parts.joined(separator: "; ")
    }

    /// A ticket that completes when everything submitted so far is durable.
    public func barrier() -> Ticket { submit("barrier", retry: false, touchesDisk: false) { _ in } }

    /// Writes that failed since the start (the last ones shown in status).
    public var failedWrites: [String] { failures.withLock { $0 } }

    /// Records of things that happened that are not on disk yet (kept in memory and retried):
    /// while there are any, arming is refused.
    public var unrecorded: [String] { pendingWhat.withLock { $0 } }

    /// How many writes have failed since the start: a command compares it before and after.
    public var failureCount: Int { failureTotal.withLock { $0 } }
}
