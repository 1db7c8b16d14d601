import Foundation

/// A time-series plot as inline SVG: session time on x, one quantity on y, with horizontal
/// bands and lines (the target band, limits) and vertical markers (stops, faults) drawn in.
/// Plain SVG 1.1 — browsers and WeasyPrint (the PDF) draw it alike.
struct SVGPlot {
    struct Series {
        /// (session seconds, value); nil values break the line.
        var points: [(Double, Double?)]
        var color: String
        var label: String
        var width = 1.5
        /// Draw as steps (a setpoint holds until the next change).
        var steps = false
        var dashed = false
    }
    struct Envelope {
        var points: [(Double, Double, Double)]  // (t, low, high)
        var color: String
        var label: String
    }
    struct Band {
        var from: Double?  // session seconds; nil: the whole plot
        var to: Double?
        var low: Double
        var high: Double
        var color: String
        var label: String
    }
    struct Level {
        var value: Double
        var color: String
        var label: String
        var dashed = true
    }
    struct Marker {
        var at: Double
        var color: String
        var label: String
    }
    /// One reading called out: a ring at (t, value) with its label beside it (the stroke that
    /// tripped, which a per-second aggregate over hours would otherwise hide in a pixel).
    struct Callout {
        var at: Double
        var value: Double
        var color: String
        var label: String
    }

    var title: String
    var unit: String
    var duration: Double
    var yMax: Double
    var yMin: Double = 0
    var bands: [Band] = []
    var levels: [Level] = []
    var envelopes: [Envelope] = []
    var series: [Series] = []
    var markers: [Marker] = []
    var callouts: [Callout] = []
    /// Running periods, shaded lightly (from, to).
    var shaded: [(Double, Double)] = []

    let width = 920.0
    let height = 290.0
    let left = 64.0
    let right = 16.0
    let top = 30.0
    let bottom = 74.0

    var plotWidth: Double { width - left - right }
    var plotHeight: Double { height - top - bottom }

