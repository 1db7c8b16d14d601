@testable import StippleConsoleBridge
import Testing

/// The bridge's decisions, request by request: each door a local process or a web page could use
/// is tried with the right key and with every wrong one (docs/console.md, the security model).
@Suite struct ConsoleBridgePolicyTests {
    let policy = BridgePolicy(port: 4711, token: String(repeating: "a", count: 64), cookie: String(repeating: "c", count: 64))
    var host: (name: String, value: String) { ("Host", "127.0.0.1:4711") }
    var cookie: (name: String, value: String) { ("Cookie", "other=1; stipple_console_4711=\(String(repeating: "c", count: 64))") }
    let console = (name: "X-Stipple-Console", value: "1")
    let sameOrigin = (name: "Sec-Fetch-Site", value: "same-origin")
    let origin = (name: "Origin", value: "http://127.0.0.1:4711")

    func request(_ method: String = "GET", _ uri: String, _ headers: [(name: String, value: String)], owner: Bool = true) -> BridgePolicy.Request {
        BridgePolicy.Request(method: method, uri: uri, headers: headers, peerIsOwner: owner)
    }

    func code(_ decision: BridgePolicy.Decision) -> String? {
        if case .refuse(let refusal) = decision { return refusal.code }
        return nil
    }

    @Test("the launch link: the right token once, then only with the cookie it gave")
    func launch() {
        let link = request("GET", "/console/launch?token=\(String(repeating: "a", count: 64))", [host])
        #expect(policy.decide(link, tokenUsed: false) == .launch)
        #expect(code(policy.decide(link, tokenUsed: true)) == "bridge_token_used")
        #expect(policy.decide(request("GET", "/console/launch", [host, cookie]), tokenUsed: true) == .launch)
        for wrong in ["", "token=", "token=\(String(repeating: "a", count: 63))", "token=\(String(repeating: "b", count: 64))",
                      "tok=\(String(repeating: "a", count: 64))", "token=\(String(repeating: "a", count: 64))x"] {
            #expect(code(policy.decide(request("GET", "/console/launch?\(wrong)", [host]), tokenUsed: false)) == "bridge_token", "\(wrong)")
        }
        #expect(code(policy.decide(request("POST", "/console/launch?token=\(String(repeating: "a", count: 64))", [host, origin]), tokenUsed: false)) == "bridge_method")
    }

    @Test("every request needs the cookie, the exact Host and the bridge's own user")
    func cookieHostUser() {
        #expect(policy.decide(request("GET", "/v1/status", [host, cookie, console]), tokenUsed: true) == .forward)
        #expect(policy.decide(request("GET", "/v1/status", [("host", "localhost:4711"), cookie, sameOrigin]), tokenUsed: true) == .forward)
        #expect(policy.decide(request("GET", "/console/", [host, cookie]), tokenUsed: true) == .forward)
        #expect(policy.decide(request("GET", "/console/console.js", [host, cookie]), tokenUsed: true) == .forward)
        #expect(code(policy.decide(request("GET", "/v1/status", [host]), tokenUsed: true)) == "bridge_cookie")
        #expect(code(policy.decide(request("GET", "/v1/status", [host, ("Cookie", "stipple_console_4711=\(String(repeating: "d", count: 64))")]), tokenUsed: true)) == "bridge_cookie")
        #expect(code(policy.decide(request("GET", "/v1/status", [host, ("Cookie", "stipple_console_4712=\(String(repeating: "c", count: 64))")]), tokenUsed: true)) == "bridge_cookie")
        #expect(code(policy.decide(request("GET", "/v1/status", [host, ("Cookie", "xstipple_console_4711=\(String(repeating: "c", count: 64))")]), tokenUsed: true)) == "bridge_cookie")
        for wrong in ["evil.example:4711", "127.0.0.1", "127.0.0.1:4712", "localhost", "127.0.0.1:4711.evil", "LOCALHOST:4711x", ""] {
            #expect(code(policy.decide(request("GET", "/v1/status", [("Host", wrong), cookie]), tokenUsed: true)) == "bridge_host", "\(wrong)")
        }
        #expect(code(policy.decide(request("GET", "/v1/status", [cookie]), tokenUsed: true)) == "bridge_host")
        #expect(code(policy.decide(request("GET", "/v1/status", [host, host, cookie]), tokenUsed: true)) == "bridge_host")
        #expect(code(policy.decide(request("GET", "/v1/status", [host, cookie, console], owner: false), tokenUsed: true)) == "bridge_other_user")
        #expect(code(policy.decide(request("GET", "/console/launch?token=\(String(repeating: "a", count: 64))", [host], owner: false), tokenUsed: false)) == "bridge_other_user")
    }

