import ArgumentParser
import Foundation
import StippleClient
import StippleReport

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One screen: pen, link quality, session, state, session time left, latched faults.",
        discussion: "GET /v1/status. With --json, the Status object of docs/openapi.yaml.")

    @OptionGroup var options: GlobalOptions

    func run() throws {
        let reply = try options.client().get("/v1/status")
        options.print(reply) { StatusText.screen($0) }
    }
}

/// The status as text: used by `status`, after each control command, and by `watch`.
enum StatusText {
    static func screen(_ status: JSON) -> String {
        var pairs: [(String, String)] = []
        pairs.append(("pen", pen(status["pen"])))
        if let link = linkQuality(status["pen"]["link"]) { pairs.append(("link", link)) }
        if let cartridge = cartridge(status["pen"]["cartridge"]) { pairs.append(("cartridge", cartridge)) }
        let session = status["session"]
        if session.isNull {
            pairs.append(("session", "none open (`stipplectl session open --client ID --zone ZONE --cartridge ID --pigment-lot LOT`)"))
        } else {
            pairs.append(("session", "\(session["id"].text)  client \(session["client_id"].text)  zone \(session["zone"].text)  cartridge \(session["cartridge_id"].text)"))
            pairs.append(("setpoint", setpoint(session)))
            var time = "\(Text.clock(ms: session["elapsed_ms"].int)) elapsed, \(Text.clock(ms: session["remaining_ms"].int)) left of 4:00:00"
            if let reason = session["close_reason"].string { time += " (closed: \(reason))" }
            pairs.append(("time", time))
        }
        pairs.append(("state", "\(status["phase"].text.uppercased())\(status["may_move"].bool == true ? "  (the needle may move with the pedal)" : "")"))
        let faults = status["faults"].array.map(\.text)
        pairs.append(("faults", faults.isEmpty ? "none" : faults.joined(separator: ", ") + "  (latched: `stipplectl clear-fault` once the cause is gone)"))
        pairs.append(("records", status["records"].text))
        if let clock = status["clock"].string, clock != "real" { pairs.append(("clock", clock)) }
        return Text.fields(pairs)
    }

    static func pen(_ pen: JSON) -> String {
        guard pen["connected"].bool == true else { return "not connected" }
        guard let serial = pen["serial"].string else { return "connected on \(pen["transport"].text), handshake pending" }
        var text = "\(serial)  firmware \(pen["firmware"].text)  protocol \(pen["protocol"].text)  on \(pen["transport"].text)"
        if let refusal = pen["refusal"].string { text += "  REFUSED: \(refusal)" }
        if let state = pen["state"].string { text += "  (pen state \(state))" }
        return text
    }

    /// Link quality in one phrase: frames, and the share rejected or lost.
    static func linkQuality(_ link: JSON) -> String? {
        guard let received = link["frames_received"].int else { return nil }
        let rejected = link["frames_rejected"].int ?? 0
        let lost = link["pen_frames_lost"].int ?? 0
        let total = max(1, received + rejected + lost)
        let bad = Double(rejected + lost) / Double(total) * 100
        let verdict = bad < 0.1 ? "good" : bad < 2 ? "fair" : "poor"
        return String(format: "%@: %d frames, %d rejected, %d lost (%.2f%%), %d retransmitted, %d given up", verdict, received, rejected, lost, bad,
                      link["retransmissions"].int ?? 0, link["commands_given_up"].int ?? 0)
    }

    static func cartridge(_ cartridge: JSON) -> String? {
        guard let id = cartridge["id"].string else { return nil }
        var text = "\(id)  lot \(cartridge["lot"].text.isEmpty ? "-" : cartridge["lot"].text)  \(cartridge["needle_count"].text) × \(cartridge["needle_diameter_um"].text) µm"
        if let expiry = cartridge["expiry_day"].int { text += "  expires \(Text.day(expiry))" }
        return text
    }

    static func setpoint(_ session: JSON) -> String {
        let setpoint = session["setpoint"]
        let trip = session["depth_trip_um"].int.map { " (stops above \($0) µm)" } ?? ""
        guard !setpoint.isNull else { return "none yet (`stipplectl setpoint --layer upper_dermis --depth-um 800 --rate-hz 120`)\(trip)" }
        return "\(setpoint["layer"].text) \(setpoint["depth_um"].text) µm at \(Text.rate(setpoint["rate_hz"].double))\(trip)"
    }

    /// One line after a control command: the state it left.
    static func brief(_ status: JSON) -> String {
        var text = "state \(status["phase"].text)"
        let faults = status["faults"].array.map(\.text)
        if !faults.isEmpty { text += ", faults latched: \(faults.joined(separator: ", "))" }
        if let session = status["session"]["id"].string { text += " (session \(session))" }
        return text
    }
}
