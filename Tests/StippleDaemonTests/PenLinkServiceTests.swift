import Foundation
import Logging
import ServiceLifecycleTestKit
import StippleDaemon
import StippleRecords
import StippleSim
import StippleTransport
import Testing

/// The serial pen's service in real time on a real pty: it reconnects after the pen goes away,
/// and once the daemon shuts down it lets go of the pen for good.
@Suite(.serialized) struct PenLinkServiceTests {
    @Test("a graceful shutdown ends the reading, and the pen's device is never opened again")
    func shutdownLetsGoForGood() async throws {
        let (pen, _) = try DiscoveryServiceTests.pty(serial: "SIM-0001", seed: 21)
        defer { pen.stop() }
        let (supervisor, _) = try await RealTimeSupervisor.make()
        let opens = Shared(0)
        let logger = RealTimeSupervisor.quietLogger
        let service = PenLinkService(supervisor: supervisor, clock: SystemClock(), logger: logger) {
            opens.withLock { $0 += 1 }
            return try SerialPort(path: pen.devicePath)
        }
        try await testGracefulShutdown { trigger in
            let running = Task { try await service.run() }
            #expect(await DiscoveryServiceTests.waitFor("the pen identified") { await supervisor.status().pen.serial == "SIM-0001" })
            #expect(opens.withLock { $0 } == 1)
            trigger.triggerGracefulShutdown()
            try await running.value  // returns: the reading ended
            #expect(await supervisor.status().pen.connected == false)
            try await Task.sleep(for: .milliseconds(600))  // beyond the first backoff
            #expect(opens.withLock { $0 } == 1, "opened again after the shutdown")
        }
    }

    @Test("a pen that goes away is a lost link; the device is opened again with backoff, and the new link never arms (H11)")
    func reconnectsWithBackoff() async throws {
        let (pen, _) = try DiscoveryServiceTests.pty(serial: "SIM-0001", seed: 22)
        defer { pen.stop() }
        let (supervisor, _) = try await RealTimeSupervisor.make()
        let opens = Shared(0)
        let plugged = Shared(false)
        let current = Shared<Unpluggable?>(nil)
        let logger = RealTimeSupervisor.quietLogger
        let service = PenLinkService(supervisor: supervisor, clock: SystemClock(), logger: logger) {
            opens.withLock { $0 += 1 }
            guard plugged.withLock({ $0 }) else { throw SystemCallError("open /dev/stipple/pen", errno: ENOENT) }
            let transport = Unpluggable(try SerialPort(path: pen.devicePath))
            current.withLock { $0 = transport }
            return transport
        }
        let running = Task { try await service.run() }
        defer { running.cancel() }
        // Not there: tried, and tried again later — not in a tight loop.
        try await Task.sleep(for: .milliseconds(900))
        let attempts = opens.withLock { $0 }
        #expect((2...4).contains(attempts), "250 ms, then 500 ms, ... between attempts: \(attempts) in 0.9 s")

        plugged.withLock { $0 = true }
        #expect(await DiscoveryServiceTests.waitFor("the pen identified") { await supervisor.status().pen.serial == "SIM-0001" })

        // Pulled out (the device answers EIO, as a USB serial port does): the link is lost, and
        // the device is tried again until it is back.
        plugged.withLock { $0 = false }
        current.withLock { $0?.unplug() }
        #expect(await DiscoveryServiceTests.waitFor("the link lost") { await supervisor.status().pen.connected == false })
        let whileGone = opens.withLock { $0 }
        try await Task.sleep(for: .milliseconds(400))
        #expect(opens.withLock { $0 } > whileGone, "tried again while the pen is away")
        plugged.withLock { $0 = true }
        #expect(await DiscoveryServiceTests.waitFor("the pen identified again") { await supervisor.status().pen.connected })
        #expect(await supervisor.status().phase == "no_session", "a reconnect arms nothing")
    }
}

/// A serial port that can be pulled out: from `unplug()` on, reading fails as a vanished USB
/// device's does.
final class Unpluggable: PenTransport, @unchecked Sendable {
    let port: SerialPort
    private let gone = Shared(false)

    init(_ port: SerialPort) { self.port = port }

    func unplug() { gone.withLock { $0 = true } }

    var description: String { port.description }
    var descriptor: Int32? { port.descriptor }

    func write(_ bytes: [UInt8]) throws(SystemCallError) {
        if gone.withLock({ $0 }) { throw SystemCallError("write \(description)", errno: EIO) }
        try port.write(bytes)
    }

    func read(timeout: Duration) throws(SystemCallError) -> [UInt8] {
        if gone.withLock({ $0 }) { throw SystemCallError("read \(description)", errno: EIO) }
        return try port.read(timeout: timeout)
    }

    func close() { port.close() }
}
