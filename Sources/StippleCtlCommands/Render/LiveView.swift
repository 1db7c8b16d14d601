import Foundation
import StippleClient
import StippleReport

/// What `watch` and `arm` show. On a terminal: a compact block redrawn in place (ANSI cursor
/// movement, at most 10 times a second). Piped: one plain line per event, telemetry at most once
/// a second. With --json: every event's data as the daemon sent it, one object per line.
final class LiveView {
    enum Mode { case terminal, lines, json }

    let mode: Mode
    let socket: String
    private var drawnLines = 0
    private var lastDraw = Date.distantPast
    private var lastTelemetryLine = Date.distantPast
    private var notes: [String] = []
    private var finished = false

    init(mode: Mode, socket: String) {
        self.mode = mode
        self.socket = socket
        if mode == .terminal { Output.write("\u{1B}[?25l") }  // hide the cursor while redrawing
    }

    /// An event as it arrives (lines and JSON modes print it; the terminal redraws on `render`).
    func event(_ event: DaemonEventLine) {
        switch mode {
        case .json:
            if event.name == "status", case .object(var object) = event.data, object["type"] == nil {
                object["type"] = .string("status")
                Output.line(JSON.object(object).compactText)
            } else {
                Output.line(event.raw)
            }
        case .lines:
            if let line = Self.line(for: event, lastTelemetry: &lastTelemetryLine) { Output.line(line) }
        case .terminal:
            break
        }
    }

    /// A remark of stipplectl's own (armed, disarmed).
    func note(_ text: String) {
        switch mode {
        case .json: break
        case .lines: Output.line("\(Self.time()) \(text)")
        case .terminal:
            notes = [text]
            lastDraw = .distantPast
        }
    }

    func render(status: JSON, telemetry: JSON, limits: JSON, recent: [String], lease: String?, force: Bool = false) {
        guard mode == .terminal, !finished else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let width = Self.terminalWidth() - 1
        let lines = Self.screen(status: status, telemetry: telemetry, limits: limits, recent: recent, lease: lease, notes: notes, socket: socket)
            .map { String($0.prefix(width)) }
        var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)F" : ""
        for line in lines { text += "\u{1B}[2K" + line + "\n" }
        if drawnLines > lines.count {
            for _ in lines.count..<drawnLines { text += "\u{1B}[2K\n" }
            text += "\u{1B}[\(drawnLines - lines.count)F"
        }
        drawnLines = lines.count
        Output.write(text)
    }

    /// The terminal's columns (redrawing in place needs lines that never wrap); 80 if unknown.
    static func terminalWidth() -> Int {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col >= 20 else { return 80 }
        return Int(size.ws_col)
    }

    func finish() {
        guard !finished else { return }
        finished = true
        if mode == .terminal { Output.write("\u{1B}[?25h") }
    }

    // MARK: - The terminal block

    static func screen(status: JSON, telemetry: JSON, limits: JSON, recent: [String], lease: String?, notes: [String], socket: String) -> [String] {
        var lines = ["stipplectl watch · stippled at \(socket) · Ctrl-C \(lease == nil ? "quits" : "disarms and quits")"]
        let session = status["session"]
        var state = "state     \(status["phase"].text.uppercased())"
        if !session.isNull {
            state += " · \(session["id"].text) · \(session["client_id"].text) · \(session["zone"].text)"
            lines.append(state)
            lines.append("time      \(Text.clock(ms: session["elapsed_ms"].int)) elapsed, \(Text.clock(ms: session["remaining_ms"].int)) left")
            lines.append("setpoint  \(StatusText.setpoint(session))")
        } else {
            lines.append(state + "  · no session open")
        }
        let layer = session["setpoint"]["layer"].string
        let band = layer.map { limits[$0] } ?? .null
        let depth = telemetry["depth_um"].int
        lines.append("depth     \(depth.map { String(format: "%5d µm", $0) } ?? "    - µm")  " +
                     gauge(depth: depth, bandMin: band["min_um"].int, bandMax: band["max_um"].int, trip: session["depth_trip_um"].int))
        var rate = "rate      " + (telemetry["rate_hz"].double.map { String(format: "%6.1f Hz", $0) } ?? "     - Hz")
        if telemetry.isNull {
            rate += "  motor -    pedal -     (waiting for the pen's next telemetry)"
        } else {
            rate += "  motor \(telemetry["motor_on"].bool == true ? "ON " : "off")  pedal \(telemetry["pedal"].bool == true ? "down" : "up  ")"
            if let current = telemetry["current_ma"].int { rate += "  \(current) mA" }
            if let temperature = telemetry["temperature_c"].double { rate += String(format: "  %.1f °C", temperature) }
        }
        lines.append(rate)
        let faults = status["faults"].array.map(\.text)
        lines.append("faults    " + (faults.isEmpty ? "none" : faults.joined(separator: ", ")))
        let pen = status["pen"]
        lines.append("pen       " + (pen["serial"].string.map { "\($0) fw \(pen["firmware"].text) on \(pen["transport"].text)" } ?? StatusText.pen(pen)))
        if let lease { lines.append("lease     holding operator presence as \(lease)") }
        for note in notes { lines.append("note      \(note)") }
        for (index, event) in recent.suffix(3).enumerated() { lines.append((index == 0 ? "events    " : "          ") + event) }
        return lines
    }

    /// A 30-column gauge from 0 to a little past the trip: the band as '=', the trip as '|', the
    /// last stroke as '#'.
    static func gauge(depth: Int?, bandMin: Int?, bandMax: Int?, trip: Int?) -> String {
        let width = 30
        let top = Double(max(trip ?? 1500, bandMax ?? 0, depth ?? 0)) * 1.15
        func column(_ um: Int) -> Int { min(width - 1, max(0, Int(Double(um) / top * Double(width)))) }
        var cells = Array(repeating: Character("·"), count: width)
        if let bandMin, let bandMax { for index in column(bandMin)...column(bandMax) { cells[index] = "=" } }
        if let trip { cells[column(trip)] = "|" }
        if let depth { cells[column(depth)] = "#" }
        var text = "[" + String(cells) + "]"
        if let bandMin, let bandMax { text += " \(bandMin)–\(bandMax)" }
        if let trip { text += " |\(trip)" }
        return text
    }

    // MARK: - Plain lines

    static func time() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        return formatter.string(from: Date())
    }

    static func line(for event: DaemonEventLine, lastTelemetry: inout Date) -> String? {
        let data = event.data
        let body: String
        switch event.name {
        case "status":
            body = "status \(StatusText.brief(data))"
        case "state":
            body = "state \(data["from"].text) -> \(data["phase"].text)"
        case "fault":
            body = "FAULT \(data["reason"].text): \(data["detail"].text)"
        case "warning":
            body = "warning \(data["kind"].text): \(data["detail"].text)"
        case "telemetry":
            guard Date().timeIntervalSince(lastTelemetry) >= 1 else { return nil }
            lastTelemetry = Date()
            body = "telemetry depth \(Text.depth(data["depth_um"].int)) rate \(Text.rate(data["rate_hz"].double)) motor \(data["motor_on"].bool == true ? "on" : "off") pedal \(data["pedal"].bool == true ? "down" : "up") session \(Text.clock(ms: data["session_time_ms"].int))"
        default:
            let fields = data.object.filter { $0.key != "type" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.text)" }
            body = "\(event.name) \(fields.joined(separator: " "))"
        }
        return "\(time()) \(body)"
    }
}
