import Foundation
import StippleDiscovery
import Testing

/// The real libudev enumeration on this machine. It reads /sys, so it works without udevd
/// (CI containers have none): it must not fail, must list exactly the tty class, and must
/// judge every device with a reason — no built-in or virtual port is ever taken for a pen.
@Suite struct UdevEnumerationTests {
    @Test func enumeratingThisMachinesTTYsWorksWithoutUdevd() throws {
        let devices = try UdevEnumerator().ttyDevices()
        let sysClass = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/tty")) ?? []
        #expect(Set(devices.map(\.kernelName)) == Set(sysClass), "libudev lists the tty class, nothing else")
        for device in devices {
            #expect(device.devpath.contains("/tty"), "\(device.devpath)")
            if let node = device.devnode { #expect(node.hasPrefix("/dev/")) }
        }
    }

    @Test func everyDeviceIsJudgedWithAReasonAndNoNonUSBPortIsAPen() throws {
        let candidates = try PenDiscovery().scan()
        for candidate in candidates {
            #expect(!candidate.reason.isEmpty)
            if !candidate.device.isUSB {
                #expect(candidate.verdict == .notAPen, "\(candidate)")
            }
            if candidate.isPen {
                #expect(candidate.device.vendorID != nil && candidate.openPath != nil, "\(candidate)")
            }
        }
        // Pens, if any are plugged into this machine, come first.
        let firstOther = candidates.firstIndex { !$0.isPen } ?? candidates.endIndex
        #expect(candidates[firstOther...].allSatisfy { !$0.isPen })
    }

    @Test("without udevd no events come: the daemon falls back to rescanning, and says so")
    func udevdPresenceIsDetected() {
        let udevdRuns = FileManager.default.fileExists(atPath: "/run/udev/control")
        #expect(UdevMonitor.isAvailable == udevdRuns)
    }
}
