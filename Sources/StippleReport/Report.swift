import Foundation
import StippleClient

/// The session report as one self-contained HTML page (inline CSS and SVG, no scripts, nothing
/// fetched): who, when, which pen and cartridge, the limits in force, setpoint changes, time,
/// warnings, faults and stops, plots of protrusion depth and stroke rate over the session with
/// the band and limits drawn in, and the audit chain's state. Made from the daemon's JSON
/// (`GET /v1/sessions/{id}/report`); the PDF is this page printed.
public struct Report: Sendable {
    static let faultColor = "#c0392b"
    static let stopColor = "#1f4e9c"
    static let bandColor = "#2e9d5b"
    static let depthColor = "#6a3d9a"
    static let rateColor = "#0b7a75"

    let data: JSON
    let generatedAt: Date

    public init(data: JSON, generatedAt: Date) {
        self.data = data
        self.generatedAt = generatedAt
    }

    var session: JSON { data["session"] }
    var limits: JSON { data["limits"] }
    var events: [JSON] { data["events"].array }

    static func payload(_ entry: JSON) -> JSON { (entry["payload"].string.flatMap { try? JSON(data: Data($0.utf8)) }) ?? .null }

    // MARK: - Time

    /// Wall time to session time. The session clock runs from the opening and counts pauses,
    /// so session time is the wall time since the opening (whole seconds, as the records keep
    /// wall time; an accelerated test clock accelerates both alike). The state entries'
    /// `session_time_ms` is the clock's last checkpoint, not the moment of the change.
    func sessionTime(atWall wall: Int) -> Double {
        max(0, Double(wall - (session["opened_at"].int ?? wall)))
    }

    /// Where the session's record ends, in session seconds.
    var sessionEnd: Double {
        let recorded = Double(session["session_time_ms"].int ?? 0) / 1000
        let telemetry = Double((data["telemetry"].array.last?["second"].int ?? 0) + 1)
        let wall = Double((events.last?["at"].int ?? 0) - (session["opened_at"].int ?? 0))
        return max(recorded, telemetry, wall, 1)
    }

    /// The plots' time axis: the session, at least 10 s.
    var duration: Double { max(sessionEnd, 10) }

    /// State changes in session time: (t, from, to).
    var transitions: [(Double, String, String)] {
        events.filter { $0["kind"].string == "session_state" }.map { entry in
            let payload = Self.payload(entry)
            return (sessionTime(atWall: entry["at"].int ?? 0), payload["from"].text, payload["to"].text)
        }
    }

    var runningPeriods: [(Double, Double)] {
        var periods: [(Double, Double)] = []
        var start: Double?
        for (t, from, to) in transitions {
            if to == "running" { start = t }
            if from == "running", let begun = start { periods.append((begun, t)); start = nil }
        }
        if let start { periods.append((start, sessionEnd)) }
        return periods
    }

    /// The kinds of audit entry a technician's stop leaves (the timeline lists each).
    static let stopKinds: Set<String> = ["stop", "disarm", "estop"]

    /// The timeline entries that stopped the needle: the plots' blue lines and the caption's
    /// count come from these same entries, so they cannot disagree with the timeline.
    /// Only entries that stopped a needle that could move count: a stop pressed after a fault had
    /// already stopped it, or twice, is listed in the timeline but draws no line. Closing a
    /// running session (by the technician, or at the time limit) stops it too. The audit log
    /// writes the stop and the state change it causes in either order; both are handled.
    var stopEntries: [JSON] {
        let moving: Set<String> = ["armed", "running", "paused"]
        var phase = ""
        var transitionUnclaimed = false  // left motion (not into a fault) with no stop entry yet
        var stopAwaitingTransition = false  // a stop entry while moving, its state change to come
        var stops: [JSON] = []
        for entry in events {
            let kind = entry["kind"].text
            if kind == "session_state" {
                let payload = Self.payload(entry)
                let (from, to) = (payload["from"].text, payload["to"].text)
                if moving.contains(from) && !moving.contains(to) {
                    transitionUnclaimed = to != "faulted" && !stopAwaitingTransition
                    stopAwaitingTransition = false
                } else if moving.contains(to) {
                    transitionUnclaimed = false
                }
                phase = to
            } else if Self.stopKinds.contains(kind) || kind == "session_closed" {
                if moving.contains(phase) && !stopAwaitingTransition {
                    stops.append(entry)
                    stopAwaitingTransition = true
                } else if transitionUnclaimed {
                    stops.append(entry)
                    transitionUnclaimed = false
                }
            }
        }
        return stops
    }

