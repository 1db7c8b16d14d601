import Foundation
import Synchronization

/// A blocking read loop on a named thread of its own, for the edges that have no descriptor to
/// poll from the supervisor's loop: a transport without one, libgpiod's line events, udev's
/// monitor. The one bridge from a blocking call into async code (it replaced three copies):
/// `step` does one bounded read and hands what it got to a stream the caller owns; the loop
/// ends when `stop()` is called, when `keepGoing` says so, or when `step` throws — the error is
/// kept as `failure` — and then runs `finished` (the stream's `finish()`).
final class ReaderThread: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let failed = Mutex<String?>(nil)

    init(name: String, keepGoing: @escaping @Sendable () -> Bool = { true },
         step: @escaping @Sendable () throws -> Void, finished: @escaping @Sendable () -> Void = {}) {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) && keepGoing() {
                do { try step() } catch {
                    failed.withLock { $0 = "\(error)" }
                    break
                }
            }
            finished()
        }
        thread.name = name
        thread.start()
    }

    /// Ends the loop after the read in progress (each read is bounded by its own timeout).
    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Why the loop ended, when a read failed.
    var failure: String? { failed.withLock { $0 } }
}
