import Foundation
import StippleAPI
@testable import StippleDaemon
import StippleSafety
import Testing

/// The events the daemon really sends decode as docs/openapi.yaml's `Event` — through the types
/// generated from it, the same ones a client built on `StippleAPI` decodes with. A session runs
/// on the simulated pen, trips, is cleared and closed; every line the hub sends in that time is
/// decoded.
@Suite("Events against the generated contract")
struct EventContractTests {
    @Test("every event of a session that runs and trips decodes as a generated Event of its type")
    func eventsDecode() async throws {
        let rig = try await DaemonRig()
        let subscription = rig.supervisor.hub.subscribe(fullRate: true)
        let collected = Task { () -> [String] in
            var lines: [String] = []
            for await batch in subscription { lines.append(batch) }
            return lines
        }
        try await rig.startRunning()
        rig.pen.withPen { $0.inject(.overDepth(extraUm: 300, strokes: 1)) }
        await rig.run(for: .milliseconds(300))
        rig.pen.withPen { $0.setPedal(false) }
        _ = try? await rig.supervisor.closeSession(actor: "test")
        await rig.run(for: .milliseconds(100))
        subscription.end()
        let text = await collected.value.joined()

        var kinds: [String: Int] = [:]
        let decoder = JSONDecoder()
        for block in text.components(separatedBy: "\n\n") where !block.isEmpty {
            let lines = block.split(separator: "\n")
            guard let name = lines.first(where: { $0.hasPrefix("event: ") })?.dropFirst(7),
                  let data = lines.first(where: { $0.hasPrefix("data: ") })?.dropFirst(6) else { continue }
            do {
                let event = try decoder.decode(Components.Schemas.Event.self, from: Data(data.utf8))
                #expect(Self.type(of: event) == String(name), "\(name): \(data)")
                kinds[String(name), default: 0] += 1
            } catch {
                Issue.record("\(name) does not decode as the spec's Event: \(error)\n\(data)")
            }
        }
        for kind in ["state", "fault", "telemetry", "session"] {
            #expect(kinds[kind, default: 0] > 0, "no \(kind) event was seen: \(kinds)")
        }
        await rig.supervisor.shutdown()
    }

    static func type(of event: Components.Schemas.Event) -> String {
        switch event {
        case .status: "status"
        case .state: "state"
        case .fault: "fault"
        case .warning: "warning"
        case .telemetry: "telemetry"
        case .pen: "pen"
        case .session: "session"
        case .link: "link"
        }
    }
}
