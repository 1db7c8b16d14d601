import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import StippleAPI
import StippleClient
@testable import StippleDaemon
import StippleSafety
import StippleSupervision
import Testing

/// `/v1/sim` in process: the simulated pen driven from outside, through the generated client,
/// on the rig's own `SimPenService` — the pedal runs the needle only through the daemon's rules,
/// a fault injected is seen by the daemon as from a real pen, and nothing of it exists with a
/// real pen or for a technician.
@Suite("/v1/sim, in process")
struct SimRoutesTests {
    @Test("with a real pen every /v1/sim path is 404 not_simulated, whoever asks; with the simulator, technicians get 403")
    func refusals() async throws {
        let rig = try await DaemonRig()
        for simulated in [false, true] {
            try await RouteTests.application(rig, simulated: simulated).test(.router) { client in
                for (method, path) in SimRoutes.table {
                    for role in ["technician", "engineer"] where !(simulated && role == "engineer") {
                        try await client.execute(uri: path, method: HTTPRequest.Method(method)!, headers: RouteTests.headers(role, json: true),
                                                 body: RouteTests.body(#"{"pressed": true}"#)) { response in
                            let expected = simulated ? "engineers_only" : "not_simulated"
                            #expect(RouteTests.code(response) == expected, "\(method) \(path) as \(role), simulated \(simulated)")
                            #expect(response.status == (simulated ? .forbidden : .notFound))
                        }
                    }
                }
            }
        }
        await rig.supervisor.shutdown()
    }

    @Test("the pedal pressed from outside runs an armed pen; a fault injected from outside stops it and latches")
    func pedalAndFault() async throws {
        let rig = try await DaemonRig()
        try await RouteTests.application(rig, simulated: true).test(.router) { test in
            let sim = GeneratedClientTests.client(test, role: "engineer")
            let idle = try await sim.getSimulatedPen().ok.body.json
            #expect(!idle.pedalPressed && !idle.motorOn && idle.cartridge?.id == "SIM-CART-0001")

            // Not armed: the pedal alone moves nothing.
            #expect(try await sim.simPedal(body: .json(.init(pressed: true))).ok.body.json.pedalPressed)
            await rig.run(for: .milliseconds(300))
            #expect(!rig.pen.withPen { $0.motorDriven })
            _ = try await sim.simPedal(body: .json(.init(pressed: false)))

            _ = try await rig.supervisor.openSession(
                SessionRequest(sessionID: "", clientID: "C-SIM", technician: "ana", zone: .crown, cartridgeID: "SIM-CART-0001",
                               pigmentLots: ["P-1"], penSerial: "", gapOverrideReason: nil), actor: "test")
            _ = try await rig.supervisor.setSetpoint(.init(layer: .upperDermis, depthUm: 800, rateHz: 120), actor: "test")
            await rig.run(for: .milliseconds(200))
            _ = await rig.supervisor.presenceOpened(DaemonRig.holder)
            try await rig.arm()
            _ = try await sim.simPedal(body: .json(.init(pressed: true)))
            await rig.run(for: .milliseconds(600))
            #expect(try await sim.getSimulatedPen().ok.body.json.motorOn)
            #expect(await rig.phase == "running")

            let injected = try await sim.simFault(body: .json(.init(fault: "over_depth", additionalProperties: ["extra_um": .case1(500)])))
            _ = try injected.ok
            await rig.run(for: .milliseconds(300))
            #expect(!rig.pen.withPen { $0.motorDriven })
            #expect(await rig.phase == "faulted")
            #expect(await rig.faults.contains("over_depth"))
        }
        await rig.supervisor.shutdown()
    }

    @Test("a bad fault or cartridge is refused with the field named and what it allows; nothing reaches the pen")
    func badInput() async throws {
        let rig = try await DaemonRig()
        try await RouteTests.application(rig, simulated: true).test(.router) { client in
            let engineer = RouteTests.headers("engineer", json: true)
            let cases: [(String, String, HTTPResponse.Status, String, String)] = [
                ("/v1/sim/fault", #"{"fault": "dragons"}"#, .unprocessableContent, "bad_field", "unknown fault 'dragons'"),
                ("/v1/sim/fault", #"{"fault": "over_depth", "extr_um": 3}"#, .unprocessableContent, "bad_field", "extr_um"),
                ("/v1/sim/fault", #"{"fault": "over_depth", "extra_um": "deep"}"#, .unprocessableContent, "bad_field", "extra_um"),
                ("/v1/sim/fault", #"{"fault": "over_depth", "extra_um": null}"#, .badRequest, "bad_field", "null"),
                ("/v1/sim/fault", #"{"fault": 5}"#, .badRequest, "bad_field", "fault"),
                ("/v1/sim/fault", #"{"fault": "stall", "fault": "over_depth"}"#, .badRequest, "bad_field", "given twice"),
                ("/v1/sim/pedal", #"{"pressed": 1}"#, .badRequest, "bad_field", "true or false"),
                // Values no pen could report are refused by name before they reach the model
                // (which runs inside the daemon): each of these trapped it once.
                ("/v1/sim/fault", #"{"fault": "over_temperature", "dc": 3000000000}"#, .unprocessableContent, "bad_field", "dc"),
                ("/v1/sim/fault", #"{"fault": "over_current", "ma": 9223372036854775807}"#, .unprocessableContent, "bad_field", "ma"),
                ("/v1/sim/fault", #"{"fault": "rate_runaway", "hz": 1e300}"#, .unprocessableContent, "bad_field", "hz"),
                ("/v1/sim/fault", #"{"fault": "rate_runaway", "hz": -1e300}"#, .unprocessableContent, "bad_field", "hz"),
                ("/v1/sim/fault", #"{"fault": "over_depth", "extra_um": 3000000000}"#, .unprocessableContent, "bad_field", "extra_um"),
                ("/v1/sim/fault", #"{"fault": "depth_sensor_stuck", "value_um": 3000000000}"#, .unprocessableContent, "bad_field", "value_um"),
                ("/v1/sim/fault", #"{"fault": "depth_drift", "um_per_s": 1e308}"#, .unprocessableContent, "bad_field", "um_per_s"),
                ("/v1/sim/fault", #"{"fault": "garbage_burst", "count": 1000000}"#, .unprocessableContent, "bad_field", "count"),
                ("/v1/sim/fault", #"{"fault": "over_depth", "extra_um": [1]}"#, .badRequest, "bad_field", "extra_um"),
                ("/v1/sim/pedal", #"{}"#, .badRequest, "bad_field", "pressed"),
                ("/v1/sim/pedal", #"{"pressed": true, "hard": true}"#, .badRequest, "unknown_field", "hard"),
            ]
            for (path, body, status, code, mention) in cases {
                try await client.execute(uri: path, method: .post, headers: engineer, body: RouteTests.body(body)) { response in
                    #expect(response.status == status && RouteTests.code(response) == code, "\(path) \(body): \(String(buffer: response.body))")
                    #expect(String(buffer: response.body).contains(mention), "\(path) \(body): \(String(buffer: response.body))")
                }
            }
            // The field a problem names is the key at fault, not the object.
            try await client.execute(uri: "/v1/sim/fault", method: .post, headers: engineer,
                                     body: RouteTests.body(#"{"fault": "over_depth", "extr_um": 3}"#)) { response in
                #expect(String(buffer: response.body).contains(#""field":"extr_um""#), "\(String(buffer: response.body))")
            }
            for (body, field) in [(#"{"id": ""}"#, "id"), (#"{"id": "ÉTOILE"}"#, "id"), (#"{"id": "SIM-CART-0002-TOO-LONG"}"#, "id"),
                                  (#"{"id": "C", "needle_count": 65}"#, "needle_count"), (#"{"id": "C", "lot": "L\u0007"}"#, "lot"),
                                  (#"{"id": "C", "expiry_days": -1}"#, "expiry_days"), (#"{"id": "C", "colour": "red"}"#, "colour")] {
                try await client.execute(uri: "/v1/sim/cartridge", method: .put, headers: engineer, body: RouteTests.body(body)) { response in
                    #expect([.badRequest, .unprocessableContent].contains(response.status), "\(body)")
                    #expect(String(buffer: response.body).contains(field), "\(body): \(String(buffer: response.body))")
                }
            }
            #expect(rig.pen.withPen { $0.cartridge?.id } == "SIM-CART-0001" && rig.pen.withPen { $0.latchedFault } == .none)
        }
        await rig.supervisor.shutdown()
    }

    @Test("a cartridge put in and taken out: the daemon reads what the chip says")
    func cartridge() async throws {
        let rig = try await DaemonRig()
        try await RouteTests.application(rig, simulated: true).test(.router) { test in
            let sim = GeneratedClientTests.client(test, role: "engineer")
            let inserted = try await sim.simInsertCartridge(body: .json(.init(id: "SIM-CART-0042", needleCount: 3, lot: "L-42"))).ok.body.json
            #expect(inserted.cartridge?.id == "SIM-CART-0042" && inserted.cartridge?.lot == "L-42")
            await rig.run(for: .milliseconds(500))
            #expect(await rig.supervisor.status().pen.cartridge?.id == "SIM-CART-0042")
            let removed = try await sim.simRemoveCartridge().ok.body.json
            #expect(removed.cartridge == nil)
        }
        await rig.supervisor.shutdown()
    }
}
