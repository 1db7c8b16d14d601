/// What the console bridge decides about one request, before anything reaches the daemon: a pure
/// function of the request's head and the bridge's secrets, so that every refusal is testable
/// without a socket (docs/console.md, "the security model").
///
/// The bridge listens on loopback, where any local process and any web page the user opens can
/// reach it. Each check below closes one of those doors:
/// - the peer's user (read from the kernel's socket table) must be the bridge's own: another
///   local user who finds the port gets 403, even with a stolen link;
/// - `Host` must be exactly `127.0.0.1:PORT` or `localhost:PORT`: a page that rebinds its own
///   DNS name to 127.0.0.1 reaches the port under its own name and is refused (DNS rebinding);
/// - the session cookie (`HttpOnly; SameSite=Strict`), handed out once for the one-time token of
///   the launch link: a browser without it — another profile, another user, a cross-site request
///   (which the browser sends without a `Strict` cookie) — gets nothing;
/// - `Origin`, for anything that changes state or opens a stream: a page of another origin that
///   gets the browser to send a request carries its own origin, and is refused. Browsers leave
///   `Origin` off a same-origin GET, so a stream opened by GET must instead carry
///   `Sec-Fetch-Site: same-origin`, a header no page's script can set;
/// - every request for the daemon (anything but the console's own files) must come from the
///   console's own origin: `Sec-Fetch-Site: same-origin`, or the header `X-Stipple-Console`, which
///   a page of another origin cannot add without a CORS preflight the bridge never grants. This
///   matters because cookies are not kept apart by port: a page on another port of 127.0.0.1 is
///   "same-site", and the browser would attach the cookie to its plain GETs.
public struct BridgePolicy: Sendable {
    public let port: Int
    /// The launch link's token; valid once.
    public let token: String
    /// The session cookie's value, given in exchange for the token.
    public let cookie: String

    /// Each bridge's cookie is named by its port: two consoles of one user in one browser do not
    /// overwrite each other's (cookies are per host, not per port).
    public var cookieName: String { "stipple_console_\(port)" }
    /// The launch path: `/console/launch?token=…`, answered by the bridge itself.
    public static let launchPath = "/console/launch"

    public init(port: Int, token: String, cookie: String) {
        self.port = port
        self.token = token
        self.cookie = cookie
    }

