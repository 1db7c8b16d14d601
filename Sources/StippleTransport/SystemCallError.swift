import SystemPackage

/// A failed system or C-library call at the I/O edge — a serial port, a GPIO chip, udev, a Unix
/// socket: which call, on what, and the errno, as swift-system's `Errno`. One type for every
/// edge, so that callers tell "busy" from "gone" from "not allowed" by the errno and never by
/// parsing text.
public struct SystemCallError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was attempted, and on what ("open /dev/ttyACM0", "udev_enumerate_scan_devices").
    public var call: String
    public var errno: Errno
    /// A sentence that already names the call and its object, where the caller has a better one
    /// than "call: strerror" (libgpiod's chip and line names).
    public var detail: String?

    public init(_ call: String, errno: Errno, detail: String? = nil) {
        self.call = call
        self.errno = errno
        self.detail = detail
    }

    /// From a C `errno` (or a negated return value, as libudev gives it).
    public init(_ call: String, errno: Int32, detail: String? = nil) {
        self.init(call, errno: Errno(rawValue: errno), detail: detail)
    }

    public var description: String { detail ?? "\(call): \(errno.description)" }

    /// The device is held by another process (TIOCEXCL or flock).
    public var isBusy: Bool { errno == .resourceBusy || errno == .wouldBlock || errno == .resourceTemporarilyUnavailable }
}