    var faultEntries: [JSON] { events.filter { $0["kind"].text == "fault" } }

    var markers: [SVGPlot.Marker] {
        faultEntries.map { entry in
            let t = sessionTime(atWall: entry["at"].int ?? 0)
            return SVGPlot.Marker(at: t, color: Self.faultColor, label: "fault \(Self.payload(entry)["reason"].text) at \(SVGPlot.clock(t))")
        } + stopEntries.map { entry in
            let t = sessionTime(atWall: entry["at"].int ?? 0)
            return SVGPlot.Marker(at: t, color: Self.stopColor, label: "\(Self.kindName(entry["kind"].text)) at \(SVGPlot.clock(t))")
        }
    }

    /// Over-depth faults called out at the deepest stroke of the second they tripped in (the
    /// per-second maximum the daemon recorded; the fault's own text as the label).
    var tripCallouts: [SVGPlot.Callout] {
        let seconds = data["telemetry"].array
        return faultEntries.filter { Self.payload($0)["reason"].text == "over_depth" }.compactMap { entry in
            let t = sessionTime(atWall: entry["at"].int ?? 0)
            let nearby = seconds.filter { abs(Double($0["second"].int ?? -10) - t) <= 1.5 }
            guard let deepest = nearby.max(by: { ($0["depth_max_um"].double ?? 0) < ($1["depth_max_um"].double ?? 0) }),
                  let value = deepest["depth_max_um"].double else { return nil }
            return SVGPlot.Callout(at: Double(deepest["second"].int ?? 0) + 0.5, value: value, color: Self.faultColor,
                                   label: "tripped: \(Int(value)) µm")
        }
    }

    /// Setpoints as (from, to, layer, depth, rate) in session seconds.
    var setpointSegments: [(Double, Double, String, Double, Double)] {
        let changes = data["setpoints"].array
        return changes.enumerated().map { index, change in
            let from = Double(change["session_time_ms"].int ?? 0) / 1000
            let to = index + 1 < changes.count ? Double(changes[index + 1]["session_time_ms"].int ?? 0) / 1000 : sessionEnd
            return (from, to, change["layer"].text, change["depth_um"].double ?? 0, change["rate_hz"].double ?? 0)
        }
    }

    // MARK: - Plots

    /// At most `buckets` points: min of the minimums, max of the maximums, mean of the means.
    func telemetryBuckets(_ buckets: Int = 1500) -> [(t: Double, low: Double?, mean: Double?, high: Double?, rate: Double?)] {
        let seconds = data["telemetry"].array
        let size = max(1, Int((Double(seconds.count) / Double(buckets)).rounded(.up)))
        return stride(from: 0, to: seconds.count, by: size).map { start in
            let slice = seconds[start..<min(seconds.count, start + size)]
            let lows = slice.compactMap { $0["depth_min_um"].double }
            let highs = slice.compactMap { $0["depth_max_um"].double }
            let means = slice.compactMap { $0["depth_mean_um"].double }
            let rates = slice.compactMap { $0["rate_mean_hz"].double }
            let t = Double(slice.first?["second"].int ?? 0) + Double(size) / 2
            return (t, lows.min(), means.isEmpty ? nil : means.reduce(0, +) / Double(means.count), highs.max(),
                    rates.isEmpty ? nil : rates.reduce(0, +) / Double(rates.count))
        }
    }

