import ArgumentParser
import Foundation
import StippleClient
@testable import StippleCtlCommands
@testable import StippleReport
import StippleDaemon
import StippleSafety
import StippleWire
import Testing

/// Parsing, as swift-argument-parser tests its own examples: parse the root with arguments and
/// look at the command it chose. Behaviour against a real daemon is in Tests/e2e.
@Suite struct ParsingTests {
    func parse<T: ParsableCommand>(_ arguments: [String], as type: T.Type = T.self) throws -> T {
        try #require(try StippleCtl.parseAsRoot(arguments) as? T)
    }

    @Test func globalOptionsOnEveryCommand() throws {
        let status: Status = try parse(["status", "--json", "--socket", "/tmp/x.sock"])
        #expect(status.options.json)
        #expect(status.options.socket == "/tmp/x.sock")
        let ping: Ping = try parse(["ping", "--count", "5", "--port", "/dev/ttyACM0", "--json"])
        #expect(ping.count == 5 && ping.target.port == "/dev/ttyACM0" && ping.options.json)
        let audit: AuditExport = try parse(["audit", "export", "--format", "csv", "-o", "a.csv"])
        #expect(audit.format == .csv && audit.output == "a.csv")
    }

    @Test func sessionOpenTakesTypedZoneAndNeedsAPigmentLot() throws {
        let open: SessionOpen = try parse(["session", "open", "--client", "C-1", "--zone", "front_temples", "--cartridge", "K",
                                           "--pigment-lot", "P1", "--pigment-lot", "P2"])
        #expect(open.zone == .frontTemples && open.pigmentLots == ["P1", "P2"])
        #expect(throws: (any Error).self) { try StippleCtl.parseAsRoot(["session", "open", "--client", "C-1", "--zone", "forehead", "--cartridge", "K", "--pigment-lot", "P"]) }
        #expect(throws: (any Error).self) { try StippleCtl.parseAsRoot(["session", "open", "--client", "C-1", "--zone", "crown", "--cartridge", "K"]) }
    }

    @Test func setpointAndCartridge() throws {
        let setpoint: SetpointCommand = try parse(["setpoint", "--layer", "epidermis", "--depth-um", "300", "--rate-hz", "110.5"])
        #expect(setpoint.layer == .epidermis && setpoint.depthUm == 300 && setpoint.rateHz == 110.5)
        let cartridge: CartridgeSet = try parse(["cartridge", "set", "K-9", "--lot", "L1", "--expiry", "2027-06-30", "--needles", "3"])
        #expect(cartridge.id == "K-9" && cartridge.expiry == "2027-06-30")
        #expect(throws: (any Error).self) { try StippleCtl.parseAsRoot(["cartridge", "set", "K", "--expiry", "30.06.2027"]) }
    }

    @Test func armAndWatchShareTheLiveView() throws {
        let watch: Watch = try parse(["watch", "--arm", "--client-id", "gui-1", "--seconds", "2"])
        #expect(watch.arm && watch.view.clientID == "gui-1" && watch.view.seconds == 2)
        let arm: Arm = try parse(["arm", "--full-rate"])
        #expect(arm.view.fullRate)
        #expect(throws: (any Error).self) { try StippleCtl.parseAsRoot(["watch", "--client-id", "not ok!"]) }
    }

    @Test func bringUpRangesAreChecked() throws {
        #expect(throws: (any Error).self) { try StippleCtl.parseAsRoot(["identify", "--duration-ms", "20000"]) }
        #expect(throws: (any Error).self) { try StippleCtl.parseAsRoot(["ping", "--count", "0"]) }
        let raw: Raw = try parse(["raw", "identify", "duration_ms=500", "--seq", "9"])
        #expect(raw.message == "identify" && raw.fields == ["duration_ms=500"] && raw.seq == 9)
        let selftest: Selftest = try parse(["selftest", "--sim"])
        #expect(selftest.sim)
    }

    @Test func badUsageExitsWith64() {
        #expect(StippleCtl.run(["no-such-command"]) == 64)
        #expect(StippleCtl.run(["setpoint", "--layer", "dermis", "--depth-um", "1", "--rate-hz", "1"]) == 64)
    }

