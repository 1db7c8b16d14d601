import Foundation
import StippleDiscovery
import StippleTransport
import Testing

/// Recorded udev event sequences (`recordings/`, in the format `udevadm monitor --property`
/// prints) drive the hotplug logic exactly as udev's monitor drives it in the daemon.
@Suite struct HotplugTests {
    static let recordings = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("recordings")

    static func events(_ name: String) throws -> [DeviceEvent] {
        UdevadmRecording.parse(try String(contentsOf: recordings.appendingPathComponent(name), encoding: .utf8))
    }

    /// Feeds events to the tracker, marking every attach as done (as the daemon does when it
    /// opens the pen), and returns the decisions in order.
    static func play(_ events: [DeviceEvent], into tracker: inout PenHotplugTracker) -> [PenHotplugTracker.Decision] {
        var decisions: [PenHotplugTracker.Decision] = []
        for event in events {
            for decision in tracker.handle(event) {
                decisions.append(decision)
                if case .attach(let candidate) = decision { tracker.markAttached(candidate) }
            }
        }
        return decisions
    }

    static func summary(_ decisions: [PenHotplugTracker.Decision]) -> [String] {
        decisions.map { decision in
            switch decision {
            case .attach(let c): "attach \(c.devnode ?? "?") \(c.serial ?? "?")"
            case .detach(let reason): "detach \(reason)"
            case .renamed(let c): "renamed \(c.devnode ?? "?")"
            case .ignored(let c): "ignored \(c.devnode ?? "?") \(c.serial ?? "?")"
            }
        }
    }

