import Foundation
import Logging
import StippleDaemon
import StippleRecords
import Synchronization

/// A test rig whose pen and link advance only when the test steps them (`DaemonRig`, `GPIORig`).
protocol SteppedRig {
    /// One step of the rig's virtual time.
    static var step: Duration { get }
    func run(for duration: Duration) async
}

extension SteppedRig {
    /// Runs until `condition` holds (checked every step), at most `limit`.
    @discardableResult
    func run(until limit: Duration, _ condition: @Sendable () async -> Bool) async -> Bool {
        var elapsed = Duration.zero
        while elapsed < limit {
            if await condition() { return true }
            await run(for: Self.step)
            elapsed += Self.step
        }
        return await condition()
    }

    /// Runs `command` — an API command that waits for the pen's answer — while the rig keeps
    /// stepping, until it returns. (The records' writes it waits for run on their own queue, in
    /// real time: the loop also yields real time between steps.)
    @discardableResult
    func whileRunning<T: Sendable>(_ command: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await command() }
        let done = Mutex(false)
        let watcher = Task {
            _ = try? await task.value
            done.withLock { $0 = true }
        }
        for _ in 0..<20_000 where !done.withLock({ $0 }) {
            await run(for: Self.step)
            try? await Task.sleep(for: .microseconds(100))
        }
        _ = await watcher.value
        return try await task.value
    }
}

/// A real-time supervisor with fresh records, for the services' tests (which run in real time,
/// against ptys and simulated lines, not stepped).
enum RealTimeSupervisor {
    static var quietLogger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    static func make() async throws -> (Supervisor, RecordStore) {
        let store = try RecordStore(path: DaemonRig.temporaryDirectory() + "/stipple.db")
        let supervisor = try Supervisor(clock: SystemClock(), settings: .init(limits: .defaults), records: RecordWriter(store: store),
                                        recordsProblems: [], hub: EventHub(), logger: quietLogger)
        await supervisor.start()
        return (supervisor, store)
    }
}