    /// 32 random bytes as hex, from the system's CSPRNG (`getrandom` on Linux).
    public static func secret() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }.joined()
    }

    public var origins: [String] { ["http://127.0.0.1:\(port)", "http://localhost:\(port)"] }
    public var hosts: [String] { ["127.0.0.1:\(port)", "localhost:\(port)"] }
    public var launchURL: String { "http://127.0.0.1:\(port)\(Self.launchPath)?token=\(token)" }

    /// The parts of a request head the decision reads.
    public struct Request: Sendable {
        public var method: String
        public var uri: String
        /// Header values by lowercased name, in order (a header may come more than once).
        public var headers: [(name: String, value: String)]
        /// Whether the connection comes from the bridge's own user.
        public var peerIsOwner: Bool

        public init(method: String, uri: String, headers: [(name: String, value: String)], peerIsOwner: Bool) {
            self.method = method
            self.uri = uri
            self.headers = headers.map { ($0.name.lowercased(), $0.value) }
            self.peerIsOwner = peerIsOwner
        }

        func values(_ name: String) -> [String] { headers.filter { $0.name == name }.map(\.value) }
        var path: String { String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]) }
        var query: String? {
            let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            return parts.count == 2 ? String(parts[1]) : nil
        }
    }

    /// A refusal: the HTTP status, a stable code and a sentence that says what to do.
    public struct Refusal: Sendable, Equatable {
        public var status: Int
        public var code: String
        public var detail: String
    }

    public enum Decision: Sendable, Equatable {
        /// Forward to the daemon.
        case forward
        /// The launch link's token was right: set the cookie and go to the console.
        case launch
        case refuse(Refusal)
    }

    /// `tokenUsed`: whether the token was already exchanged (it is good once).
    public func decide(_ request: Request, tokenUsed: Bool) -> Decision {
        guard request.peerIsOwner else {
            return .refuse(Refusal(status: 403, code: "bridge_other_user",
                                   detail: "this console belongs to another local user; run stipplectl console as yourself"))
        }
        let hosts = request.values("host")
        guard hosts.count == 1, self.hosts.contains(hosts[0]) else {
            return .refuse(Refusal(status: 403, code: "bridge_host",
                                   detail: "Host must be \(self.hosts.joined(separator: " or ")) (got \(hosts.first.map { "\"\($0.prefix(80))\"" } ?? "none"))"))
        }
        let origins = request.values("origin")
        if origins.count > 1 || (origins.count == 1 && !self.origins.contains(origins[0])) {
            return .refuse(Refusal(status: 403, code: "bridge_origin",
                                   detail: "requests from \(origins.first.map { String($0.prefix(80)) } ?? "?") are refused: only the console's own pages (\(self.origins.joined(separator: ", "))) may use it"))
        }
        guard request.uri.hasPrefix("/") else {
            return .refuse(Refusal(status: 400, code: "bridge_target", detail: "only a path (origin-form) is forwarded"))
        }
        let hasCookie = cookieValues(request).contains { constantTimeEqual($0, cookie) }
        if request.path == Self.launchPath {
            guard request.method == "GET" else {
                return .refuse(Refusal(status: 405, code: "bridge_method", detail: "the launch link is opened with GET"))
            }
            if hasCookie { return .launch }
            let given = Self.queryValue(request.query, "token")
            guard let given, constantTimeEqual(given, token) else {
                return .refuse(Refusal(status: 403, code: "bridge_token",
                                       detail: "the launch link's token is missing or wrong; open the link stipplectl console printed"))
            }
            guard !tokenUsed else {
                return .refuse(Refusal(status: 403, code: "bridge_token_used",
                                       detail: "this launch link was already used (it is good once); run stipplectl console again for a new one"))
            }
            return .launch
        }
        guard hasCookie else {
            return .refuse(Refusal(status: 403, code: "bridge_cookie",
                                   detail: "this browser has not opened the console's launch link; open the link stipplectl console printed"))
        }
        let sameOrigin = request.values("sec-fetch-site") == ["same-origin"]
        if !Self.isConsoleFile(request.path) && !sameOrigin && request.values("x-stipple-console").isEmpty {
            return .refuse(Refusal(status: 403, code: "bridge_not_console",
                                   detail: "requests for the daemon come only from the console's own page (Sec-Fetch-Site: same-origin, or X-Stipple-Console)"))
        }
        let changesState = !["GET", "HEAD"].contains(request.method)
        if changesState && origins.isEmpty {
            return .refuse(Refusal(status: 403, code: "bridge_origin",
                                   detail: "\(request.method) needs an Origin header of the console's own page"))
        }
        if !changesState && origins.isEmpty && opensStream(request) && !sameOrigin {
            return .refuse(Refusal(status: 403, code: "bridge_origin",
                                   detail: "a stream is opened only by the console's own page (Origin or Sec-Fetch-Site: same-origin)"))
        }
        return .forward
    }

    /// `/console`, `/console/` and `/console/NAME.EXT`: the page's own files, which a navigation
    /// (the launch redirect, a reload) asks for without `Sec-Fetch-Site: same-origin`.
    static func isConsoleFile(_ path: String) -> Bool {
        if path == "/console" || path == "/console/" { return true }
        guard path.hasPrefix("/console/") else { return false }
        let name = path.dropFirst("/console/".count)
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 2 && (1...64).contains(parts[0].count) && (1...8).contains(parts[1].count)
            && parts[0].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
            && parts[1].allSatisfy { $0.isASCII && $0.isLetter }
    }

    /// The event stream and the live trace: what holds a lease or a live view open.
    func opensStream(_ request: Request) -> Bool {
        let path = request.path
        return path == "/v1/events" || path.hasPrefix("/v1/bringup/trace")
            || request.values("accept").contains { $0.contains("text/event-stream") }
            || request.values("upgrade").isEmpty == false
    }

    func cookieValues(_ request: Request) -> [String] {
        request.values("cookie").flatMap { $0.split(separator: ";") }.compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].trimmingSpaces == cookieName else { return nil }
            return parts[1].trimmingSpaces
        }
    }

    static func queryValue(_ query: String?, _ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2, parts[0] == name { return String(parts[1]) }
        }
        return nil
    }

    /// The cookie that answers a good launch.
    public var setCookie: String { "\(cookieName)=\(cookie); Path=/; HttpOnly; SameSite=Strict" }

    /// Headers every answer carries, the daemon's and the bridge's own alike.
    public static let securityHeaders: [(String, String)] = [
        ("Content-Security-Policy",
         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
    ]
}

/// Compares secrets in time that does not depend on where they first differ.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var difference: UInt8 = 0
    for index in x.indices { difference |= x[index] ^ y[index] }
    return difference == 0
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
