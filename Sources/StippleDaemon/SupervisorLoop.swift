#if canImport(Glibc)
import Glibc
#endif
import CStippleSys
import Foundation
import Synchronization

/// The supervisor's own thread: its executor, and the reader of the pen's file descriptor.
///
/// Every input to the supervisor runs on this one thread, one at a time — API commands and
/// other awaits arrive as jobs; the pen's bytes are read here the moment `poll` says they are
/// there and handled at once, in the same call (no hand-over to another thread or task on the
/// stop path: frame read → `SafetyCore` → stop frame written, on this thread). It is SwiftNIO's
/// event loop in miniature: `poll` on a wake-up pipe and the pen, run the jobs, read the pen,
/// tick.
public final class SupervisorLoop: SerialExecutor, @unchecked Sendable {
    /// What the loop watches: the pen's descriptor, what to do when it is readable, and a tick.
    struct Watch {
        var descriptor: Int32?
        var onReadable: (@Sendable () -> Void)?
        var tickPeriod: Duration?
        var onTick: (@Sendable () -> Void)?
    }

    private let jobs = Mutex<[UnownedJob]>([])
    private let urgentJobs = Mutex<[UnownedJob]>([])
    private let urgentBlocks = Mutex<[@Sendable () -> Void]>([])
    private let watch = Mutex(Watch())
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let threadID = Mutex<pthread_t?>(nil)
    private let running = Atomic<Bool>(true)
    /// True while the loop is (about to be) blocked in `poll`: only then does a job need the
    /// wake-up pipe (a system call per actor hop would halve the simulator's throughput).
    private let sleeping = Atomic<Bool>(false)

    /// Whether the loop's thread runs under SCHED_FIFO, and if not, why.
    public enum Scheduling: Sendable, Equatable, CustomStringConvertible {
        /// Not asked for (the default for tests; the daemon asks unless the clock is simulated).
        case normal
        case realtime(priority: Int)
        /// Asked for and refused by the system (no CAP_SYS_NICE, RLIMIT_RTPRIO too low,
        /// RestrictRealtime=): the loop runs at normal priority.
        case refused(priority: Int, errno: Int32)

        public var description: String {
            switch self {
            case .normal: "normal"
            case .realtime(let priority): "SCHED_FIFO \(priority)"
            case .refused(let priority, let errno): "normal (SCHED_FIFO \(priority) refused: \(String(cString: strerror(errno))))"
            }
        }
    }

    /// Set once by the thread before `init` returns.
    private let schedulingResult = Mutex(Scheduling.normal)
    public var scheduling: Scheduling { schedulingResult.withLock { $0 } }

    /// `realtimePriority` (1...99; 0 for none): the loop's thread asks for SCHED_FIFO at that
    /// priority, so that a pen frame wakes it ahead of the API's threads, the records' writer
    /// and anything else on the machine at normal priority — the stop path's tail latency is
    /// otherwise whatever the scheduler makes of a busy machine. Only this thread: the rest of
    /// the daemon stays at normal priority. The loop never spins (it sleeps in `poll`), and
    /// the kernel's real-time throttling still leaves the machine to others.
    public init(name: String = "stipple-supervisor", realtimePriority: Int = 0) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { fatalError("stippled: cannot create the supervisor's wake-up pipe (errno \(errno))") }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        // The thread keeps the loop alive until `stop()` ends it: the loop's state is never
        // freed under a running thread.
        let thread = Thread { [self] in
            // Named for `top -H`, `perf` and `ps -L` (Foundation names only its own view of it).
            stipple_name_thread(name)
            if realtimePriority > 0 {
                let result = stipple_thread_realtime(Int32(realtimePriority))
                self.schedulingResult.withLock {
                    $0 = result == 0 ? .realtime(priority: realtimePriority) : .refused(priority: realtimePriority, errno: result)
                }
            }
            self.run()
        }
        thread.stackSize = 4 << 20
        thread.start()
        while threadID.withLock({ $0 }) == nil { usleep(100) }
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    // MARK: - SerialExecutor

    /// Jobs of high-priority tasks — stops, e-stops and disarms (`Supervisor.urgently`) — go to a
    /// lane of their own that the loop runs before any other queued job: a flood of API requests
    /// queues its jobs behind them, never in front (issue 15 item 8).
    public func enqueue(_ job: consuming ExecutorJob) {
        let urgent = job.priority.rawValue >= Self.urgentPriority
        let unowned = UnownedJob(job)
        if urgent {
            urgentJobs.withLock { $0.append(unowned) }
        } else {
            jobs.withLock { $0.append(unowned) }
        }
        if sleeping.exchange(false, ordering: .sequentiallyConsistent) { wake() }
    }