    @Test func theRecordingFormatParsesUdevBlocksAndSkipsKernelOnes() throws {
        let events = try Self.events("plug-and-unplug.txt")
        #expect(events.map(\.description) == [
            "add /dev/bus/usb/001/002 (usb)", "add /dev/ttyACM0 (tty)",
            "remove /dev/ttyACM0 (tty)", "remove /dev/bus/usb/001/002 (usb)",
        ])
        let tty = events[1].device
        #expect(tty.vendorID == 0x1209 && tty.productID == 0x0001 && tty.interfaceNumber == 0 && tty.serial == "SP-000123")
        #expect(tty.byIDPath == "/dev/serial/by-id/usb-Stipple_SMP_Pen_SP-000123-if00")
        #expect(events[1].sequence == 4323)
    }

    @Test("a pen plugged in is attached; pulled out, it is detached (its link is lost) and the tracker waits")
    func plugAndUnplug() throws {
        var tracker = PenHotplugTracker(matcher: PenMatcher(), present: [])
        #expect(tracker.choose() == nil)
        let decisions = Self.play(try Self.events("plug-and-unplug.txt"), into: &tracker)
        #expect(Self.summary(decisions) == [
            "attach /dev/ttyACM0 SP-000123",
            "detach the pen was unplugged (udev removed /dev/ttyACM0)",
        ])
        #expect(tracker.attached == nil && tracker.choose() == nil, "nothing left to attach: wait for udev")
    }

    @Test("other devices — a USB serial adapter not in the table, a keyboard, a loop device, a console — change nothing")
    func otherDevices() throws {
        var tracker = PenHotplugTracker(matcher: PenMatcher(), present: [])
        let events = try Self.events("other-devices.txt")
        #expect(events.count == 4)
        #expect(Self.play(events, into: &tracker).isEmpty)
        let judged = tracker.candidates
        #expect(judged.count == 2, "only the tty devices are kept: \(judged)")
        let ftdi = try #require(judged.first { $0.devnode == "/dev/ttyUSB0" })
        #expect(ftdi.verdict == .notAPen)
        #expect(ftdi.reason == "USB 0403:6001 (FTDI FT232R_USB_UART) is not in the pen table")
        let console = try #require(judged.first { $0.devnode == "/dev/tty1" })
        #expect(console.reason == "not a USB device (a built-in or virtual serial port)")
    }

    @Test("a site's table entry makes a UART adapter a pen (bring-up rigs)")
    func aSiteEntryMatches() throws {
        let table = PenTable.standard(adding: [.init(vendorID: 0x0403, productID: 0x6001, interface: 0, name: "bring-up UART")])
        var tracker = PenHotplugTracker(matcher: PenMatcher(table: table), present: [])
        #expect(Self.summary(Self.play(try Self.events("other-devices.txt"), into: &tracker)) == ["attach /dev/ttyUSB0 A50285BI"])
        #expect(tracker.attached?.reason == "matches 0403:6001 interface 00 (bring-up UART), serial A50285BI")
    }

    @Test("a second pen is reported, not attached; when the first goes, the second is taken (no session)")
    func aSecondPenWithoutASession() throws {
        var tracker = PenHotplugTracker(matcher: PenMatcher(), present: [])
        let decisions = Self.play(try Self.events("second-pen.txt"), into: &tracker)
        #expect(Self.summary(decisions) == [
            "attach /dev/ttyACM0 SP-000123",
            "ignored /dev/ttyACM1 SP-000124",
            "detach the pen was unplugged (udev removed /dev/ttyACM0)",
            "attach /dev/ttyACM1 SP-000124",
            "ignored /dev/ttyACM0 SP-000123",
        ])
    }

    @Test("with a session bound to its serial, the tracker waits for that pen and leaves another alone (H8)")
    func theSessionPinsTheSerial() throws {
        var tracker = PenHotplugTracker(matcher: PenMatcher(), present: [])
        tracker.want(serial: "SP-000123")
        let decisions = Self.play(try Self.events("second-pen.txt"), into: &tracker)
        #expect(Self.summary(decisions) == [
            "attach /dev/ttyACM0 SP-000123",
            "ignored /dev/ttyACM1 SP-000124",
            "detach the pen was unplugged (udev removed /dev/ttyACM0)",
            "attach /dev/ttyACM0 SP-000123",
        ])
        let other = try #require(tracker.candidates.first { $0.serial == "SP-000124" })
        #expect(other.verdict == .otherPen)
        #expect(other.reason == "matches 1209:0001 interface 00 (Stipple development pen (CDC-ACM)), but its serial SP-000124 is not the pen wanted (SP-000123)")
    }

    @Test("a renamed node keeps the link; a re-enumeration on a new node is a detach and an attach")
    func aRenamedNode() throws {
        var tracker = PenHotplugTracker(matcher: PenMatcher(), present: [])
        let decisions = Self.play(try Self.events("renamed-node.txt"), into: &tracker)
        #expect(Self.summary(decisions) == [
            "attach /dev/ttyACM0 SP-000123",
            "renamed /dev/ttyACM1",
            "detach the pen was unplugged (udev removed /dev/ttyACM1)",
            "attach /dev/ttyACM2 SP-000123",
        ])
        #expect(tracker.present.count == 1)
    }

    @Test("a composite device: only the pen's link interface is a pen")
    func aCompositePen() throws {
        var tracker = PenHotplugTracker(matcher: PenMatcher(), present: [])
        let decisions = Self.play(try Self.events("composite-pen.txt"), into: &tracker)
        #expect(Self.summary(decisions) == ["attach /dev/ttyACM4 SP-000125"])
        let other = try #require(tracker.candidates.first { $0.devnode == "/dev/ttyACM3" })
        #expect(other.reason == "USB 1209:0001 interface 02 is not the pen's link (interface 00)")
    }

    @Test("devices present at start: the configured serial is chosen over the first")
    func choosingAtStart() throws {
        let events = try Self.events("second-pen.txt").filter { $0.action == .add }
        let present = [events[0].device, events[1].device]
        #expect(PenHotplugTracker(matcher: PenMatcher(), present: present).choose()?.serial == "SP-000123")
        #expect(PenHotplugTracker(matcher: PenMatcher(serial: "sp-000124"), present: present).choose()?.serial == "SP-000124",
                "serials compare as the core compares them")
        #expect(PenHotplugTracker(matcher: PenMatcher(serial: "SP-999999"), present: present).choose() == nil)
    }

    @Test("the link failing is not an unplug: the pen still present is chosen again")
    func aLinkEndsWhileThePenStaysPlugged() throws {
        var tracker = PenHotplugTracker(matcher: PenMatcher(), present: [])
        _ = Self.play(Array(try Self.events("plug-and-unplug.txt").prefix(2)), into: &tracker)
        #expect(tracker.choose() == nil, "attached: nothing more to choose")
        tracker.linkEnded()
        #expect(tracker.choose()?.devnode == "/dev/ttyACM0")
    }

    @Test func theByIDPathFollowsUdevsRuleWhenTheDatabaseHasNoLinks() {
        let device = TTYDevice(devpath: "/devices/x/tty/ttyACM0", devnode: "/dev/ttyACM0", properties: [
            "ID_BUS": "usb", "ID_VENDOR_ID": "1209", "ID_MODEL_ID": "0001", "ID_VENDOR": "Stipple",
            "ID_MODEL": "SMP Pen", "ID_SERIAL_SHORT": "SP-000123", "ID_USB_INTERFACE_NUM": "00",
        ])
        #expect(device.byIDPath == "/dev/serial/by-id/usb-Stipple_SMP_Pen_SP-000123-if00")
        let candidate = PenMatcher().judge(device)
        #expect(candidate.openPath == "/dev/ttyACM0", "the link does not exist here: the node is opened")
        #expect(PenMatcher().judge(device, linkExists: { _ in true }).openPath == "/dev/serial/by-id/usb-Stipple_SMP_Pen_SP-000123-if00")
    }

    @Test("the rescan fallback (no udevd) reports what appeared and what went as add and remove")
    func rescanFallback() throws {
        final class Devices: DeviceEnumerator, @unchecked Sendable {
            var list: [TTYDevice] = []
            func ttyDevices() throws(SystemCallError) -> [TTYDevice] { list }
        }
        let pens = try Self.events("second-pen.txt").filter { $0.action == .add }.map(\.device)
        let devices = Devices()
        devices.list = [pens[0]]
        let source = RescanEventSource(enumerator: devices, interval: .milliseconds(1), present: devices.list)
        #expect(try source.next(timeout: .milliseconds(1)) == nil)
        devices.list = [pens[1]]
        let first = try #require(try source.next(timeout: .milliseconds(1)))
        let second = try #require(try source.next(timeout: .milliseconds(1)))
        #expect([first.action, second.action] == [.remove, .add])
        #expect(first.device.serial == "SP-000123" && second.device.serial == "SP-000124")
        source.close()
        #expect(try source.next(timeout: .milliseconds(1)) == nil)
    }
}
