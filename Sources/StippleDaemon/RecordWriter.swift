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
    private let queue = DispatchQueue(label: "stipple.records")
    private let failures = Mutex<[String]>([])

    /// Where each new audit head is kept outside the database, if anywhere (`AuditWitness`).
    let witness: AuditWitness?

    public init(store: RecordStore, witness: AuditWitness? = nil) {
        self.store = store
        self.witness = witness
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

    /// Submits a write; it runs after every write submitted before it.
    @discardableResult
    public func submit(_ what: String, _ body: @escaping @Sendable (RecordStore) throws -> Void) -> Ticket {
        let ticket = Ticket()
        let store = store
        queue.async { [self] in
            do {
                try body(store)
                // Committed: only now may a witness see the head it made.
                if let witness = self.witness, let head = try? store.auditHead() { witness.record(head) }
                ticket.complete(.success(()))
            } catch {
                self.failures.withLock { $0.append("\(what): \(error)") }
                ticket.complete(.failure(error))
            }
        }
        return ticket
    }

    /// A ticket that completes when everything submitted so far is durable.
    public func barrier() -> Ticket { submit("barrier") { _ in } }

    /// Writes that failed since the start (shown in status; the daemon refuses to arm after one).
    public var failedWrites: [String] { failures.withLock { $0 } }

    /// How many writes have failed since the start: a command compares it before and after.
    public var failureCount: Int { failures.withLock { $0.count } }
}
