import ArgumentParser
import Foundation
import StippleClient
import Synchronization

/// stipplectl's exit statuses: stable, documented in `stipplectl --help`, the man page and the
/// README. Scripts may rely on them; a new kind of failure gets a new number, never a reused one.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    /// It worked.
    case ok = 0
    /// The command ran and its answer is "no": the audit chain is broken, a selftest check
    /// failed, ping lost every frame.
    case checkFailed = 1
    /// The daemon understood the request and refused it (a 400, 409, 422 or 503 problem): arming
    /// checks failed, a setpoint out of its band, no session open, the records unavailable.
    case refused = 2
    /// Permission denied: not in group stipple (or stipple-eng for engineers' commands).
    case permissionDenied = 3
    /// No such session (or other object) in the daemon's records.
    case notFound = 4
    /// The needle was stopped by a fault (or another client) while `arm` or `watch --arm` held it.
    case stoppedByFault = 5
    /// Bad usage: an unknown command, option or value (EX_USAGE, as swift-argument-parser uses).
    case usage = 64
    /// The daemon cannot be reached (no socket, nothing listening), or a bring-up target is missing (EX_UNAVAILABLE).
    case unreachable = 69
    /// The daemon answered something stipplectl does not understand: a bug, please report it (EX_SOFTWARE).
    case badAnswer = 70
    /// An output file cannot be written (EX_CANTCREAT).
    case cannotCreate = 73
    /// Reading or writing a serial port failed (EX_IOERR).
    case ioError = 74
    /// The pen's port is held by another process, usually stippled (EX_TEMPFAIL): try again through the daemon.
    case portBusy = 75

    /// One line per status, for `--help`, the man page and the README.
    public var meaning: String {
        switch self {
        case .ok: "ok"
        case .checkFailed: "the check ran and failed (audit chain broken, selftest failed, no ping answered)"
        case .refused: "refused by the daemon (arming checks, values out of range, wrong state)"
        case .permissionDenied: "permission denied (not in group stipple, or stipple-eng for bring-up)"
        case .notFound: "no such session"
        case .stoppedByFault: "a fault stopped the needle while this command held it armed"
        case .usage: "bad usage"
        case .unreachable: "stippled cannot be reached (or the named device does not exist)"
        case .badAnswer: "the daemon's answer was not understood (a bug: please report it)"
        case .cannotCreate: "an output file cannot be written"
        case .ioError: "a serial port failed"
        case .portBusy: "the pen's port is held by another process (stippled): go through the daemon"
        }
    }

    static var table: String {
        allCases.map { "  \(String($0.rawValue).padding(toLength: 4, withPad: " ", startingAt: 0)) \($0.meaning)" }
            .joined(separator: "\n")
    }
}

/// A failure stipplectl reports itself: one sentence that says what happened and what to do,
/// the exit status, and (with `--json`) the object printed on standard output instead.
public struct CtlError: Error, CustomStringConvertible, Sendable {
    public var status: ExitStatus
    public var message: String
    /// The daemon's problem document, as it came (with `--json` it is printed as is).
    public var problemJSON: String?
    /// A stable code for scripts (the problem's `code`, or stipplectl's own).
    public var code: String

    public init(_ status: ExitStatus, code: String, _ message: String, problemJSON: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.problemJSON = problemJSON
    }

    public var description: String { message }

    static func usage(_ message: String) -> CtlError { CtlError(.usage, code: "usage", message) }

    /// What `--json` prints: the daemon's problem, or an object of the same keys for failures
    /// that never reached the daemon.
    var json: String {
        if let problemJSON { return problemJSON }
        let object: [String: Any] = ["code": code, "detail": message, "exit_status": Int(status.rawValue)]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Whether this run prints JSON: set once while parsing (`--json`), read when reporting errors.
enum Output {
    private static let jsonFlag = Atomic<Bool>(false)
    static var json: Bool {
        get { jsonFlag.load(ordering: .relaxed) }
        set { jsonFlag.store(newValue, ordering: .relaxed) }
    }

    /// Writes to standard output at once (lines for pipes and live views must not wait in a buffer).
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func line(_ text: String) { write(text + "\n") }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

/// A bad input from the user: printed as one clear line, without the usage text.
struct InputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension StippleCtl {
    /// Parses, runs, and turns failures into stipplectl's exit statuses (see `ExitStatus`).
    public static func main() {
        Foundation.exit(run(Array(CommandLine.arguments.dropFirst())))
    }

    /// As `main`, returning the exit status instead of exiting (tests).
    public static func run(_ arguments: [String]) -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            return 0
        } catch let error as CtlError {
            report(error)
            return error.status.rawValue
        } catch let error as InputError {
            report(CtlError(.usage, code: "bad_input", error.description))
            return ExitStatus.usage.rawValue
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                // --help, --version, completion scripts: printed to standard output.
                let text = fullMessage(for: error)
                if !text.isEmpty { Output.line(text) }
                return 0
            }
            let text = fullMessage(for: error)
            if !text.isEmpty { Output.error(text) }
            return code == .validationFailure ? ExitStatus.usage.rawValue : code.rawValue
        }
    }

    static func report(_ error: CtlError) {
        if Output.json {
            Output.line(error.json)
        } else {
            Output.error("stipplectl: \(error.message)")
        }
    }
}
