import StippleRecords
import StippleSafety
import StippleWire

/// Telemetry for people: the per-second aggregate kept in the records and the live events. Not
/// decisions (the core has made those by the time this runs), so it stays in the shell.
extension Supervisor {
    func aggregateTelemetry(_ telemetry: Message.Telemetry, sample: TelemetrySample, at now: MonotonicInstant) {
        guard let session = core.session, core.closeReason == nil else { return }
        let second = session.clock.elapsed(at: now).wholeSeconds
        let id = session.request.sessionID
        if let current = aggregate, current.sessionID != id || current.data.sessionSecond != Int64(second) { flushAggregate() }
        if aggregate == nil { aggregate = (id, TelemetryAggregate(sessionSecond: Int64(second))) }
        aggregate?.data.add(
            depthUm: sample.peakProtrusionUm, rateHz: sample.strokeRateHz,
            currentMa: telemetry.motorCurrentMa == 0xFFFF ? nil : Double(telemetry.motorCurrentMa),
            temperatureC: telemetry.temperatureDc == Int16.min ? nil : Double(telemetry.temperatureDc) / 10)
    }

    func flushAggregate() {
        guard let current = aggregate else { return }
        aggregate = nil
        // Per-second telemetry is not kept for a retry on a full disk (it would grow without
        // bound); faults, stops and the session's state are.
        records?.submit("telemetry", retry: false) { try $0.recordTelemetry(current.data, sessionID: current.sessionID) }
    }

    /// Built by hand, not through `JSONEncoder`: this runs for every frame a stream takes (1 kHz
    /// for an engineer's full-rate stream), on the supervisor's thread. Keys sorted, as every event.
    func publishTelemetry(_ telemetry: Message.Telemetry, sample: TelemetrySample, at now: MonotonicInstant) {
        hub.publishTelemetry {
            Self.telemetryJSON(sample: sample,
                               currentMa: telemetry.motorCurrentMa == 0xFFFF ? nil : Int(telemetry.motorCurrentMa),
                               temperatureC: telemetry.temperatureDc == Int16.min ? nil : Double(telemetry.temperatureDc) / 10,
                               sessionTimeMs: Int64(core.sessionElapsed(at: now).milliseconds))
        }
    }

    static func telemetryJSON(sample: TelemetrySample, currentMa: Int?, temperatureC: Double?, sessionTimeMs: Int64) -> String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return "\(value)"
        }
        let current = currentMa.map { "\($0)" } ?? "null"
        let depth = sample.peakProtrusionUm.map { "\($0)" } ?? "null"
        return #"{"current_ma":\#(current),"depth_um":\#(depth),"motor_on":\#(sample.motorOn),"pedal":\#(sample.pedalPressed),"#
            + #""rate_hz":\#(number(sample.strokeRateHz)),"session_time_ms":\#(sessionTimeMs),"#
            + #""temperature_c":\#(number(temperatureC)),"type":"telemetry"}"#
    }
}
