import ArgumentParser
import Foundation
import Logging
import StippleConsoleBridge

/// `stipplectl console`: the technician's console in a browser. The daemon has no TCP listener
/// (H14); this command is the only bridge, and it runs as the logged-in user, so the daemon reads
/// that user's credentials on every request it forwards (docs/console.md).
struct ConsoleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Open the technician's console in a browser (a bridge on 127.0.0.1 to the daemon's socket, as you).",
        discussion: """
            Listens on 127.0.0.1 (an ephemeral port unless --port), prints a launch link that is good once, and \
            opens it (xdg-open; --app: a chromium kiosk window; --no-open: print only). Only your own user's \
            browser that opened the link gets in. Keep this command running while the console is used: when it \
            stops, every lease the console holds ends and the needle stops. Ctrl-C stops it.
            """)

    @OptionGroup var options: GlobalOptions

    @Option(help: ArgumentHelp("The port on 127.0.0.1, 1...65535 (default: an ephemeral port).", valueName: "port"))
    var port: Int?

    @Flag(help: "Open the console in a chromium kiosk window (chromium --kiosk --app=URL) instead of the default browser.")
    var app = false

    @Flag(help: "Print the launch link; open nothing.")
    var noOpen = false

    mutating func validate() throws {
        if let port, !(1...65535).contains(port) {
            throw ValidationError("--port \(port) is out of range: 1...65535 (or leave it out for an ephemeral port)")
        }
        if app && noOpen { throw ValidationError("--app and --no-open contradict each other: give one") }
    }

    func run() throws {
        let location = options.location
        var logger = Logger(label: "stipplectl.console")
        logger.logLevel = .notice
        let bridge: ConsoleBridge
        do {
            bridge = try ConsoleBridge.start(socketPath: location.path, stopSocketPath: location.stopPath, port: port ?? 0, logger: logger)
        } catch {
            throw CtlError(port == nil ? .unreachable : .portBusy, code: "console_listen",
                           "cannot listen on 127.0.0.1:\(port.map(String.init) ?? "an ephemeral port"): \(error)")
        }
        // The daemon may be down or starting: the page says so and reconnects by itself.
        do { _ = try options.client().get("/v1/status") } catch {
            FileHandle.standardError.write(Data("stipplectl console: \(error.message) — the console will show this and reconnect\n".utf8))
        }
        let url = bridge.policy.launchURL
        Output.line("console: \(url)")
        Output.line("the link is good once, for your user's browser; keep this running while the console is used (Ctrl-C stops it, and any lease it holds)")
        if app {
            // The kiosk window and the bridge end together: a closed window stops the console
            // (its systemd user unit then opens a new one).
            let (window, profile) = try kiosk(url)
            window.waitUntilExit()
            bridge.close()
            try? FileManager.default.removeItem(atPath: profile)
            return
        }
        if !noOpen { open(url) }
        try bridge.wait()
    }

    /// A chromium window of its own (its own profile, so that it is its own process and not a
    /// tab of a browser already running), full screen, with nothing but the console.
    func kiosk(_ url: String) throws -> (Process, profile: String) {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let chromium else {
            throw CtlError(.unreachable, code: "console_no_browser", "no chromium found for --app (apt install chromium); or run without --app and open the link")
        }
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_RUNTIME_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(NSHomeDirectory())/.cache"
        // A profile of this run's own: a chromium already running on a shared profile would take
        // the window over and exit at once, ending this console before it began.
        let profile = "\(base)/stipple-console-\(getpid())"
        try? FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = ["--kiosk", "--app=\(url)", "--user-data-dir=\(profile)", "--no-first-run", "--disable-translate",
                             "--noerrdialogs", "--disable-features=Translate", "--autoplay-policy=no-user-gesture-required"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch {
            throw CtlError(.unreachable, code: "console_no_browser", "cannot start \(chromium): \(error.localizedDescription)")
        }
        return (process, profile)
    }

    /// Opens the link in the user's browser; one that cannot be started is said, and the link
    /// stays printed.
    func open(_ url: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["xdg-open", url]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch {
            FileHandle.standardError.write(Data("stipplectl console: cannot open a browser (\(error.localizedDescription)); open the link above\n".utf8))
        }
    }
}
