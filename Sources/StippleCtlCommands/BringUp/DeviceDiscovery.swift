import Foundation

/// One serial device and the verdict on it: could it be a pen, and why (or why not).
struct DeviceCandidate: Equatable {
    var path: String
    /// The stable /dev/serial/by-id link that points at it, if any.
    var byID: String?
    var isPen: Bool
    var reason: String
}

/// Where `stipplectl devices` (and bring-up without a daemon or --port) gets its devices: udev
/// discovery (`UdevDeviceDiscovery`, StippleDiscovery's pen table), or a plain /dev scan
/// (`DevScanDiscovery`) where libudev cannot enumerate.
protocol DeviceDiscovery {
    /// Every serial device found, judged.
    func candidates() -> [DeviceCandidate]
}

/// A scan of /dev/serial/by-id and /dev/ttyACM*, /dev/ttyUSB*: USB serial devices are pen
/// candidates; a by-id name that mentions "stipple" or "smp" is taken as a pen. No USB ids, no
/// pen table: that is udev discovery's job.
struct DevScanDiscovery: DeviceDiscovery {
    var root = "/dev"
    var fileManager = FileManager.default

    func candidates() -> [DeviceCandidate] {
        var links: [String: String] = [:]  // device node -> by-id link
        let byIDDirectory = "\(root)/serial/by-id"
        for name in (try? fileManager.contentsOfDirectory(atPath: byIDDirectory)) ?? [] {
            let link = "\(byIDDirectory)/\(name)"
            guard let target = try? fileManager.destinationOfSymbolicLink(atPath: link) else { continue }
            let node = target.hasPrefix("/") ? target : URL(fileURLWithPath: byIDDirectory).appendingPathComponent(target).standardized.path
            links[node] = link
        }
        let nodes = ((try? fileManager.contentsOfDirectory(atPath: root)) ?? [])
            .filter { $0.hasPrefix("ttyACM") || $0.hasPrefix("ttyUSB") }
            .map { "\(root)/\($0)" }
        let all = Set(nodes).union(links.keys).sorted()
        return all.map { node in
            let link = links[node]
            let name = (link ?? node).lowercased()
            if name.contains("stipple") || name.contains("smp") {
                return DeviceCandidate(path: node, byID: link, isPen: true, reason: "its USB name (\((link ?? node).split(separator: "/").last ?? "")) names a Stipple/SMP pen")
            }
            if node.contains("ttyACM") {
                return DeviceCandidate(path: node, byID: link, isPen: true,
                                       reason: "a USB CDC-ACM device (a pen's usual link) — unconfirmed: `stipplectl identify --port \(link ?? node)` blinks it")
            }
            if node.contains("ttyUSB") {
                return DeviceCandidate(path: node, byID: link, isPen: true,
                                       reason: "a USB serial adapter (a UART pen's link) — unconfirmed: `stipplectl identify --port \(link ?? node)` blinks it")
            }
            return DeviceCandidate(path: node, byID: link, isPen: false, reason: "not a USB serial device")
        }
    }
}

#if canImport(Glibc)
import StippleDiscovery

/// udev discovery (issue 9): every tty libudev enumerates, judged against the pen table by
/// StippleDiscovery's `PenMatcher` — the same verdict and reason stippled's `--pen auto` acts
/// on. Where libudev cannot enumerate (no /sys), the /dev scan stands in and says so.
struct UdevDeviceDiscovery: DeviceDiscovery {
    var matcher = PenMatcher()
    /// Also list ttys with no USB identity (virtual consoles, on-board UARTs).
    var all = false

    func candidates() -> [DeviceCandidate] {
        let devices: [TTYDevice]
        do {
            devices = try UdevEnumerator().ttyDevices()
        } catch {
            return DevScanDiscovery().candidates().map { candidate in
                var candidate = candidate
                candidate.reason += " (udev cannot enumerate: \(error); a plain /dev scan)"
                return candidate
            }
        }
        return devices.compactMap { device -> DeviceCandidate? in
            let node = device.devnode ?? device.devpath
            let usb = device.vendorID != nil
            guard all || usb || node.contains("ttyACM") || node.contains("ttyUSB") else { return nil }
            let judged = matcher.judge(device) { FileManager.default.fileExists(atPath: $0) }
            return DeviceCandidate(path: node, byID: judged.byIDPathExists ? judged.byIDPath : nil, isPen: judged.isPen, reason: judged.reason)
        }.sorted { $0.path < $1.path }
    }
}
#endif
