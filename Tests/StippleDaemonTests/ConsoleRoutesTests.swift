import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import StippleDaemon
import StippleSafety
import StippleSupervision
import Testing

/// `/console/`: the console's files from memory, read once at start-up; nothing outside the
/// directory's own list is ever answered, and every file carries the console's security headers.
@Suite("/console, in process")
struct ConsoleRoutesTests {
    static func directory(_ files: [String: String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("console-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: "\(path)/\(name)", atomically: true, encoding: .utf8) }
        return path
    }

    @Test("the files are served with their types and the security headers; other names are 404")
    func served() async throws {
        let path = try Self.directory(["index.html": "<!doctype html><p>hi", "console.js": "export {}", "notes.txt": "secret",
                                       ".hidden.js": "x", "a.b.js": "x"])
        try FileManager.default.createDirectory(atPath: "\(path)/sub.js", withIntermediateDirectories: true)
        let console = try ConsoleFiles.load(directory: path)
        #expect(console.files.keys.sorted() == ["console.js", "index.html"])
        let rig = try await DaemonRig()
        try await RouteTests.application(rig, console: console).test(.router) { client in
            for uri in ["/console", "/console/index.html"] {
                try await client.execute(uri: uri, method: .get, headers: RouteTests.headers("technician")) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                    #expect(response.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
                    #expect(response.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("script-src 'self'") == true)
                    #expect(String(buffer: response.body).contains("hi"))
                }
            }
            try await client.execute(uri: "/console/console.js", method: .get, headers: RouteTests.headers("engineer")) { response in
                #expect(response.headers[.contentType] == "text/javascript; charset=utf-8")
            }
            for uri in ["/console/notes.txt", "/console/..%2fnotes.txt", "/console/.hidden.js", "/console/a.b.js", "/console/missing.js"] {
                try await client.execute(uri: uri, method: .get, headers: RouteTests.headers("technician")) { response in
                    #expect(response.status == .notFound, "\(uri)")
                    #expect(RouteTests.code(response) == "no_such_route", "\(uri)")
                }
            }
            // The credential check guards the console like every route.
            try await client.execute(uri: "/console", method: .get, headers: RouteTests.headers("none")) { response in
                #expect(response.status == .forbidden)
            }
        }
        await rig.supervisor.shutdown()
        try? FileManager.default.removeItem(atPath: path)
    }

    @Test("a daemon with no console says so; a configured directory without index.html is refused at start")
    func none() async throws {
        let rig = try await DaemonRig()
        try await RouteTests.application(rig).test(.router) { client in
            try await client.execute(uri: "/console", method: .get, headers: RouteTests.headers("technician")) { response in
                #expect(response.status == .notFound)
                #expect(RouteTests.code(response) == "no_console")
            }
        }
        await rig.supervisor.shutdown()
        let empty = try Self.directory(["console.js": "x"])
        #expect(throws: ConsoleFiles.LoadError.self) { try ConsoleFiles.load(directory: empty) }
        #expect(throws: ConsoleFiles.LoadError.self) { try ConsoleFiles.locate(configured: "/nonexistent/console", executable: "/usr/bin/true") }
        try? FileManager.default.removeItem(atPath: empty)
    }

    @Test("the source checkout's own console is found and is small")
    func checkout() throws {
        let console = try ConsoleFiles.locate(configured: nil, executable: "/nonexistent/bin/stippled")
        #expect(console.directory?.hasSuffix("Sources/console") == true)
        let total = console.files.values.reduce(0) { $0 + $1.bytes.count }
        #expect(total < 300_000, "the whole console must stay within 300 KB: \(total)")
    }
}

/// The session report as HTML: asked for only by a browser, and allowed its inline CSS by hash.
@Suite struct ReportHTMLTests {
    @Test("HTML only when text/html is named and JSON is not")
    func negotiation() {
        #expect(Routes.wantsHTML(["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"]))
        #expect(Routes.wantsHTML(["TEXT/HTML"]))
        #expect(!Routes.wantsHTML(["application/json, text/html"]))
        #expect(!Routes.wantsHTML(["application/json"]))
        #expect(!Routes.wantsHTML(["*/*"]))
        #expect(!Routes.wantsHTML([]))
        #expect(!Routes.wantsHTML(["text/html-ish"]))
    }

