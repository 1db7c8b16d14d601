import StippleTransport
import Synchronization

/// A uevent as udev delivers it after its rules ran (`udevadm monitor --udev --property`).
public struct DeviceEvent: Hashable, Sendable, CustomStringConvertible {
    public enum Action: String, Hashable, Sendable {
        case add, remove, change, move, bind, unbind, online, offline
    }

    public var action: Action
    public var subsystem: String
    public var device: TTYDevice
    /// For `move`: the path the device had before (DEVPATH_OLD) — a renamed node.
    public var oldDevpath: String?
    /// udev's sequence number, when known.
    public var sequence: UInt64?

    public init(action: Action, subsystem: String, device: TTYDevice, oldDevpath: String? = nil, sequence: UInt64? = nil) {
        self.action = action
        self.subsystem = subsystem
        self.device = device
        self.oldDevpath = oldDevpath
        self.sequence = sequence
    }

    /// Builds an event from its properties (ACTION, SUBSYSTEM, DEVPATH, DEVNAME, ...); nil when
    /// they do not describe one.
    public init?(properties: [String: String]) {
        guard let actionText = properties["ACTION"], let action = Action(rawValue: actionText),
              let devpath = properties["DEVPATH"] else { return nil }
        self.action = action
        subsystem = properties["SUBSYSTEM"] ?? ""
        device = TTYDevice(devpath: devpath, devnode: properties["DEVNAME"], properties: properties)
        oldDevpath = properties["DEVPATH_OLD"]
        sequence = properties["SEQNUM"].flatMap { UInt64($0) }
    }

    public var description: String {
        "\(action.rawValue) \(device.devnode ?? device.devpath) (\(subsystem))"
    }
}

/// Where hotplug events come from: udev's netlink monitor (`UdevMonitor`), a rescan of /sys
/// where no udevd runs (`RescanEventSource`), or a recording in tests.
public protocol HotplugEventSource: AnyObject, Sendable {
    /// Waits up to `timeout` for the next event; nil when none came. Throws when the source
    /// itself failed.
    func next(timeout: Duration) throws(SystemCallError) -> DeviceEvent?
    /// Stops the source; `next` returns nil from then on. Idempotent.
    func close()
}

/// Parses what `udevadm monitor --udev --property` prints: blocks separated by blank lines,
/// each a header (`UDEV  [1234.5678] add      /devices/... (tty)`) and KEY=VALUE lines.
/// `KERNEL[...]` blocks (raw uevents, before udev's rules ran and the node had its
/// permissions and links) are skipped: the daemon acts on udev's events only.
public enum UdevadmRecording {
    public static func parse(_ text: String) -> [DeviceEvent] {
        var events: [DeviceEvent] = []
        var properties: [String: String] = [:]
        var isUdev = false
        func finish() {
            if isUdev, let event = DeviceEvent(properties: properties) { events.append(event) }
            properties = [:]
            isUdev = false
        }
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingCharacters(in: " \t\r")
            if line.isEmpty {
                finish()
            } else if line.hasPrefix("UDEV") && line.contains("[") {
                finish()
                isUdev = true
            } else if line.hasPrefix("KERNEL") && line.contains("[") {
                finish()
            } else if let equals = line.firstIndex(of: "="), line[..<equals].allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" }) {
                properties[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
        }
        finish()
        return events
    }
}

/// Plays recorded events back, in order; then nothing more.
public final class RecordedEventSource: HotplugEventSource {
    private let events: Mutex<[DeviceEvent]>

    public init(_ events: [DeviceEvent]) { self.events = Mutex(events) }

    public func next(timeout: Duration) throws(SystemCallError) -> DeviceEvent? {
        events.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }

    public func close() { events.withLock { $0.removeAll() } }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var scalars = Substring(self)
        while let first = scalars.first, set.contains(first) { scalars.removeFirst() }
        while let last = scalars.last, set.contains(last) { scalars.removeLast() }
        return String(scalars)
    }
}