    @Test func exitStatusesAreStable() {
        let numbers = Dictionary(uniqueKeysWithValues: ExitStatus.allCases.map { ($0, $0.rawValue) })
        #expect(numbers == [.ok: 0, .checkFailed: 1, .refused: 2, .permissionDenied: 3, .notFound: 4, .stoppedByFault: 5,
                            .usage: 64, .unreachable: 69, .badAnswer: 70, .cannotCreate: 73, .ioError: 74, .portBusy: 75])
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptsKnowEveryCommand(shell: String) throws {
        let script = StippleCtl.completionScript(for: try #require(CompletionShell(rawValue: shell)))
        for command in ["session", "setpoint", "watch", "selftest", "trace", "audit"] { #expect(script.contains(command)) }
    }
}

@Suite struct SocketLocationTests {
    /// The default a non-root user's stipplectl looks for is the socket stippled listens on.
    @Test(arguments: [["XDG_RUNTIME_DIR": "/run/user/1000"], [:], ["XDG_RUNTIME_DIR": ""]])
    func sameDefaultAsTheDaemon(environment: [String: String]) {
        for uid: UInt32 in [0, 1000] {
            #expect(SocketLocation.daemonDefault(uid: uid, environment: environment)
                    == DaemonConfiguration(environment: environment, uid: uid).socketPath)
        }
    }

    @Test func order() {
        let env = ["XDG_RUNTIME_DIR": "/run/user/1000", "STIPPLE_SOCKET": "/tmp/s.sock"]
        #expect(SocketLocation.resolve(flag: "/a.sock", environment: env, uid: 1000).path == "/a.sock")
        #expect(SocketLocation.resolve(flag: nil, environment: env, uid: 1000).path == "/tmp/s.sock")
        let own = SocketLocation.resolve(flag: nil, environment: ["XDG_RUNTIME_DIR": "/run/user/1000"], uid: 1000, exists: { _ in true })
        #expect(own.path == "/run/user/1000/stipple/api.sock")
        let system = SocketLocation.resolve(flag: nil, environment: ["XDG_RUNTIME_DIR": "/run/user/1000"], uid: 1000, exists: { _ in false })
        #expect(system.path == "/run/stipple/api.sock" && system.alsoLookedAt == ["/run/user/1000/stipple/api.sock"])
    }
}

@Suite struct WireTests {
    @Test func chunkedAnswerAndEvents() throws {
        var parser = ResponseParser()
        try parser.push(Data("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-type: application/json\r\n\r\n5\r\n{\"a\":\r\n".utf8))
        try parser.push(Data("2\r\n1}\r\n0\r\n\r\n".utf8))
        let answer = try #require(parser.answer)
        #expect(answer.status == 200 && answer.body.text == "{\"a\":1}")
        var sse = SSEParser()
        let events = sse.push(Data("id: 1\nevent: state\ndata: {\"phase\":\"armed\"}\n\nevent: fa".utf8))
        #expect(events.count == 1 && events[0].name == "state" && events[0].data["phase"].string == "armed")
    }

    @Test func everyArmingFailureIsOnItsOwnLine() {
        let problem = Data("""
            {"code":"arming_checks_failed","detail":"arming refused","state":"open","status":409,"title":"Conflict","type":"x",
             "arming_failures":[{"code":"setpoint_missing","message":"no setpoint"},{"code":"no_cartridge","message":"no cartridge"}]}
            """.utf8)
        let error = DaemonClient.refusal(HTTPAnswer(status: 409, headers: [:], body: problem), method: "POST", path: "/v1/arm")
        #expect(error.status == .refused)
        #expect(error.message == "arming refused: 2 checks failed (state: open)\n  - setpoint_missing: no setpoint\n  - no_cartridge: no cartridge")
    }

