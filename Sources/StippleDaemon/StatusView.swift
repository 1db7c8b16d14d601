import StippleLink
import StippleSafety
import StippleWire

/// The one-screen answer of `GET /v1/status` (docs/openapi.yaml `Status`).
public struct StatusView: Codable, Sendable {
    public struct Pen: Codable, Sendable {
        public var connected: Bool
        public var transport: String?
        public var serial: String?
        public var firmware: String?
        public var protocolVersion: String?
        public var refusal: String?
        public var state: String?
        public var depthSensor: Bool?
        public var cartridgeReader: Bool?
        public var cartridge: Cartridge?
        public var limitsCRC: String?
        public var link: Link?

        enum CodingKeys: String, CodingKey {
            case connected, transport, serial, firmware, protocolVersion = "protocol", refusal, state
            case depthSensor = "depth_sensor", cartridgeReader = "cartridge_reader", cartridge, limitsCRC = "limits_crc", link
        }
    }

    public struct Cartridge: Codable, Sendable {
        public var id: String
        public var lot: String
        public var needleCount: Int
        public var needleDiameterUm: Int
        public var expiryDay: Int?

        enum CodingKeys: String, CodingKey {
            case id, lot, needleCount = "needle_count", needleDiameterUm = "needle_diameter_um", expiryDay = "expiry_day"
        }
    }

    public struct Link: Codable, Sendable {
        public var framesReceived: Int
        public var framesRejected: Int
        public var penFramesLost: Int
        public var retransmissions: Int
        public var commandsGivenUp: Int

        enum CodingKeys: String, CodingKey {
            case framesReceived = "frames_received", framesRejected = "frames_rejected", penFramesLost = "pen_frames_lost"
            case retransmissions, commandsGivenUp = "commands_given_up"
        }
    }

    public struct Session: Codable, Sendable {
        public var id: String
        public var clientID: String
        public var zone: String
        public var penSerial: String
        public var cartridgeID: String
        public var setpoint: SetpointView?
        public var elapsedMs: Int64
        public var remainingMs: Int64
        public var closeReason: String?
        public var depthTripUm: Int

        enum CodingKeys: String, CodingKey {
            case id, clientID = "client_id", zone, penSerial = "pen_serial", cartridgeID = "cartridge_id", setpoint
            case elapsedMs = "elapsed_ms", remainingMs = "remaining_ms", closeReason = "close_reason", depthTripUm = "depth_trip_um"
        }
    }

    public struct SetpointView: Codable, Sendable {
        public var layer: String
        public var depthUm: Int
        public var rateHz: Double

        enum CodingKeys: String, CodingKey { case layer, depthUm = "depth_um", rateHz = "rate_hz" }
    }

    public var phase: String
    public var faults: [String]
    public var session: Session?
    public var pen: Pen
    public var records: String
    public var clock: String

    public var mayMove: Bool

    enum CodingKeys: String, CodingKey { case phase, faults, session, pen, records, clock, mayMove = "may_move" }
}

extension Supervisor {
    public func status() -> StatusView {
        let now = stamp()
        let session = core.session.map { session in
            StatusView.Session(
                id: session.request.sessionID, clientID: session.request.clientID, zone: session.request.zone.rawValue,
                penSerial: session.request.penSerial, cartridgeID: session.cartridgeID,
                setpoint: session.setpoint.map { StatusView.SetpointView(layer: $0.layer.rawValue, depthUm: $0.depthUm, rateHz: $0.rateHz) },
                elapsedMs: core.sessionElapsed(at: now).milliseconds, remainingMs: core.sessionRemaining(at: now).milliseconds,
                closeReason: core.closeReason?.rawValue, depthTripUm: core.depthTripUm)
        }
        let stats = link?.statistics
        let penView = StatusView.Pen(
            connected: transport != nil, transport: transport?.description, serial: pen.identity?.serial, firmware: pen.firmware,
            protocolVersion: pen.identity.map { "\($0.protocolMajor).\($0.protocolMinor)" }, refusal: pen.versionRefusal,
            state: pen.status.map { "\($0.state)" }, depthSensor: pen.capabilities.map { $0.contains(.depthSensor) },
            cartridgeReader: pen.capabilities.map { $0.contains(.cartridgeReader) },
            cartridge: pen.cartridge.map { StatusView.Cartridge(id: $0.id, lot: $0.lot, needleCount: $0.needleCount, needleDiameterUm: $0.needleDiameterUm, expiryDay: $0.expiryDay) },
            limitsCRC: pen.readBackLimitsCRC.map { "0x" + String($0, radix: 16) },
            link: stats.map { StatusView.Link(framesReceived: $0.framesReceived, framesRejected: $0.framesRejected, penFramesLost: $0.penFramesLost,
                                              retransmissions: $0.retransmissions, commandsGivenUp: $0.commandsGivenUp) })
        let problems = recordsProblems
        let unwritable = records?.unwritableReason
        return StatusView(
            phase: core.phase.rawValue, faults: core.faults.map(\.rawValue), session: session, pen: penView,
            records: records == nil ? "unavailable: \(problems.joined(separator: "; "))"
                : !problems.isEmpty ? "damaged: \(problems.joined(separator: "; "))"
                : unwritable.map { "unwritable: \($0)" } ?? (recordsInconsistencies.isEmpty ? "ok" : "inconsistent: \(recordsInconsistencies.joined(separator: "; "))"),
            clock: clock.description, mayMove: core.mayMove)
    }
}