    func depthPlot() -> String {
        let zone = session["zone"].text
        let zoneMax = limits["zone_max_um"][zone].double
        let tolerance = limits["depth_tolerance_um"].double ?? 0
        let buckets = telemetryBuckets()
        var plot = SVGPlot(title: "Needle protrusion over the session (µm; not tissue depth)", unit: "protrusion (µm)", duration: duration,
                           yMax: max(Double(limits["site_ceiling_um"].int ?? 1500), zoneMax ?? 0, buckets.compactMap(\.high).max() ?? 0) * 1.05)
        plot.shaded = runningPeriods
        for (from, to, layer, _, _) in setpointSegments {
            let band = limits[layer]
            guard let low = band["min_um"].double, let high = band["max_um"].double else { continue }
            plot.bands.append(.init(from: from, to: to, low: low, high: high, color: Self.bandColor, label: "target band (\(layer.replacingOccurrences(of: "_", with: " ")))"))
        }
        plot.envelopes.append(.init(points: buckets.compactMap { b in b.low.flatMap { low in b.high.map { (b.t, low, $0) } } },
                                    color: Self.depthColor, label: "per-second min–max"))
        plot.series.append(.init(points: buckets.map { ($0.t, $0.high) }, color: Self.depthColor, label: "per-second maximum", width: 0.8))
        plot.series.append(.init(points: buckets.map { ($0.t, $0.mean) }, color: Self.depthColor, label: "mean"))
        plot.series.append(.init(points: setpointSegments.flatMap { [($0.0, Optional($0.3)), ($0.1, Optional($0.3))] }, color: "#222", label: "setpoint", width: 1, steps: true, dashed: true))
        let trips = setpointSegments.flatMap { segment -> [(Double, Double?)] in
            guard let high = limits[segment.2]["max_um"].double else { return [] }
            let trip = min(high + tolerance, zoneMax ?? .infinity)
            return [(segment.0, trip), (segment.1, trip)]
        }
        plot.series.append(.init(points: trips, color: Self.faultColor, label: "daemon stops above", width: 1.2, steps: true, dashed: true))
        if let zoneMax { plot.levels.append(.init(value: zoneMax, color: "#7f8c8d", label: "zone maximum (\(zone))")) }
        if let ceiling = limits["site_ceiling_um"].double { plot.levels.append(.init(value: ceiling, color: "#000000", label: "site ceiling")) }
        plot.markers = markers
        plot.callouts = tripCallouts
        return plot.svg
    }

    func ratePlot() -> String {
        let buckets = telemetryBuckets()
        var plot = SVGPlot(title: "Stroke rate over the session (Hz)", unit: "stroke rate (Hz)", duration: duration, yMax: 180)
        plot.shaded = runningPeriods
        if let low = limits["rate_min_hz"].double, let high = limits["rate_max_hz"].double {
            plot.bands.append(.init(from: nil, to: nil, low: low, high: high, color: Self.bandColor, label: "rate window"))
        }
        plot.series.append(.init(points: buckets.map { ($0.t, $0.rate) }, color: Self.rateColor, label: "mean per second"))
        plot.series.append(.init(points: setpointSegments.flatMap { [($0.0, Optional($0.4)), ($0.1, Optional($0.4))] }, color: "#222", label: "setpoint", width: 1, steps: true, dashed: true))
        plot.levels.append(.init(value: 160, color: Self.faultColor, label: "runaway stop 160 Hz"))
        plot.levels.append(.init(value: 40, color: "#7f8c8d", label: "stall stop 40 Hz (while running)"))
        plot.markers = markers
        return plot.svg
    }

    // MARK: - Words for people

    static func kindName(_ kind: String) -> String {
        switch kind {
        case "estop": "emergency stop"
        case "session_state": "state"
        case "session_closed": "session closed"
        case "cartridge_used": "cartridge used"
        case "cartridge_set": "cartridge entered"
        case "fault_cleared": "fault cleared"
        default: kind.replacingOccurrences(of: "_", with: " ")
        }
    }

