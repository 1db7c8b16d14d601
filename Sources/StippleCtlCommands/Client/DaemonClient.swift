#if canImport(Glibc)
import Foundation
import Glibc
import StippleAPI
import StippleRequests
import StippleClient
import StippleTransport
import SystemPackage

/// stipplectl's side of the local API (docs/openapi.yaml): requests over the Unix socket, and
/// every failure turned into one sentence that says what happened and what to do, with its
/// exit status.
struct DaemonClient: Sendable {
    let location: SocketLocation
    var http: UnixHTTPClient

    init(location: SocketLocation) {
        self.location = location
        http = UnixHTTPClient(socketPath: location.path)
    }

    /// A successful answer: its bytes (printed as they are with `--json`) and parsed.
    struct Reply: Sendable {
        var status: Int
        var data: Data
        var json: JSON
    }

    func get(_ path: String) throws(CtlError) -> Reply { try call("GET", path) }

    func post(_ path: String, body: Data? = nil, headers: [String: String] = [:]) throws(CtlError) -> Reply {
        try call("POST", path, body: body, headers: headers)
    }

    func put(_ path: String, body: Data) throws(CtlError) -> Reply { try call("PUT", path, body: body) }

    func call(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:]) throws(CtlError) -> Reply {
        let answer: HTTPAnswer
        do {
            answer = try http.send(method, path, body: body, headers: headers)
        } catch {
            throw unreachable(error)
        }
        // Read strictly before anything is shown or acted on: a key given twice would be one of
        // the two to this reader and perhaps the other to the next (DuplicateKeys).
        if StrictAnswerMiddleware.isJSON(answer.contentType), let finding = DuplicateKeys.find(in: answer.body) {
            throw CtlError(.badAnswer, code: "bad_answer", "stippled answered \(method) \(path) with \(finding) (a bug: please report it)")
        }
        guard (200..<300).contains(answer.status) else { throw Self.refusal(answer, method: method, path: path) }
        if answer.body.isEmpty { return Reply(status: answer.status, data: answer.body, json: .null) }
        guard let json = try? JSON(data: answer.body) else {
            throw CtlError(.badAnswer, code: "bad_answer", "stippled answered \(method) \(path) with something that is not JSON (a bug: please report it)")
        }
        return Reply(status: answer.status, data: answer.body, json: json)
    }

    // MARK: - Failures, in words

    static let notMember = "permission denied: you are not in group stipple (technicians) or stipple-eng (engineers) (ask an administrator: `usermod -aG stipple $USER`)"
    static let notEngineer = "permission denied: this needs group stipple-eng (ask an administrator: `usermod -aG stipple-eng $USER`)"

    /// The socket could not be used at all.
    func unreachable(_ error: SystemCallError) -> CtlError {
        let path = location.path
        switch error.errno {
        case .permissionDenied, .notPermitted:
            // The socket is mode 0660, group stipple: the kernel refused before the daemon could.
            return CtlError(.permissionDenied, code: "not_a_member", Self.notMember)
        case .noSuchFileOrDirectory, .connectionRefused, .notDirectory, .fileNameTooLong, .notSocket:
            let reason = switch error.errno {
            case .noSuchFileOrDirectory, .notDirectory: "no such file"
            case .connectionRefused: "nothing is listening (a socket left behind by a daemon that is not running)"
            case .notSocket: "that is not a socket"
            default: "the path is too long for a Unix socket"
            }
            var message = "cannot reach stippled at \(path): \(reason) (is the service running? `systemctl status stippled`)"
            if !location.alsoLookedAt.isEmpty {
                message += "\n  also looked for a daemon of your own (`make run`) at \(location.alsoLookedAt.joined(separator: ", ")); --socket or STIPPLE_SOCKET name another"
            }
            return CtlError(.unreachable, code: "daemon_unreachable", message)
        case .timedOut:
            return CtlError(.unreachable, code: "daemon_not_answering",
                            "stippled at \(path) did not answer in time (is it hung? `systemctl status stippled`, `journalctl -u stippled`)")
        default:
            return CtlError(.unreachable, code: "daemon_unreachable", "cannot talk to stippled at \(path): \(error)")
        }
    }

    /// A problem document (RFC 9457) in words, with the exit status its HTTP status stands for.
    static func refusal(_ answer: HTTPAnswer, method: String, path: String) -> CtlError {
        let raw = answer.body.text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let problem = try? JSON(data: answer.body), let code = problem["code"].string else {
            return CtlError(.badAnswer, code: "bad_answer",
                            "stippled answered \(method) \(path) with HTTP \(answer.status) and no problem document (a bug: please report it)")
        }
        let detail = problem["detail"].string ?? "refused"
        let json = raw.isEmpty ? nil : raw
        // The daemon's codes, as docs/openapi.yaml lists them (generated): a code this stipplectl
        // does not know (a newer daemon) is still shown, by its HTTP status.
        let known = ProblemCode(rawValue: code)
        switch answer.status {
        case 403:
            return CtlError(.permissionDenied, code: code, known == .notAMember ? notMember : known == .engineersOnly ? notEngineer : "permission denied: \(detail)",
                            problemJSON: json)
        case 404 where known == .noSuchRoute:
            return CtlError(.badAnswer, code: code, "stippled does not know \(method) \(path) — is it older than this stipplectl? (\(detail))", problemJSON: json)
        case 404:
            return CtlError(.notFound, code: code, "not found: \(detail)", problemJSON: json)
        case 400, 409, 413, 415, 422, 503:
            return CtlError(.refused, code: code, describe(problem, detail: detail), problemJSON: json)
        default:
            return CtlError(.badAnswer, code: code, "stippled failed: \(detail) (HTTP \(answer.status); `journalctl -u stippled` says why)", problemJSON: json)
        }
    }

    /// "refused: …" with every failed arming check and every bad field on a line of its own.
    static func describe(_ problem: JSON, detail: String) -> String {
        let failures = problem["arming_failures"].array
        var lines: [String]
        if !failures.isEmpty {
            let count = failures.count == 1 ? "1 check failed" : "\(failures.count) checks failed"
            lines = ["arming refused: \(count)"]
            for failure in failures {
                lines.append("  - \(failure["code"].text): \(failure["message"].text)")
            }
        } else {
            lines = ["refused: \(detail)"]
            for error in problem["errors"].array where !detail.contains(error["allowed"].text) || problem["errors"].array.count > 1 {
                lines.append("  - \(error["field"].text) = \(error["value"].text) (allowed: \(error["allowed"].text))")
            }
        }
        if let state = problem["state"].string { lines[0] += " (state: \(state))" }
        return lines.joined(separator: "\n")
    }
}
#endif
