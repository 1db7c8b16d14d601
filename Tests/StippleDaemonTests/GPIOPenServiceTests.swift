import Foundation
import Logging
import StippleDaemon
import StippleGPIO
import StippleRecords
import StippleTransport
import StippleWire
import Synchronization
import Testing

/// Lines that wait in real time like a chip's event files and can be made to fail (a chip that
/// goes away). Inputs stay idle: this is about the service's glue, not the rules.
final class IdleRealTimeLines: GPIOLineIO {
    private let state = Mutex((failing: false, released: false, motor: false))

    var description: String { "idle gpio" }
    var motor: Bool { state.withLock { $0.motor } }
    var released: Bool { state.withLock { $0.released } }
    func fail() { state.withLock { $0.failing = true } }

    func set(_ line: GPIOPenLine, active: Bool) throws(SystemCallError) {
        if line == .motorEnable { state.withLock { $0.motor = active } }
    }

    func value(_ line: GPIOPenLine) throws(SystemCallError) -> Bool { false }

    func waitEdges(timeout: Duration) throws(SystemCallError) -> [GPIOEdge] {
        Thread.sleep(forTimeInterval: Double(timeout.components.attoseconds) / 1e18)
        if state.withLock({ $0.failing }) { throw SystemCallError("wait", errno: EIO, detail: "the GPIO chip went away") }
        return []
    }

    func release() { state.withLock { $0.released = true; $0.motor = false } }
}

/// `GPIOPenService` in real time: it requests the lines, the pen is identified through its
/// `GPIOPenLink`, and when the lines fail the link is lost and the lines are requested again.
@Suite(.serialized) struct GPIOPenServiceTests {
    @Test func theServiceAttachesLosesAndRequestsTheLinesAgain() async throws {
        let (supervisor, _) = try await RealTimeSupervisor.make()
        let logger = RealTimeSupervisor.quietLogger
        let clock = SystemClock()
        let opened = Mutex<[IdleRealTimeLines]>([])
        let service = GPIOPenService(supervisor: supervisor, clock: clock, settings: GPIORig.settings, logger: logger) {
            let lines = IdleRealTimeLines()
            opened.withLock { $0.append(lines) }
            return lines
        }
        let running = Task { try await service.run() }
        defer { running.cancel() }

        #expect(await DiscoveryServiceTests.waitFor("identified") { await supervisor.status().pen.serial == GPIORig.serial })
        let first = try #require(opened.withLock { $0.first })
        #expect(!first.motor)
        first.fail()
        #expect(await DiscoveryServiceTests.waitFor("lost and reopened") { opened.withLock { $0.count } >= 2 })
        #expect(first.released, "the lost lines were given back (motor inactive first)")
        #expect(await DiscoveryServiceTests.waitFor("identified again") { await supervisor.status().pen.connected })
        await supervisor.shutdown()
    }
}
