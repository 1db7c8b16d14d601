#if canImport(Glibc)
import Foundation
import Glibc
import StippleTransport
import SystemPackage


/// One HTTP/1.1 answer.
public struct HTTPAnswer: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data

    public var contentType: String { headers["content-type"] ?? "" }

    public init(status: Int, headers: [String: String], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A minimal blocking HTTP/1.1 client for a Unix socket — all stipplectl needs, since
/// Foundation's URLSession cannot speak to Unix sockets on Linux. One request per connection
/// (`Connection: close`); bodies by Content-Length, chunked, or to the end of the stream.
/// Event streams are read incrementally (`stream`).
public struct UnixHTTPClient: Sendable {
    public var socketPath: String
    /// How long to wait for an answer (arming waits for the pen's acknowledgements).
    public var timeout: Duration
    /// Who is asking, as the daemon's log shows it (`stipplectl`, `stipplectl console`, a test).
    public var userAgent: String

    public init(socketPath: String, timeout: Duration = .seconds(30), userAgent: String = "stipplectl") {
        self.socketPath = socketPath
        self.timeout = timeout
        self.userAgent = userAgent
    }

    /// Connects; the errno tells "no socket" from "nobody listening" from "not allowed".
    public func connect() throws(SystemCallError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError("socket", errno: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else {
            close(fd)
            throw SystemCallError("connect", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw SystemCallError("connect", errno: code)
        }
        return fd
    }

    public static func requestBytes(method: String, path: String, headers: [String: String], body: Data?, userAgent: String = "stipplectl") -> Data {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: \(userAgent)\r\nConnection: close\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        if let body {
            if headers["Content-Type"] == nil { head += "Content-Type: application/json\r\n" }
            head += "Content-Length: \(body.count)\r\n"
        } else if method == "POST" || method == "PUT" {
            head += "Content-Length: 0\r\n"
        }
        var data = Data((head + "\r\n").utf8)
        if let body { data.append(body) }
        return data
    }

    /// Sends one request and reads the whole answer.
    public func send(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:]) throws(SystemCallError) -> HTTPAnswer {
        let fd = try connect()
        defer { close(fd) }
        let connection = Connection(fd: fd, timeout: timeout)
        try connection.write(Self.requestBytes(method: method, path: path, headers: headers, body: body, userAgent: userAgent))
        var parser = ResponseParser()
        while !parser.isComplete {
            let chunk = try connection.read()
            if chunk.isEmpty {
                parser.finish()
                break
            }
            try parser.push(chunk)
        }
        guard let answer = parser.answer else { throw SystemCallError("read (the daemon closed the connection mid-answer)", errno: EPROTO) }
        return answer
    }

    /// Opens a streaming request (Server-Sent Events). `onHead` sees the status and headers;
    /// `onBody` gets body bytes as they arrive and returns false to stop. Ends when the daemon
    /// closes the stream, `onBody` says stop, or `stop` is set (checked every 100 ms).
    public func stream(_ path: String, headers: [String: String] = [:], stop: StopFlag,
                onHead: (Int, [String: String]) throws -> Void, onBody: (Data) throws -> Bool) throws {
        let fd = try connect()
        defer { close(fd) }
        let connection = Connection(fd: fd, timeout: .milliseconds(100))
        try connection.write(Self.requestBytes(method: "GET", path: path, headers: headers, body: nil, userAgent: userAgent))
        var parser = ResponseParser(streaming: true)
        var headSeen = false
        while !stop.isSet {
            guard let chunk = try connection.readUnlessTimedOut() else { continue }
            if chunk.isEmpty { break }
            try parser.push(chunk)
            if !headSeen, let head = parser.head {
                headSeen = true
                try onHead(head.status, head.headers)
            }
            let body = parser.takeStreamedBody()
            if !body.isEmpty, try !onBody(body) { break }
            if parser.isComplete { break }
        }
    }
}

/// A flag one thread sets and others poll (Ctrl-C, the end of a lease).
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    public var isSet: Bool { lock.withLock { set } }
    public func raise() { lock.withLock { set = true } }

    public init() {}
}

/// A connected socket with a read timeout.
struct Connection {
    let fd: Int32
    let timeout: Duration

    func write(_ data: Data) throws(SystemCallError) {
        var offset = 0
        let bytes = [UInt8](data)
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw SystemCallError("write", errno: errno)
            }
            offset += written
        }
    }

    /// As `read`, nil when nothing came in time.
    func readUnlessTimedOut() throws(SystemCallError) -> Data? {
        do {
            return try read()
        } catch {
            if error.errno == .timedOut { return nil }
            throw error
        }
    }

    /// The next bytes; empty at the end of the stream; ETIMEDOUT when nothing came in time.
    func read() throws(SystemCallError) -> Data {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let (seconds, attoseconds) = timeout.components
        let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        var ready: Int32
        repeat { ready = poll(&pfd, 1, milliseconds) } while ready < 0 && errno == EINTR
        if ready < 0 { throw SystemCallError("poll", errno: errno) }
        if ready == 0 { throw SystemCallError("read (no answer in time)", errno: ETIMEDOUT) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var count: Int
        repeat { count = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) } } while count < 0 && errno == EINTR
        if count < 0 {
            if errno == ECONNRESET { return Data() }
            throw SystemCallError("read", errno: errno)
        }
        return Data(buffer[0..<count])
    }
}