    @Test("every <style> block is hashed; nothing else is allowed")
    func policy() {
        let css = "body { color: #123; }"
        let policy = Routes.reportPolicy("<html><head><style>\(css)</style></head><body><style>p{}</style></body></html>")
        #expect(policy.hasPrefix("default-src 'none'"))
        #expect(policy.contains("frame-ancestors 'none'"))
        #expect(!policy.contains("unsafe"))
        #expect(!policy.contains("script-src"))
        // SHA-256 of the first block, base64 (computed independently: printf '%s' "$css" | openssl dgst -sha256 -binary | base64).
        #expect(policy.contains("'sha256-th1+UYo0PO8/EArm9Yine/cqNbBRyib1ihOXskfx34Q='"), "\(policy)")
        #expect(policy.components(separatedBy: "'sha256-").count == 3)
        #expect(Routes.reportPolicy("<p>no style</p>").contains("style-src 'none'"))
    }
}

/// `GET /v1/arming-checks`: the pre-arm checklist is the arm's own checks, and changes nothing.
@Suite struct ArmingChecklistTests {
    static func checklist(_ client: some TestClientProtocol, clientID: String?) async throws -> [String: Any] {
        try await client.execute(uri: "/v1/arming-checks", method: .get, headers: RouteTests.headers("technician", client: clientID)) { response in
            #expect(response.status == .ok)
            return try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
        }
    }

    static func codes(_ answer: [String: Any]) -> Set<String> {
        Set((answer["failures"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String })
    }

    @Test("every failing check at once, the same as an arm would list; ready once they pass; nothing armed by asking")
    func checklist() async throws {
        let rig = try await DaemonRig()
        try await RouteTests.application(rig).test(.router) { client in
            let empty = try await Self.checklist(client, clientID: nil)
            #expect(empty["ready"] as? Bool == false)
            #expect(Self.codes(empty).isSuperset(of: ["session_not_open", "setpoint_missing", "client_not_connected"]), "\(empty)")

            // The arm's own answer lists the same checks.
            try await client.execute(uri: "/v1/arm", method: .post, headers: RouteTests.headers("technician", client: DaemonRig.client)) { response in
                let object = try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
                let armed = Set((object["arming_failures"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String })
                let listed = Self.codes(try await Self.checklist(client, clientID: DaemonRig.client))
                #expect(armed == listed, "arm \(armed) vs checklist \(listed)")
            }

            _ = try await rig.supervisor.openSession(
                SessionRequest(sessionID: "", clientID: "C-LIST", technician: "ana", zone: .crown, cartridgeID: "SIM-CART-0001",
                               pigmentLots: ["P-1"], penSerial: "", gapOverrideReason: nil), actor: "test")
            _ = try await rig.supervisor.setSetpoint(.init(layer: .upperDermis, depthUm: 800, rateHz: 120), actor: "test")
            await rig.run(for: .milliseconds(300))
            let noStream = try await Self.checklist(client, clientID: DaemonRig.client)
            #expect(Self.codes(noStream) == ["client_not_connected"], "\(noStream)")
            let message = (noStream["failures"] as? [[String: Any]])?.first?["message"] as? String ?? ""
            #expect(message.contains("GET /v1/events") || message.contains("event stream"), "\(message)")

            _ = await rig.supervisor.presenceOpened(DaemonRig.holder)
            let ready = try await Self.checklist(client, clientID: DaemonRig.client)
            #expect(ready["ready"] as? Bool == true && Self.codes(ready).isEmpty, "\(ready)")
            #expect(ready["blocked"] == nil)
            #expect(await rig.phase == "open", "asking armed nothing")
        }
        await rig.supervisor.shutdown()
    }
}

/// `GET /v1/me`: the caller as the daemon reads it, which a screen uses to hide what the role
/// may not do (the daemon refuses it anyway).
@Suite struct CallerRouteTests {
    @Test("the role is the socket's, whoever the client says it is")
    func caller() async throws {
        let rig = try await DaemonRig()
        try await RouteTests.application(rig).test(.router) { client in
            for (role, expected) in [("technician", "technician"), ("engineer", "engineer")] {
                try await client.execute(uri: "/v1/me", method: .get, headers: RouteTests.headers(role)) { response in
                    let object = try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
                    #expect(object["role"] as? String == expected && object["user"] as? String == "ana" && object["uid"] as? Int == 1000)
                }
            }
            try await client.execute(uri: "/v1/me", method: .get, headers: RouteTests.headers("none")) { response in
                #expect(response.status == .forbidden)
            }
        }
        await rig.supervisor.shutdown()
    }
}
