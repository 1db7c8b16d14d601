import Foundation
import Logging
import StippleDaemon
import StippleDiscovery
import StippleRecords
import StippleSafety
import StippleSim
import StippleSupervision
import StippleTransport
import Synchronization
import Testing

/// Hotplug events the test hands over one at a time, as udev's monitor would.
final class ScriptedEventSource: HotplugEventSource {
    private let queue = Mutex<[DeviceEvent]>([])

    func push(_ event: DeviceEvent) { queue.withLock { $0.append(event) } }

    func next(timeout: Duration) throws(SystemCallError) -> DeviceEvent? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let event = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return event }
            Thread.sleep(forTimeInterval: 0.002)
        }
        return nil
    }

    func close() {}
}

struct NoDevices: DeviceEnumerator {
    func ttyDevices() throws(SystemCallError) -> [TTYDevice] { [] }
}

/// `stippled --pen auto` in one process, in real time: `DiscoveryPenService` with the real
/// supervisor and records, hotplug events from a script, and simulated pens served on real ptys
/// (`stipple-sim serve --pty`'s server) standing in for /dev/ttyACM*.
@Suite(.serialized) struct DiscoveryServiceTests {
    static func pty(serial: String, seed: UInt64) throws -> (PtyPenServer, Thread) {
        var config = PenConfig()
        config.serial = serial
        let server = try PtyPenServer(config: config, seed: seed)
        let thread = Thread { try? server.serve(for: .seconds(60)) }
        thread.start()
        return (server, thread)
    }

    /// The udev event of a Stipple pen on `node` with USB serial `serial`.
    static func event(_ action: DeviceEvent.Action, node: String, serial: String, port: Int) -> DeviceEvent {
        let devpath = "/devices/pci0000:00/0000:00:14.0/usb1/1-\(port)/1-\(port):1.0/tty/ttyACM\(port)"
        return DeviceEvent(action: action, subsystem: "tty", device: TTYDevice(devpath: devpath, devnode: node, properties: [
            "ID_BUS": "usb", "ID_VENDOR_ID": "1209", "ID_MODEL_ID": "0001", "ID_USB_INTERFACE_NUM": "00",
            "ID_SERIAL_SHORT": serial, "ID_VENDOR": "Stipple", "ID_MODEL": "SMP_Pen",
        ]))
    }

    /// Real-time tests share two cores with CPU-bound suites running in parallel: the deadline is
    /// generous, and a condition that holds returns at once.
    static func waitFor(_ what: String, seconds: Double = 30, _ condition: @Sendable () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return await condition()
    }

    @Test("hotplug: a pen plugged in is attached and identified, never armed; pulled out while running it is a lost link and the daemon waits; while the session is bound to it another pen is left alone, and the same pen back is attached again")
    func hotplugThroughTheService() async throws {
        let (penA, _) = try Self.pty(serial: "SIM-0001", seed: 11)
        let (penB, _) = try Self.pty(serial: "SIM-0002", seed: 12)
        defer {
            penA.stop()
            penB.stop()
        }
        let (supervisor, store) = try await RealTimeSupervisor.make()
        let logger = RealTimeSupervisor.quietLogger
        let clock = SystemClock()
        let source = ScriptedEventSource()
        let service = DiscoveryPenService(supervisor: supervisor, clock: clock, logger: logger, matcher: PenMatcher(),
                                          enumerator: NoDevices(), makeSource: { _ in source }, open: { try SerialPort(path: $0) })
        let running = Task { try await service.run() }
        defer { running.cancel() }

        // Nothing plugged in: nothing attached.
        try await Task.sleep(for: .milliseconds(100))
        #expect(await supervisor.status().pen.connected == false)

        // Pen A plugged in: attached, handshake, identified.
        source.push(Self.event(.add, node: penA.devicePath, serial: "SIM-0001", port: 2))
        #expect(await Self.waitFor("pen A identified") { await supervisor.status().pen.serial == "SIM-0001" })
        #expect(await supervisor.status().phase == "no_session")

        // A session on pen A, armed and running.
        _ = try await supervisor.openSession(
            SessionRequest(sessionID: "", clientID: "C-1", technician: "ana", zone: .crown, cartridgeID: "SIM-CART-0001",
                               pigmentLots: ["P-1"], penSerial: "", gapOverrideReason: nil), actor: "test")
        _ = try await supervisor.setSetpoint(Setpoint(layer: .upperDermis, depthUm: 800, rateHz: 120), actor: "test")
        let gui = PresenceTable.Holder(uid: 1000, pid: 4242, client: "gui")
        _ = await supervisor.presenceOpened(gui)
        // The GUI's signs of life, as a real client sends them (the lease needs more than an open stream).
        let pinger = Task {
            while !Task.isCancelled {
                await supervisor.ping(gui)
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        defer { pinger.cancel() }
        #expect(await Self.waitFor("limits read back") { await supervisor.status().pen.limitsCRC != nil })
        _ = try await supervisor.arm(gui, actor: "test")
        penA.perform("pedal down")
        #expect(await Self.waitFor("running") { await supervisor.status().phase == "running" })

        // Pulled out while running: the link is lost — stopped, latched, recorded.
        source.push(Self.event(.remove, node: penA.devicePath, serial: "SIM-0001", port: 2))
        #expect(await Self.waitFor("link lost") { await supervisor.status().faults.contains("link_lost") })
        #expect(await supervisor.status().pen.connected == false)
        await supervisor.flushRecords()
        let sessionID = try #require(await supervisor.status().session?.id)
        let report = try #require(try store.report(sessionID))
        #expect(report.faults.map(\.kind) == ["link_lost"], "\(report.faults)")

        // Another pen plugged in while the session is bound to A: left alone.
        source.push(Self.event(.add, node: penB.devicePath, serial: "SIM-0002", port: 5))
        try await Task.sleep(for: .milliseconds(300))
        #expect(await supervisor.status().pen.connected == false, "the session waits for SIM-0001")

        // Pen A back: attached and identified again; the session stays faulted, nothing armed.
        penA.perform("pedal up")
        source.push(Self.event(.add, node: penA.devicePath, serial: "SIM-0001", port: 2))
        #expect(await Self.waitFor("pen A back") { await supervisor.status().pen.serial == "SIM-0001" })
        #expect(await supervisor.status().phase == "faulted")
        let state = penA.perform("status")
        #expect(state.contains("state idle") || state.contains("state faulted"), "a new link never arms: \(state)")
        await supervisor.shutdown()
    }
}