    @Test func notAMemberInTheIssuesWords() {
        let problem = Data(#"{"code":"not_a_member","detail":"permission denied: x","status":403,"title":"Forbidden","type":"x"}"#.utf8)
        let error = DaemonClient.refusal(HTTPAnswer(status: 403, headers: [:], body: problem), method: "GET", path: "/v1/status")
        #expect(error.status == .permissionDenied)
        #expect(error.message == "permission denied: you are not in group stipple (technicians) or stipple-eng (engineers) (ask an administrator: `usermod -aG stipple $USER`)")
    }

    @Test func aTraceCaptureDecodesBackToTheSameFrames() throws {
        var capture = TraceCapture()
        let hello = FrameEncoder.encode(Frame(seq: 1, message: .hello(.init(protoMajor: 1, protoMinor: 0))))
        let ack = FrameEncoder.encode(Frame(seq: 7, message: .ack(.init(ackedSeq: 1, ackedID: 1, status: .ok, detail: 0))))
        capture.append(.toPen, hello, at: MonotonicInstant(nanoseconds: 1_000_000))
        capture.append(.fromPen, Array(ack.prefix(4)), at: MonotonicInstant(nanoseconds: 1_500_000))
        capture.append(.fromPen, Array(ack.dropFirst(4)), at: MonotonicInstant(nanoseconds: 1_600_000))
        let seen = try TraceCapture.decode(capture.text)
        #expect(seen.count == 2)
        #expect(seen.map(\.direction) == [.toPen, .fromPen])
        #expect(seen[1].line(since: .zero).hasSuffix("pen < seq=7 ack acked_seq=1 acked_id=1 status=ok detail=0"))
    }
}

@Suite struct ReportTests {
    static let fixture = """
        {"session":{"id":"S-1","client_id":"C-7","technician":"ana","zone":"crown","pen_serial":"P-1","cartridge_id":"K-1",
          "pigment_lots":["PIG-1"],"opened_at":1000,"closed_at":1130,"close_reason":"technician","phase":"closed","faults":[],
          "session_time_ms":130000},
         "pen":{"serial":"P-1","firmware":"1.0.0","protocol_version":"1.0"},
         "cartridges":[{"cartridge_id":"K-1","lot":"L-3","expiry_day":21000,"needle_count":3,"needle_diameter_um":250,"recorded_at":1001}],
         "setpoints":[{"at":1000,"session_time_ms":500,"layer":"upper_dermis","depth_um":800,"rate_hz":120}],
         "faults":[{"at":1100,"kind":"over_depth","detail":"stroke protruded 1088 µm"}],"warnings":[],
         "telemetry":[{"second":10,"frames":100,"depth_min_um":780,"depth_mean_um":800.5,"depth_max_um":820,"rate_mean_hz":119.5},
                      {"second":11,"frames":100,"depth_min_um":790,"depth_mean_um":801,"depth_max_um":1088,"rate_mean_hz":120.1}],
         "limits":{"epidermis":{"min_um":200,"max_um":400},"upper_dermis":{"min_um":400,"max_um":1000},
           "zone_max_um":{"front_temples":1000,"crown":1200,"back_sides":1500,"scar":800},"site_ceiling_um":1500,"depth_tolerance_um":50,
           "rate_min_hz":50,"rate_max_hz":150,"session_length_s":14400,"effective_warnings_s":[10800,13500]},
         "limits_source":"recorded",
         "events":[{"seq":3,"at":1009,"actor":"stippled","kind":"session_state","payload":"{\\"from\\":\\"armed\\",\\"to\\":\\"running\\"}"},
                   {"seq":4,"at":1100,"actor":"stippled","kind":"session_state","payload":"{\\"from\\":\\"running\\",\\"to\\":\\"faulted\\"}"}],
         "audit":{"entries":12,"ok":AUDIT_OK,"first_broken":FIRST,"broken_seq":SEQ}}
        """

    func render(ok: Bool) throws -> String {
        let text = Self.fixture.replacingOccurrences(of: "AUDIT_OK", with: ok ? "true" : "false")
            .replacingOccurrences(of: "FIRST", with: ok ? "null" : "\"entry 5 was altered (its hash does not match its content)\"")
            .replacingOccurrences(of: "SEQ", with: ok ? "null" : "5")
        return Report(data: try JSON(data: Data(text.utf8)), generatedAt: Date(timeIntervalSince1970: 2000)).html
    }

    @Test func everythingTheIssueListsIsOnTheReport() throws {
        let html = try render(ok: true)
        #expect(html.components(separatedBy: "<svg").count == 3)  // depth and rate
        for text in ["C-7", "P-1", "firmware 1.0.0", "K-1", "lot L-3", "crown", "upper dermis", "400–1000 µm", "1200 µm", "0:02:10",
                     "over_depth", "Audit chain verified", "target band", "daemon stops above", "rate window", "runaway stop 160 Hz",
                     "not tissue depth"] {
            #expect(html.contains(text), "missing \(text)")
        }
        #expect(!html.contains("<script"))
    }

    @Test func aBrokenChainSaysWhere() throws {
        let html = try render(ok: false)
        #expect(html.contains("Audit chain BROKEN") && html.contains("entry 5 was altered"))
    }
}

@Suite struct StopSocketPathTests {
    @Test("stipplectl finds the daemon's stop socket where the daemon makes it (one fact, two modules)")
    func stopSocketPathAgrees() {
        for api in ["/run/stipple/api.sock", "/tmp/stipple-1000/api.sock", "/x/y/custom", "/x/daemon.sock"] {
            let location = SocketLocation(path: api, alsoLookedAt: [], source: "--socket")
            #expect(location.stopPath == StopSocket.path(besideAPISocket: api), "\(api)")
        }
    }
}
