#if canImport(Glibc)
import Glibc
import StippleWire

/// An operating-system call that failed, with errno's text.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var errno: Int32
    public var description: String { "\(call): \(String(cString: strerror(errno)))" }

    static func check(_ result: Int32, _ call: String) throws -> Int32 {
        if result < 0 { throw SystemError(call: call, errno: Glibc.errno) }
        return result
    }
}

/// CLOCK_MONOTONIC: real time for the pty transport and serial ports (never the virtual clock).
func monotonicNow() -> MonotonicInstant {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return MonotonicInstant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
}

/// A poll(2) timeout: whole milliseconds, rounded up so that a short wait still waits.
func pollTimeout(_ timeout: Duration) -> Int32 {
    guard timeout > .zero else { return 0 }
    return Int32(clamping: (timeout.totalNanoseconds + 999_999) / 1_000_000)
}

/// Puts a terminal into raw mode: no echo, no line discipline, no translation, 8N1.
func makeRaw(_ fd: Int32) throws {
    var attributes = termios()
    _ = try SystemError.check(tcgetattr(fd, &attributes), "tcgetattr")
    cfmakeraw(&attributes)
    attributes.c_cflag |= tcflag_t(CLOCAL | CREAD)
    _ = try SystemError.check(tcsetattr(fd, TCSANOW, &attributes), "tcsetattr")
}

/// A serial device opened raw, as the daemon's serial backend will: a real pen, or a pty
/// served by `stipple-sim serve --pty`.
public final class SerialPort: PenPort {
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        fd = try SystemError.check(open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC), "open \(path)")
        do { try makeRaw(fd) } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    public func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EAGAIN {
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&pfd, 1, 10)
                    continue
                }
                throw SystemError(call: "write \(path)", errno: errno)
            }
            offset += written
        }
    }

    public func read(timeout: Duration) throws -> [UInt8] {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = try SystemError.check(poll(&pfd, 1, pollTimeout(timeout)), "poll \(path)")
        guard ready > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EAGAIN { return [] }
            throw SystemError(call: "read \(path)", errno: errno)
        }
        return Array(buffer[0..<count])
    }

    /// Real time: CLOCK_MONOTONIC.
    public var now: MonotonicInstant { monotonicNow() }
}
#endif
