#if canImport(Glibc)
import Glibc
#endif
import CStippleSys
import Foundation
import Synchronization

/// One thread that runs closures in order: the records' writer. A thread of its own rather than a
/// dispatch queue so that it can run under SCHED_FIFO: a stop's answer waits for its record to be
/// committed, and on a machine busy with other users' work a normal-priority writer would wait for
/// a core while holding that answer back (issue 15 item 8). The work is short (small SQLite
/// transactions; the fsync blocks without using a core), so the real-time class costs others
/// nothing measurable; threads it would create run at normal priority (SCHED_RESET_ON_FORK).
final class SerialWorker: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []

    init(name: String, realtimePriority: Int = 0) {
        let thread = Thread { [self] in
            stipple_name_thread(name)
            if realtimePriority > 0 { _ = stipple_thread_realtime(Int32(realtimePriority)) }
            run()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    func async(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job() }
        }
    }
}