    func x(_ t: Double) -> Double { left + min(max(t, 0), max(duration, 1)) / max(duration, 1) * plotWidth }
    func y(_ v: Double) -> Double { top + plotHeight - (min(max(v, yMin), yMax) - yMin) / (yMax - yMin) * plotHeight }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// A tick step for time that gives 5–10 ticks: seconds up to hours.
    static func timeStep(_ duration: Double) -> Double {
        let steps: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]
        return steps.first { duration / $0 <= 10 } ?? 3600
    }

    static func valueStep(_ span: Double) -> Double {
        let steps: [Double] = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000]
        return steps.first { span / $0 <= 8 } ?? 1000
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    func path(_ points: [(Double, Double?)], steps: Bool) -> String {
        var d = ""
        var pen = false
        var last: Double?
        for (t, value) in points {
            guard let value else {
                pen = false
                continue
            }
            if pen, steps, let last { d += " L\(Self.f(x(t))),\(Self.f(y(last)))" }
            d += "\(pen ? " L" : " M")\(Self.f(x(t))),\(Self.f(y(value)))"
            pen = true
            last = value
        }
        return d
    }

    var svg: String {
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"100%\" role=\"img\" aria-label=\"\(Self.escape(title))\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"11\">\n"
        out += "<text x=\"\(Int(left))\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(Self.escape(title))</text>\n"
        out += "<rect x=\"\(Self.f(left))\" y=\"\(Self.f(top))\" width=\"\(Self.f(plotWidth))\" height=\"\(Self.f(plotHeight))\" fill=\"#ffffff\" stroke=\"#999\"/>\n"
        for (from, to) in shaded {
            out += "<rect x=\"\(Self.f(x(from)))\" y=\"\(Self.f(top))\" width=\"\(Self.f(max(0.5, x(to) - x(from))))\" height=\"\(Self.f(plotHeight))\" fill=\"#f1f1f1\"/>\n"
        }
        for band in bands {
            let x0 = x(band.from ?? 0), x1 = x(band.to ?? duration)
            out += "<rect x=\"\(Self.f(x0))\" y=\"\(Self.f(y(band.high)))\" width=\"\(Self.f(max(0.5, x1 - x0)))\" height=\"\(Self.f(max(0.5, y(band.low) - y(band.high))))\" fill=\"\(band.color)\" fill-opacity=\"0.22\"/>\n"
        }
        // Grid and value axis.
        let valueStep = Self.valueStep(yMax - yMin)
        var value = (yMin / valueStep).rounded(.up) * valueStep
        while value <= yMax + 0.001 {
            out += "<line x1=\"\(Self.f(left))\" x2=\"\(Self.f(left + plotWidth))\" y1=\"\(Self.f(y(value)))\" y2=\"\(Self.f(y(value)))\" stroke=\"#e0e0e0\"/>\n"
            out += "<text x=\"\(Self.f(left - 6))\" y=\"\(Self.f(y(value) + 4))\" text-anchor=\"end\">\(Int(value))</text>\n"
            value += valueStep
        }
        out += "<text x=\"14\" y=\"\(Self.f(top + plotHeight / 2))\" transform=\"rotate(-90 14 \(Self.f(top + plotHeight / 2)))\" text-anchor=\"middle\">\(Self.escape(unit))</text>\n"
        // Time axis.
        let timeStep = Self.timeStep(duration)
        var t = 0.0
        while t <= duration + 0.001 {
            out += "<line x1=\"\(Self.f(x(t)))\" x2=\"\(Self.f(x(t)))\" y1=\"\(Self.f(top + plotHeight))\" y2=\"\(Self.f(top + plotHeight + 4))\" stroke=\"#666\"/>\n"
            out += "<text x=\"\(Self.f(x(t)))\" y=\"\(Self.f(top + plotHeight + 16))\" text-anchor=\"middle\">\(Self.clock(t))</text>\n"
            t += timeStep
        }
        out += "<text x=\"\(Self.f(left + plotWidth / 2))\" y=\"\(Self.f(top + plotHeight + 30))\" text-anchor=\"middle\">session time (h:mm:ss)</text>\n"
        for level in levels {
            out += "<line x1=\"\(Self.f(left))\" x2=\"\(Self.f(left + plotWidth))\" y1=\"\(Self.f(y(level.value)))\" y2=\"\(Self.f(y(level.value)))\" stroke=\"\(level.color)\" stroke-width=\"1.2\"\(level.dashed ? " stroke-dasharray=\"6 4\"" : "")/>\n"
        }
        for envelope in envelopes where !envelope.points.isEmpty {
            // One polygon per unbroken run: the highs forward, the lows back.
            var runs: [[(Double, Double, Double)]] = [[]]
            var previous: Double?
            for point in envelope.points {
                if let previous, point.0 - previous > 2 * max(1, duration / 1000) { runs.append([]) }
                runs[runs.count - 1].append(point)
                previous = point.0
            }
            for run in runs where !run.isEmpty {
                var points = run.map { "\(Self.f(x($0.0))),\(Self.f(y($0.2)))" }
                points += run.reversed().map { "\(Self.f(x($0.0))),\(Self.f(y($0.1)))" }
                if run.count == 1 { points = ["\(Self.f(x(run[0].0) - 1)),\(Self.f(y(run[0].2)))", "\(Self.f(x(run[0].0) + 1)),\(Self.f(y(run[0].2)))", "\(Self.f(x(run[0].0) + 1)),\(Self.f(y(run[0].1)))", "\(Self.f(x(run[0].0) - 1)),\(Self.f(y(run[0].1)))"] }
                out += "<polygon points=\"\(points.joined(separator: " "))\" fill=\"\(envelope.color)\" fill-opacity=\"0.35\" stroke=\"none\"/>\n"
            }
        }
        for series in series {
            let d = path(series.points, steps: series.steps)
            guard !d.isEmpty else { continue }
            out += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(series.color)\" stroke-width=\"\(series.width)\"\(series.dashed ? " stroke-dasharray=\"4 3\"" : "") stroke-linejoin=\"round\"/>\n"
        }
        for marker in markers {
            out += "<line x1=\"\(Self.f(x(marker.at)))\" x2=\"\(Self.f(x(marker.at)))\" y1=\"\(Self.f(top))\" y2=\"\(Self.f(top + plotHeight))\" stroke=\"\(marker.color)\" stroke-width=\"1.5\"/>\n"
            out += "<title>\(Self.escape(marker.label))</title>\n"
        }
        for callout in callouts {
            let cx = x(callout.at), cy = y(callout.value)
            let anchorEnd = cx > left + plotWidth * 0.7
            out += "<circle cx=\"\(Self.f(cx))\" cy=\"\(Self.f(cy))\" r=\"5\" fill=\"none\" stroke=\"\(callout.color)\" stroke-width=\"2\"/>\n"
            out += "<text x=\"\(Self.f(anchorEnd ? cx - 8 : cx + 8))\" y=\"\(Self.f(max(top + 10, cy - 6)))\" text-anchor=\"\(anchorEnd ? "end" : "start")\" fill=\"\(callout.color)\" font-weight=\"bold\">\(Self.escape(callout.label))</text>\n"
        }
        // Legend, under the axis label.
        var legendX = left
        var legendY = top + plotHeight + 46
        func legend(_ color: String, _ label: String, swatch: String) {
            let itemWidth = 28 + Double(label.count) * 6.2
            if legendX + itemWidth > width - right {
                legendX = left
                legendY += 14
            }
            out += swatch.replacingOccurrences(of: "X", with: Self.f(legendX)).replacingOccurrences(of: "Y", with: Self.f(legendY)).replacingOccurrences(of: "C", with: color)
            out += "<text x=\"\(Self.f(legendX + 20))\" y=\"\(Self.f(legendY + 4))\">\(Self.escape(label))</text>\n"
            legendX += itemWidth
        }
        let box = "<rect x=\"X\" y=\"Y\" transform=\"translate(0,-5)\" width=\"14\" height=\"10\" fill=\"C\" fill-opacity=\"0.35\"/>\n"
        let line = "<rect x=\"X\" y=\"Y\" transform=\"translate(0,-1)\" width=\"14\" height=\"2.5\" fill=\"C\"/>\n"
        var seen: Set<String> = []
        for band in bands where seen.insert(band.label).inserted { legend(band.color, band.label, swatch: box) }
        for envelope in envelopes { legend(envelope.color, envelope.label, swatch: box) }
        for series in series { legend(series.color, series.label, swatch: line) }
        for level in levels { legend(level.color, level.label, swatch: line) }
        var markerKinds: Set<String> = []
        for marker in markers where markerKinds.insert(marker.color).inserted {
            legend(marker.color, marker.color == Report.faultColor ? "fault" : "stop", swatch: line)
        }
        out += "</svg>\n"
        return out
    }
}