    /// Runs `block` on the loop's thread in the urgent lane, ahead of every queued job, with no
    /// task at all (the stop socket: a stop must not wait for a thread of Swift's cooperative
    /// pool, which an API request flood keeps busy).
    public func enqueueUrgent(_ block: @escaping @Sendable () -> Void) {
        urgentBlocks.withLock { $0.append(block) }
        if sleeping.exchange(false, ordering: .sequentiallyConsistent) { wake() }
    }

    /// `TaskPriority.high`: the priority the stop path's tasks run at.
    static let urgentPriority = TaskPriority.high.rawValue

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func checkIsolated() {
        precondition(isOnLoop, "not on the supervisor's thread")
    }

    /// Whether the caller runs on the loop's thread.
    public var isOnLoop: Bool {
        guard let id = threadID.withLock({ $0 }) else { return false }
        return pthread_equal(pthread_self(), id) != 0
    }

    // MARK: - Watching the pen

    /// Watches `descriptor`: `onReadable` runs on the loop's thread whenever it is readable.
    public func watch(descriptor: Int32, onReadable: @escaping @Sendable () -> Void) {
        update { $0.descriptor = descriptor; $0.onReadable = onReadable }
    }

    /// Stops watching the pen's descriptor.
    public func unwatch() {
        update { $0.descriptor = nil; $0.onReadable = nil }
    }

    /// Runs `onTick` on the loop's thread every `period`.
    public func tick(every period: Duration, _ onTick: @escaping @Sendable () -> Void) {
        update { $0.tickPeriod = period; $0.onTick = onTick }
    }

    /// Stops the tick.
    public func untick() {
        update { $0.tickPeriod = nil; $0.onTick = nil }
    }

    /// Changes what the loop watches and wakes it, so its next `poll` sees the change.
    private func update(_ change: (inout Watch) -> Void) {
        watch.withLock { change(&$0) }
        wake()
    }

    public func stop() {
        running.store(false, ordering: .relaxed)
        wake()
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    // MARK: - The loop

    private func run() {
        threadID.withLock { $0 = pthread_self() }
        var nextTick = ContinuousClock.now
        var drain = [UInt8](repeating: 0, count: 256)
        // Allocated once: the loop goes round once per pen frame.
        var fds = [pollfd](repeating: pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0), count: 2)
        while running.load(ordering: .relaxed) {
            let current = watch.withLock { $0 }
            var timeout: Int32 = 1000
            if current.tickPeriod != nil {
                let remaining = nextTick - ContinuousClock.now
                // Rounded up: a timeout rounded down to 0 would spin until the tick is due.
                let milliseconds = remaining.components.seconds * 1000
                    + (remaining.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
                timeout = Int32(clamping: max(0, min(milliseconds, 1000)))
            }
            fds[0].revents = 0
            fds[1] = pollfd(fd: current.descriptor ?? -1, events: Int16(POLLIN), revents: 0)
            let watched = current.descriptor == nil ? 1 : 2
            sleeping.store(true, ordering: .sequentiallyConsistent)
            if !jobs.withLock({ $0.isEmpty }) || hasUrgentWork { timeout = 0 }
            let ready = poll(&fds, nfds_t(watched), timeout)
            sleeping.store(false, ordering: .sequentiallyConsistent)
            if ready < 0 && errno != EINTR { usleep(1000) }
            if fds[0].revents != 0 { while read(wakeRead, &drain, drain.count) > 0 {} }
            // The pen first: a stop never waits behind a queue of API work.
            if watched > 1, fds[1].revents != 0, let onReadable = current.onReadable { onReadable() }
            runJobs()
            if let period = current.tickPeriod, let onTick = current.onTick, ContinuousClock.now >= nextTick {
                nextTick = ContinuousClock.now + period
                onTick()
                runJobs()
            }
        }
    }

    private func runJobs() {
        while true {
            runUrgentJobs()
            let batch = jobs.withLock { jobs -> [UnownedJob] in
                defer { jobs.removeAll(keepingCapacity: true) }
                return jobs
            }
            if batch.isEmpty {
                if !hasUrgentWork { return }
                continue
            }
            // The urgent lane is checked before each ordinary job of the batch.
            for job in batch {
                runUrgentJobs()
                job.runSynchronously(on: asUnownedSerialExecutor())
            }
        }
    }

    private var hasUrgentWork: Bool { !urgentJobs.withLock({ $0.isEmpty }) || !urgentBlocks.withLock({ $0.isEmpty }) }

    private func runUrgentJobs() {
        while true {
            let blocks = urgentBlocks.withLock { blocks -> [@Sendable () -> Void] in
                defer { blocks.removeAll(keepingCapacity: true) }
                return blocks
            }
            for block in blocks { block() }
            let batch = urgentJobs.withLock { jobs -> [UnownedJob] in
                defer { jobs.removeAll(keepingCapacity: true) }
                return jobs
            }
            if batch.isEmpty && blocks.isEmpty { return }
            for job in batch { job.runSynchronously(on: asUnownedSerialExecutor()) }
        }
    }
}
