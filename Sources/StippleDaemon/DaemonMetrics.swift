import CoreMetrics
import StippleLink

/// The daemon's metrics, through swift-metrics: the composition root decides where they go
/// (a Prometheus registry served at `/metrics`, docs/deploy.md). Without a backend they cost
/// nothing (swift-metrics' no-op handlers).
struct DaemonMetrics {
    let framesReceived = Counter(label: "stipple_pen_frames_received_total")
    let penFramesLost = Counter(label: "stipple_pen_frames_lost_total")
    let retransmissions = Counter(label: "stipple_link_retransmissions_total")
    let commandsGivenUp = Counter(label: "stipple_link_commands_given_up_total")
    let linksOpened = Counter(label: "stipple_links_opened_total")
    /// From a pen frame read to its stop frame written: the stop path, end to end.
    let stopReaction = Timer(label: "stipple_stop_reaction_seconds", preferredDisplayUnit: .microseconds)
    let sessionTime = Gauge(label: "stipple_session_time_seconds")
    let mayMove = Gauge(label: "stipple_needle_may_move")
    private var rejections: [String: Counter] = [:]
    private var faults: [String: Counter] = [:]
    private var last = HostLink.Statistics()

    /// The stop path's latency. A metric must never take the process down: the Prometheus
    /// histogram of durations traps on a negative value when it renders, so an interval is kept
    /// within 0...1 h whatever the clocks did (a simulated pen's frame times can run ahead of the
    /// real clock).
    func recordStopReaction(_ reaction: Duration) {
        stopReaction.recordNanoseconds(Self.clamped(reaction).totalNanoseconds)
    }

    static func clamped(_ duration: Duration) -> Duration { min(max(duration, .zero), .seconds(3600)) }

    mutating func rejected(reason: String) {
        if rejections[reason] == nil { rejections[reason] = Counter(label: "stipple_pen_frames_rejected_total", dimensions: [("reason", reason)]) }
        rejections[reason]?.increment()
    }

    mutating func fault(_ code: String) {
        if faults[code] == nil { faults[code] = Counter(label: "stipple_faults_total", dimensions: [("code", code)]) }
        faults[code]?.increment()
    }

    /// Folds a link's cumulative counters in (a new link starts again from zero).
    mutating func link(_ statistics: HostLink.Statistics) {
        if statistics.framesReceived < last.framesReceived || statistics.commandsSent < last.commandsSent { last = HostLink.Statistics() }
        func delta(_ now: Int, _ before: Int) -> Int64 { Int64(max(0, now - before)) }
        framesReceived.increment(by: delta(statistics.framesReceived, last.framesReceived))
        penFramesLost.increment(by: delta(statistics.penFramesLost, last.penFramesLost))
        retransmissions.increment(by: delta(statistics.retransmissions, last.retransmissions))
        commandsGivenUp.increment(by: delta(statistics.commandsGivenUp, last.commandsGivenUp))
        last = statistics
    }
}

/// API requests by method, route and status (the route template, never a session id).
struct APIMetrics: Sendable {
    static func count(method: String, route: String, status: Int) {
        Counter(label: "stipple_api_requests_total", dimensions: [("method", method), ("route", route), ("status", String(status))]).increment()
    }
}