    @Test("a change of state needs the console's Origin; a stream needs it or Sec-Fetch-Site: same-origin")
    func originChecks() {
        #expect(policy.decide(request("POST", "/v1/stop", [host, cookie, origin, sameOrigin]), tokenUsed: true) == .forward)
        #expect(policy.decide(request("PUT", "/v1/sessions/S/setpoint", [host, cookie, ("Origin", "http://localhost:4711"), console]), tokenUsed: true) == .forward)
        #expect(code(policy.decide(request("POST", "/v1/stop", [host, cookie, console]), tokenUsed: true)) == "bridge_origin")
        for foreign in ["http://evil.example", "null", "http://127.0.0.1:4712", "https://127.0.0.1:4711", "http://127.0.0.1:4711/"] {
            #expect(code(policy.decide(request("POST", "/v1/stop", [host, cookie, ("Origin", foreign)]), tokenUsed: true)) == "bridge_origin", "\(foreign)")
            #expect(code(policy.decide(request("GET", "/v1/status", [host, cookie, ("Origin", foreign)]), tokenUsed: true)) == "bridge_origin", "\(foreign)")
        }
        #expect(code(policy.decide(request("POST", "/v1/stop", [host, cookie, origin, ("Origin", "http://evil.example")]), tokenUsed: true)) == "bridge_origin")
        #expect(code(policy.decide(request("GET", "/v1/events", [host, cookie, console]), tokenUsed: true)) == "bridge_origin")
        #expect(code(policy.decide(request("GET", "/v1/events", [host, cookie, console, ("Sec-Fetch-Site", "same-site")]), tokenUsed: true)) == "bridge_origin")
        #expect(code(policy.decide(request("GET", "/v1/status", [host, cookie, console, ("Accept", "text/event-stream")]), tokenUsed: true)) == "bridge_origin")
        #expect(code(policy.decide(request("GET", "/v1/bringup/trace", [host, cookie, console]), tokenUsed: true)) == "bridge_origin")
        #expect(policy.decide(request("GET", "/v1/events", [host, cookie, sameOrigin]), tokenUsed: true) == .forward)
        #expect(policy.decide(request("GET", "/v1/events?telemetry=full", [host, cookie, origin, console]), tokenUsed: true) == .forward)
    }

    @Test("requests for the daemon come from the console's own origin; path variants are not console files")
    func onlyTheConsolesOwnPage() {
        // A page on another port of 127.0.0.1 is same-site: the browser attaches the cookie to
        // its plain GETs, which carry Sec-Fetch-Site: same-site and no custom header.
        for path in ["/v1/status", "/v1//events", "/v1/events/", "/metrics", "/console/../v1/status", "/console//x.js",
                     "/console/a.b.js", "/console/.js", "/consolex", "/console/x.js/"] {
            #expect(code(policy.decide(request("GET", path, [host, cookie, ("Sec-Fetch-Site", "same-site")]), tokenUsed: true)) == "bridge_not_console", "\(path)")
            #expect(code(policy.decide(request("GET", path, [host, cookie]), tokenUsed: true)) == "bridge_not_console", "\(path)")
        }
        #expect(code(policy.decide(request("GET", "http://127.0.0.1:4711/v1/status", [host, cookie, console]), tokenUsed: true)) == "bridge_target")
        #expect(code(policy.decide(request("GET", "*", [host, cookie, console]), tokenUsed: true)) == "bridge_target")
    }

    @Test("secrets are 64 hex digits and differ each time")
    func secrets() {
        let one = BridgePolicy.secret(), two = BridgePolicy.secret()
        #expect(one.count == 64 && one.allSatisfy(\.isHexDigit) && one != two)
        #expect(policy.setCookie.hasPrefix("stipple_console_4711=") && policy.setCookie.contains("HttpOnly") && policy.setCookie.contains("SameSite=Strict"))
    }

    @Test("the socket table names the owner of the connecting end only")
    func loopbackPeer() {
        let table = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:1267 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 ffff 0
               1: 0100007F:1267 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 ffff 0
               2: 0100007F:C350 0100007F:1267 01 00000000:00000000 00:00000000 00000000  1001        0 3 1 ffff 0
               3: 0200007F:C351 0100007F:1267 01 00000000:00000000 00:00000000 00000000  1002        0 4 1 ffff 0
            """
        #expect(LoopbackPeer.owner(peerPort: 0xC350, serverPort: 4711, table: table) == 1001)
        #expect(LoopbackPeer.owner(peerPort: 0xC351, serverPort: 4711, table: table) == nil)
        #expect(LoopbackPeer.owner(peerPort: 0xC352, serverPort: 4711, table: table) == nil)
        #expect(LoopbackPeer.owner(peerPort: 0xC350, serverPort: 4711, table: "garbage\n1: x y z") == nil)
    }
}
