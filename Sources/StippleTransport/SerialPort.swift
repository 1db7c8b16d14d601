#if canImport(Glibc)
import CStippleSys
import Glibc


/// Retries a call interrupted by a signal, as swift-system does by default.
@inline(__always)
func retryingOnInterrupt(_ body: () -> Int) -> Int {
    while true {
        let result = body()
        if result >= 0 || errno != EINTR { return result }
    }
}

/// The one way bytes reach a pen: a serial device, a pty, or (in the composition root) the
/// in-process simulator. A transport only moves bytes; the link and the core decide.
public protocol PenTransport: AnyObject, Sendable {
    /// What to show a person ("/dev/serial/by-id/usb-…", "sim").
    var description: String { get }
    /// Writes every byte (waiting briefly while the device's buffer is full).
    func write(_ bytes: [UInt8]) throws(SystemCallError)
    /// The bytes available within `timeout`; empty when none came. Throws when the device is gone.
    func read(timeout: Duration) throws(SystemCallError) -> [UInt8]
    /// Releases the device. Idempotent.
    func close()
    /// A descriptor that `poll` reports readable when `read` has bytes, if there is one: the
    /// daemon then reads on its supervisor's own thread the moment bytes arrive.
    var descriptor: Int32? { get }
}

extension PenTransport {
    public var descriptor: Int32? { nil }
}

/// A serial device opened raw — a real pen (USB CDC-ACM or UART) or a pty served by
/// `stipple-sim serve --pty`: `O_NOCTTY | O_NONBLOCK`, raw termios 8N1 at 115200 baud,
/// `TIOCEXCL` and an exclusive `flock`, so that a second process (another daemon, a terminal
/// program, ModemManager) cannot open the pen while the daemon drives it.
public final class SerialPort: PenTransport, @unchecked Sendable {
    public let path: String
    /// Immutable after init; `close` is guarded by `closed` (set once, read by the one reader).
    private let fd: Int32
    private let closeLock = Mutex()
    private var closed = false

    public init(path: String) throws(SystemCallError) {
        self.path = path
        let fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError("open \(path)", errno: errno) }
        do throws(SystemCallError) {
            // flock first: a second stippled sees "busy" before it touches the line settings.
            if flock(fd, LOCK_EX | LOCK_NB) != 0 { throw SystemCallError("lock \(path) (another process holds the pen)", errno: errno) }
            if stipple_set_exclusive(fd) != 0 && errno != ENOTTY { throw SystemCallError("TIOCEXCL \(path)", errno: errno) }
            try Self.makeRaw(fd, path: path)
        } catch {
            Glibc.close(fd)
            throw error
        }
        self.fd = fd
    }

    deinit { close() }

    public var description: String { path }

    public var descriptor: Int32? { closeLock.locked { closed ? nil : fd } }

    /// Raw mode: no echo, no line discipline, no translation; 8N1, 115200 baud (CDC-ACM
    /// ignores the rate), receiver on, modem lines ignored. Public for the pty server of
    /// `stipple-sim serve`, which puts its device in this mode before a host opens it.
    public static func makeRaw(_ fd: Int32, path: String) throws(SystemCallError) {
        var attributes = termios()
        guard tcgetattr(fd, &attributes) == 0 else { throw SystemCallError("tcgetattr \(path)", errno: errno) }
        cfmakeraw(&attributes)
        attributes.c_cflag |= tcflag_t(CLOCAL | CREAD)
        cfsetispeed(&attributes, speed_t(B115200))
        cfsetospeed(&attributes, speed_t(B115200))
        guard tcsetattr(fd, TCSANOW, &attributes) == 0 else { throw SystemCallError("tcsetattr \(path)", errno: errno) }
    }

    public func write(_ bytes: [UInt8]) throws(SystemCallError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { buffer in
                retryingOnInterrupt { Glibc.write(fd, buffer.baseAddress, buffer.count) }
            }
            if written < 0 {
                guard errno == EAGAIN else { throw SystemCallError("write \(path)", errno: errno) }
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = retryingOnInterrupt { Int(poll(&pfd, 1, 10)) }
                continue
            }
            offset += written
        }
    }

    public func read(timeout: Duration) throws(SystemCallError) -> [UInt8] {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: max(0, timeout.totalMilliseconds))
        let ready = retryingOnInterrupt { Int(poll(&pfd, 1, milliseconds)) }
        if ready < 0 { throw SystemCallError("poll \(path)", errno: errno) }
        if ready == 0 { return [] }
        if pfd.revents & Int16(POLLIN) == 0 && pfd.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
            throw SystemCallError("read \(path) (the device hung up)", errno: EIO)
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { raw in retryingOnInterrupt { Glibc.read(fd, raw.baseAddress, raw.count) } }
        if count < 0 {
            if errno == EAGAIN { return [] }
            throw SystemCallError("read \(path)", errno: errno)
        }
        if count == 0 { throw SystemCallError("read \(path) (end of file: the device is gone)", errno: EIO) }
        return Array(buffer[0..<count])
    }

    public func close() {
        closeLock.locked {
            guard !closed else { return }
            closed = true
            Glibc.close(fd)
        }
    }
}

/// A plain pthread mutex: enough for the one flag it guards, and usable from a deinit.
final class Mutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

extension Duration {
    var totalMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        return overflow ? (seconds < 0 ? .min : .max) : ms + attoseconds / 1_000_000_000_000_000
    }
}
#endif
