#if canImport(Glibc)
import Glibc
#endif

/// Which local user holds the other end of a loopback TCP connection: the kernel's socket table
/// (`/proc/net/tcp`) lists each socket with its owner, as identd reads it. TCP carries no peer
/// credentials, and a Unix socket cannot be what a browser connects to; this is how the bridge
/// refuses other local users before anything else (they could otherwise race the owner's
/// browser to the one-time link, which shows up in `ps` as xdg-open's argument).
public enum LoopbackPeer {
    /// The uid owning the socket whose local end is `127.0.0.1:peerPort` and whose remote end is
    /// `127.0.0.1:serverPort`; nil when no such socket is listed (it closed, or is not local).
    public static func owner(peerPort: Int, serverPort: Int, table: String? = nil) -> UInt32? {
        guard let text = table ?? read("/proc/net/tcp") else { return nil }
        let loopback = "0100007F"   // 127.0.0.1 as the table prints it (host byte order, x86/arm little-endian)
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 7 else { continue }
            guard let local = endpoint(fields[1]), let remote = endpoint(fields[2]) else { continue }
            guard local.address == loopback, local.port == peerPort, remote.address == loopback, remote.port == serverPort else { continue }
            return UInt32(fields[7])
        }
        return nil
    }

    static func endpoint(_ field: Substring) -> (address: Substring, port: Int)? {
        let parts = field.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1], radix: 16) else { return nil }
        return (parts[0], port)
    }

    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
