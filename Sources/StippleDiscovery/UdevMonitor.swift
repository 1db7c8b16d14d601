#if canImport(Glibc)
import CUDev
import Glibc
import StippleTransport
import Synchronization

/// udev's hotplug events for tty devices, from its netlink monitor: the daemon blocks on the
/// monitor's socket and wakes only when udev has finished with a device (its node exists,
/// with its permissions and by-id link). No polling.
///
/// udev sends these only where udevd runs (`isAvailable`); elsewhere (containers, some CI
/// machines) `RescanEventSource` stands in.
public final class UdevMonitor: HotplugEventSource, @unchecked Sendable {
    /// Set once in init; the monitor is used by one reader thread at a time, `close` is guarded.
    private let udev: OpaquePointer
    private let monitor: OpaquePointer
    private let fd: Int32
    /// `close` frees the monitor only once no `next` is under way (the hotplug thread may be
    /// waiting in it when the service stops).
    private let usage = Mutex((closed: false, inFlight: 0))

    /// Whether udevd runs here (its control socket exists), so that its events will come.
    public static var isAvailable: Bool { fileExists("/run/udev/control") }

    public init() throws(SystemCallError) {
        guard let udev = udev_new() else { throw SystemCallError("udev_new", errno: errno) }
        guard let monitor = udev_monitor_new_from_netlink(udev, "udev") else {
            let code = errno
            udev_unref(udev)
            throw SystemCallError("udev_monitor_new_from_netlink udev", errno: code)
        }
        var result = udev_monitor_filter_add_match_subsystem_devtype(monitor, "tty", nil)
        if result >= 0 { result = udev_monitor_enable_receiving(monitor) }
        if result < 0 {
            udev_monitor_unref(monitor)
            udev_unref(udev)
            throw SystemCallError("udev_monitor_enable_receiving", errno: -result)
        }
        self.udev = udev
        self.monitor = monitor
        fd = udev_monitor_get_fd(monitor)
    }

    deinit { close() }

    public func next(timeout: Duration) throws(SystemCallError) -> DeviceEvent? {
        let closed = usage.withLock { usage -> Bool in
            if !usage.closed { usage.inFlight += 1 }
            return usage.closed
        }
        if closed { return nil }
        defer { usage.withLock { $0.inFlight -= 1 } }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ms = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        var ready: Int32
        repeat { ready = poll(&pfd, 1, ms) } while ready < 0 && errno == EINTR
        if ready < 0 { throw SystemCallError("poll udev monitor", errno: errno) }
        guard ready > 0, let device = udev_monitor_receive_device(monitor) else { return nil }
        defer { udev_device_unref(device) }
        let tty = UdevEnumerator.ttyDevice(device)
        var properties = tty.properties
        if let action = udev_device_get_action(device) { properties["ACTION"] = String(cString: action) }
        if let subsystem = udev_device_get_subsystem(device) { properties["SUBSYSTEM"] = String(cString: subsystem) }
        properties["DEVPATH"] = tty.devpath
        if let node = tty.devnode { properties["DEVNAME"] = node }
        return DeviceEvent(properties: properties)
    }

    public func close() {
        let first = usage.withLock { usage in
            defer { usage.closed = true }
            return !usage.closed
        }
        guard first else { return }
        while usage.withLock({ $0.inFlight > 0 }) { usleep(1000) }
        udev_monitor_unref(monitor)
        udev_unref(udev)
    }
}

/// Where udevd does not run, nothing sends hotplug events: this source enumerates /sys every
/// `interval` and reports what appeared and disappeared as `add` and `remove`. It is the
/// fallback only — `stippled` uses `UdevMonitor` wherever udevd runs.
public final class RescanEventSource: HotplugEventSource, @unchecked Sendable {
    private let enumerator: any DeviceEnumerator
    private let interval: Duration
    private let state: Mutex<(known: [String: TTYDevice], pending: [DeviceEvent], closed: Bool)>

    public init(enumerator: any DeviceEnumerator = UdevEnumerator(), interval: Duration = .seconds(2), present: [TTYDevice]) {
        self.enumerator = enumerator
        self.interval = interval
        state = Mutex((Dictionary(present.map { ($0.devpath, $0) }, uniquingKeysWith: { a, _ in a }), [], false))
    }

    public func next(timeout: Duration) throws(SystemCallError) -> DeviceEvent? {
        if let event = state.withLock({ $0.closed || $0.pending.isEmpty ? nil : $0.pending.removeFirst() }) { return event }
        if state.withLock({ $0.closed }) { return nil }
        var wait = timespec(tv_sec: Int(min(timeout, interval).components.seconds),
                            tv_nsec: Int(min(timeout, interval).components.attoseconds / 1_000_000_000))
        _ = nanosleep(&wait, nil)
        let now = try enumerator.ttyDevices()
        return state.withLock { state -> DeviceEvent? in
            let current = Dictionary(now.map { ($0.devpath, $0) }, uniquingKeysWith: { a, _ in a })
            for (path, device) in state.known where current[path] == nil {
                state.pending.append(DeviceEvent(action: .remove, subsystem: "tty", device: device))
            }
            for (path, device) in current.sorted(by: { $0.key < $1.key }) where state.known[path] == nil {
                state.pending.append(DeviceEvent(action: .add, subsystem: "tty", device: device))
            }
            state.known = current
            return state.closed || state.pending.isEmpty ? nil : state.pending.removeFirst()
        }
    }

    public func close() { state.withLock { $0.closed = true } }
}
#endif