/// Parses one HTTP/1.1 response incrementally: head, then a body framed by Content-Length,
/// chunked transfer coding, or the end of the connection.
public struct ResponseParser {
    public struct Head {
        public var status: Int
        public var headers: [String: String]
    }
    public enum Framing { case length(Int), chunked, untilClose }

    public private(set) var head: Head?
    private var buffer = Data()
    private var body = Data()
    private var framing = Framing.untilClose
    public private(set) var isComplete = false
    private var ended = false
    /// In streaming mode the body is handed out as it comes (`takeStreamedBody`).
    public let streaming: Bool
    private var chunkRemaining: Int?

    public init(streaming: Bool = false) { self.streaming = streaming }

    /// The largest body or chunk an answer may announce (the daemon's largest, an audit export,
    /// is far below it).
    static let maximumBody = 256 * 1024 * 1024

    public var answer: HTTPAnswer? {
        guard let head, isComplete || ended else { return nil }
        if case .length(let length) = framing, body.count < length { return nil }
        return HTTPAnswer(status: head.status, headers: head.headers, body: body)
    }

    public mutating func finish() {
        ended = true
        if case .untilClose = framing { isComplete = true }
    }

    public mutating func takeStreamedBody() -> Data {
        defer { body = Data() }
        return body
    }

    public mutating func push(_ data: Data) throws(SystemCallError) {
        buffer.append(data)
        if head == nil {
            guard let end = buffer.range(of: Data("\r\n\r\n".utf8)) else {
                if buffer.count > 65536 { throw SystemCallError("read (an HTTP head over 64 KiB)", errno: EPROTO) }
                return
            }
            let text = String(decoding: buffer[buffer.startIndex..<end.lowerBound], as: UTF8.self)
            buffer = Data(buffer[end.upperBound...])
            var lines = text.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
            guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), statusLine[1].allSatisfy({ ("0"..."9").contains($0) }),
                  let status = Int(statusLine[1]), (100...599).contains(status) else {
                throw SystemCallError("read (not an HTTP answer)", errno: EPROTO)
            }
            var headers: [String: String] = [:]
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            head = Head(status: status, headers: headers)
            if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
                framing = .chunked
            } else if let text = headers["content-length"] {
                // Digits only, and within what an answer may be: a sign or an overflow is a
                // broken answer, never a negative length to slice by.
                guard text.allSatisfy({ ("0"..."9").contains($0) }), let length = Int(text), length <= Self.maximumBody else {
                    throw SystemCallError("read (Content-Length '\(text.prefix(20))')", errno: EPROTO)
                }
                framing = .length(length)
            } else if status == 204 || status == 304 {
                framing = .length(0)
            }
        }
        switch framing {
        case .length(let length):
            body.append(buffer)
            buffer = Data()
            if streaming ? false : body.count >= length { isComplete = true }
            if !streaming, body.count > length { body = body.prefix(length) }
        case .untilClose:
            body.append(buffer)
            buffer = Data()
        case .chunked:
            try decodeChunks()
        }
    }

    private mutating func decodeChunks() throws(SystemCallError) {
        while !isComplete {
            if let remaining = chunkRemaining {
                // chunk data, then its CRLF
                guard buffer.count >= remaining + 2 else { return }
                body.append(buffer.prefix(remaining))
                buffer = Data(buffer.dropFirst(remaining + 2))
                chunkRemaining = nil
                continue
            }
            guard let lineEnd = buffer.range(of: Data("\r\n".utf8)) else { return }
            let sizeText = String(decoding: buffer[buffer.startIndex..<lineEnd.lowerBound], as: UTF8.self)
                .split(separator: ";").first.map(String.init) ?? ""
            let digits = sizeText.trimmingCharacters(in: .whitespaces)
            guard !digits.isEmpty, digits.allSatisfy(\.isHexDigit), digits.count <= 8, let size = Int(digits, radix: 16),
                  size <= Self.maximumBody else {
                throw SystemCallError("read (bad chunk size '\(sizeText.prefix(20))')", errno: EPROTO)
            }
            buffer = Data(buffer[lineEnd.upperBound...])
            if size == 0 {
                isComplete = true
                return
            }
            chunkRemaining = size
        }
    }
}
#endif