    /// An audit entry's payload as a sentence part, not `key=value` (`expiry_day=21500` meant
    /// nothing to the people who read the report).
    static func detail(_ entry: JSON) -> String {
        let payload = payload(entry)
        func words(_ key: String) -> String { payload[key].text.replacingOccurrences(of: "_", with: " ") }
        switch entry["kind"].text {
        case "session_state":
            return "\(words("from")) → \(words("to"))"
        case "armed":
            var text = "by client \(payload["client"].text)"
            if let pid = payload["pid"].string { text += " (process \(pid))" }
            if let depth = payload["depth"].string { text += "; depth \(depth == "measured" ? "measured by the pen's sensor" : depth)" }
            return text
        case "fault", "warning":
            let reason = payload["reason"].string ?? payload["kind"].string ?? ""
            let detail = payload["detail"].string ?? ""
            return [reason.replacingOccurrences(of: "_", with: " "), detail].filter { !$0.isEmpty }.joined(separator: ": ")
        case "cartridge_used", "cartridge_set":
            var parts = [payload["cartridge_id"].text]
            if let lot = payload["lot"].string { parts.append("lot \(lot)") }
            if let day = payload["expiry_day"].string.flatMap(Int.init) ?? payload["expiry_day"].int { parts.append("expires \(Text.day(day))") }
            if let needles = payload["needle_count"].string { parts.append("\(needles) needles") }
            if let diameter = payload["needle_diameter_um"].string { parts.append("\(diameter) µm") }
            return parts.joined(separator: ", ")
        case "session_closed":
            let reason = words("reason")
            return reason == "time limit" ? "at the four-hour limit" : reason == "technician" ? "by the technician" : reason
        case "stop", "disarm", "estop":
            return [payload["reason"].string, payload["source"].string].compactMap { $0?.replacingOccurrences(of: "_", with: " ") }.joined(separator: ", ")
        default:
            return payload.object.filter { $0.key != "session_time_ms" }.sorted { $0.key < $1.key }
                .map { "\($0.key.replacingOccurrences(of: "_", with: " ")) \($0.value.text)" }.joined(separator: "; ")
        }
    }

    // MARK: - The page

    static func h(_ text: String) -> String { SVGPlot.escape(text) }

    /// Text inside a CSS string in a <style> element, where HTML entities mean nothing: every
    /// character but letters, digits, space, '-' and '_' as a CSS escape (`\3c `), so that no id
    /// can end the string, the rule or the element.
    static func cssString(_ text: String) -> String {
        text.unicodeScalars.map { scalar in
            scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || " -_".unicodeScalars.contains(scalar)
                ? String(scalar) : "\\" + String(scalar.value, radix: 16) + " "
        }.joined()
    }

    /// HH:mm:ss of a wall time (the date is the session's, in the summary).
    static func timeOfDay(_ seconds: Int?) -> String { String(Text.date(seconds).suffix(8)) }

    func table(_ header: [String], _ rows: [[String]], empty: String) -> String {
        guard !rows.isEmpty else { return "<p class=\"none\">\(Self.h(empty))</p>" }
        var out = "<table><thead><tr>" + header.map { "<th>\(Self.h($0))</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows { out += "<tr>" + row.map { "<td>\(Self.h($0))</td>" }.joined() + "</tr>" }
        return out + "</tbody></table>"
    }

    func fields(_ pairs: [(String, String)]) -> String {
        "<table class=\"fields\">" + pairs.map { "<tr><th>\(Self.h($0.0))</th><td>\(Self.h($0.1))</td></tr>" }.joined() + "</table>"
    }

    var auditBanner: String {
        let audit = data["audit"]
        if audit["ok"].bool == true {
            return "<div class=\"audit ok\"><strong>Audit chain verified</strong> — \(audit["entries"].text) entries, every link holds (checked when this report was made).</div>"
        }
        return "<div class=\"audit broken\"><strong>Audit chain BROKEN</strong> — \(Self.h(audit["first_broken"].text)) (entry \(audit["broken_seq"].text) of \(audit["entries"].text)). The records after that point cannot be trusted; keep this report and the database, and call the administrator.</div>"
    }

    public var html: String {
        let pen = data["pen"]
        let cartridges = data["cartridges"].array
        let cartridge = cartridges.first
        let layers = Array(Set(data["setpoints"].array.map(\.text).isEmpty ? [] : data["setpoints"].array.map { $0["layer"].text })).sorted()
        let closed = session["closed_at"].int
        let summary: [(String, String)] = [
            ("Client (pseudonymous)", session["client_id"].text),
            ("Technician", session["technician"].text),
            ("Opened", Text.date(session["opened_at"].int)),
            ("Closed", closed.map { "\(Text.date($0)) — \(session["close_reason"].text)" } ?? "still open"),
            ("Session time", "\(Text.clock(ms: session["session_time_ms"].int)) of at most \(Text.clock(ms: (limits["session_length_s"].int ?? 14400) * 1000))"),
            ("Scalp zone", session["zone"].text.replacingOccurrences(of: "_", with: " ")),
            ("Layer", layers.isEmpty ? "no setpoint was set" : layers.map { $0.replacingOccurrences(of: "_", with: " ") }.joined(separator: ", ")),
            ("Pen", "\(session["pen_serial"].text) — firmware \(pen["firmware"].text), protocol \(pen["protocol_version"].text)"),
            ("Cartridge", cartridge.map { c in "\(c["cartridge_id"].text) — lot \(c["lot"].string ?? "-"), expires \(Text.day(c["expiry_day"].int)), \(c["needle_count"].text) × \(c["needle_diameter_um"].text) µm" }
                ?? "\(session["cartridge_id"].text) (not armed with it: no cartridge use recorded)"),
            ("Pigment lots", session["pigment_lots"].text),
            ("State at report", session["phase"].text + (session["faults"].array.isEmpty ? "" : " — faults latched: " + session["faults"].array.map(\.text).joined(separator: ", "))),
        ] + (session["gap_override_reason"].string.map { [("Gap override", $0)] } ?? [])
        let zone = session["zone"].text
        let limitPairs: [(String, String)] = [
            ("Epidermis band", "\(limits["epidermis"]["min_um"].text)–\(limits["epidermis"]["max_um"].text) µm"),
            ("Upper dermis band", "\(limits["upper_dermis"]["min_um"].text)–\(limits["upper_dermis"]["max_um"].text) µm"),
            ("Zone maximum (\(zone.replacingOccurrences(of: "_", with: " ")))", "\(limits["zone_max_um"][zone].text) µm"),
            ("Site ceiling", "\(limits["site_ceiling_um"].text) µm (compiled-in absolute: 2000 µm)"),
            ("Depth tolerance", "\(limits["depth_tolerance_um"].text) µm above the band stops the needle"),
            ("Stroke-rate window", "\(limits["rate_min_hz"].text)–\(limits["rate_max_hz"].text) Hz; stop above 160 Hz or below 40 Hz while running"),
            ("Session length", "\(Text.clock(ms: (limits["session_length_s"].int ?? 0) * 1000)), warnings at \(limits["effective_warnings_s"].array.compactMap(\.int).map { Text.clock(ms: $0 * 1000) }.joined(separator: ", "))"),
            ("Source", data["limits_source"].string == "recorded" ? "recorded when the session opened" : "the daemon's limits now (not recorded at the opening)"),
        ]
        let setpointRows = data["setpoints"].array.map { change in
            [Text.clock(ms: change["session_time_ms"].int), Self.timeOfDay(change["at"].int), change["layer"].text.replacingOccurrences(of: "_", with: " "),
             "\(change["depth_um"].text) µm", Text.rate(change["rate_hz"].double)]
        }
        let timelineKinds: Set<String> = ["armed", "stop", "disarm", "estop", "fault", "warning", "fault_cleared", "session_state", "session_closed", "cartridge_used", "cartridge_set"]
        let stoppedSeqs = Set(stopEntries.compactMap { $0["seq"].int })
        let timeline = events.filter { timelineKinds.contains($0["kind"].text) }.map { entry -> [String] in
            let time = Text.clock(ms: Int(sessionTime(atWall: entry["at"].int ?? 0) * 1000))
            var detail = Self.detail(entry)
            if Self.stopKinds.contains(entry["kind"].text) && !stoppedSeqs.contains(entry["seq"].int ?? -1) {
                detail += (detail.isEmpty ? "" : "; ") + "the needle was not moving"
            }
            return [time, Self.timeOfDay(entry["at"].int), Self.kindName(entry["kind"].text), detail, entry["actor"].text]
        }
        let faultRows = data["faults"].array.map { [Text.clock(ms: Int(sessionTime(atWall: $0["at"].int ?? 0) * 1000)), Self.timeOfDay($0["at"].int), $0["kind"].text, $0["detail"].text] }
        let warningRows = data["warnings"].array.map { [Text.clock(ms: Int(sessionTime(atWall: $0["at"].int ?? 0) * 1000)), Self.timeOfDay($0["at"].int), $0["kind"].text, $0["detail"].text] }
        let stopCount = stopEntries.count
        let faultCount = faultEntries.count
        let telemetryNote = data["telemetry"].array.isEmpty
            ? "<p class=\"none\">No telemetry was recorded for this session (the needle never ran while it was open).</p>"
            : "<p class=\"note\">Per-second aggregates from the daemon's records; grey columns are when the needle ran (pedal down); "
              + "blue lines are the \(stopCount) stop\(stopCount == 1 ? "" : "s") of the needle and red lines the \(faultCount) fault\(faultCount == 1 ? "" : "s") in the timeline below"
              + (tripCallouts.isEmpty ? "" : "; a red ring marks the stroke that tripped") + ".</p>"
        let clockBanner = data["clock"].string == "accelerated"
            ? "<div class=\"audit broken\"><strong>Simulated session</strong> — this session ran on the simulator's accelerated clock (a test rig), not on a real pen: its times are simulated time.</div>"
            : ""
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>Stipple session report \(Self.h(session["id"].text))</title>
            <style>
            @page { size: A4; margin: 14mm 12mm 16mm 12mm;
                    @bottom-left { content: "Stipple session \(Self.cssString(session["id"].text))"; font-size: 8pt; color: #666; }
                    @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 8pt; color: #666; } }
            tr { page-break-inside: avoid; break-inside: avoid; } thead { display: table-header-group; }
            h2 { page-break-after: avoid; break-after: avoid; }
            body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10pt; color: #222; margin: 0 auto; max-width: 960px; }
            h1 { font-size: 17pt; margin: 0 0 2pt 0; } h2 { font-size: 12pt; margin: 14pt 0 4pt 0; border-bottom: 1px solid #ccc; }
            .sub { color: #555; margin-bottom: 8pt; }
            table { border-collapse: collapse; width: 100%; margin: 2pt 0; } th, td { text-align: left; padding: 2pt 6pt; vertical-align: top; }
            thead th { border-bottom: 1px solid #999; background: #f4f4f4; } tbody tr:nth-child(even) { background: #fafafa; }
            table.fields th { width: 32%; font-weight: normal; color: #555; }
            .audit { padding: 6pt 8pt; margin: 6pt 0; border-radius: 3pt; } .ok { background: #e6f4ea; border: 1px solid #2e9d5b; }
            .broken { background: #fdecea; border: 1px solid #c0392b; }
            .cols { display: flex; gap: 16pt; } .cols > div { flex: 1; }
            figure { margin: 6pt 0; page-break-inside: avoid; break-inside: avoid; } .none, .note { color: #555; font-style: italic; }
            footer { margin-top: 14pt; color: #666; font-size: 8.5pt; border-top: 1px solid #ccc; padding-top: 4pt; }
            </style></head><body>
            <h1>Session report — \(Self.h(session["id"].text))</h1>
            <div class="sub">Stipple scalp-micropigmentation controller · made \(Self.h(Text.date(Int(generatedAt.timeIntervalSince1970)))) by stipplectl from the daemon's records</div>
            \(auditBanner)
            \(clockBanner)
            <div class="cols"><div><h2>Session</h2>\(fields(summary))</div><div><h2>Limits in force</h2>\(fields(limitPairs))</div></div>
            <h2>Protrusion depth and stroke rate</h2>
            \(telemetryNote)
            <figure>\(depthPlot())</figure>
            <figure>\(ratePlot())</figure>
            <h2>Setpoint changes</h2>
            \(table(["Session time", "Clock", "Layer", "Protrusion", "Stroke rate"], setpointRows, empty: "No setpoint was set."))
            <h2>Faults</h2>
            \(table(["Session time", "Clock", "Fault", "Detail"], faultRows, empty: "No fault."))
            <h2>Warnings</h2>
            \(table(["Session time", "Clock", "Warning", "Detail"], warningRows, empty: "No warning."))
            <h2>Timeline: arming, stops, state changes</h2>
            \(table(["Session time", "Clock", "What", "Detail", "Who"], timeline, empty: "Nothing recorded."))
            <footer>"Depth" is needle protrusion past the cartridge tip, in micrometres — not tissue depth: the skin compresses, so the needle reaches somewhat less deep than it protrudes. Times are local; session time counts pauses, as the four-hour limit does. Audit chain: \(data["audit"]["ok"].bool == true ? "verified" : "BROKEN") (\(data["audit"]["entries"].text) entries).</footer>
            </body></html>

            """
    }
}
