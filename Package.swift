// swift-tools-version: 6.2
import PackageDescription

// Every target of ours builds in the Swift 6 language mode (strict concurrency) and treats
// warnings as errors; dependencies keep their own settings.
let strictSwift: [SwiftSetting] = [.treatAllWarnings(as: .error)]
let strictC: [CSetting] = [.enableWarning("all"), .enableWarning("extra"), .treatAllWarnings(as: .error)]

let package = Package(
    name: "Stipple",
    products: [
        .library(name: "StippleWire", targets: ["StippleWire"]),
        // The firmware's C codec, for host tools that want the pen's own decoder (and for
        // Benchmarks/, which holds the Swift codec to it on the same stream).
        .library(name: "StippleWireC", targets: ["StippleWireC"]),
        .library(name: "StippleSafety", targets: ["StippleSafety"]),
        .executable(name: "stipplectl", targets: ["stipplectl"]),
        .executable(name: "stipple-sim", targets: ["stipple-sim"]),
        .executable(name: "stippled", targets: ["stippled"]),
        .library(name: "StippleSim", targets: ["StippleSim"]),
        // The local API's client library: the generated client of docs/openapi.yaml over the Unix
        // socket, and the HTTP/1.1 and event-stream client beneath it (stipplectl, the benchmarks).
        .library(name: "StippleClient", targets: ["StippleClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // Pen protocol v1 codec: sans-I/O, no Foundation. Messages.generated.swift comes from
        // Firmware-protocol/messages.json via Firmware-protocol/tools/gen_code.py.
        .target(name: "StippleWire", swiftSettings: strictSwift),
        // The safety core: pure decisions about whether the needle may move (docs/safety.md).
        .target(name: "StippleSafety", dependencies: ["StippleWire"], swiftSettings: strictSwift),
        // The host side of the pen protocol: handshake, stop-and-wait, retransmission, preempting
        // stops, heartbeat, and the conversions between wire units and the core's. Pure, sans-I/O.
        .target(name: "StippleLink", dependencies: ["StippleWire", "StippleSafety"], swiftSettings: strictSwift),
        // The I/O edge to a pen: serial ports and ptys behind `PenTransport` (and the seam for GPIO).
        .target(name: "CStippleSys", cSettings: strictC),
        .target(
            name: "StippleTransport",
            dependencies: ["StippleWire", "CStippleSys", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strictSwift
        ),
        // libudev and libgpiod as Debian 12 ships them (libudev-dev, libgpiod-dev 1.6: the v1 API).
        .systemLibrary(name: "CUDev", pkgConfig: "libudev", providers: [.apt(["libudev-dev"])]),
        .systemLibrary(name: "CGPIOD", pkgConfig: "libgpiod", providers: [.apt(["libgpiod-dev"])]),
        // Pen discovery and hotplug: tty devices from libudev matched against the pen table;
        // hotplug events behind a seam (recorded `udevadm monitor` sequences in tests).
        .target(name: "StippleDiscovery", dependencies: ["CUDev", "StippleTransport"], swiftSettings: strictSwift),
        // GPIO pens over libgpiod: the line seam, the pen firmware core over six lines, and the
        // `PenLink` the supervisor drives them through.
        .target(
            name: "StippleGPIO",
            dependencies: ["CGPIOD", "StippleWire", "StippleSafety", "StippleLink", "StippleTransport", "StipplePenFirmware", "StippleWireC"],
            swiftSettings: strictSwift
        ),
        // Durable records: sessions, cartridges, telemetry aggregates, faults and the
        // hash-chained audit log, in SQLite through GRDB.
        .target(
            name: "StippleRecords",
            dependencies: ["StippleSafety", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSwift
        ),
        // The strict reader of the API's request bodies and its problem documents (Foundation
        // only): the routes and the JSON fuzzer (Tests/Fuzz) run the same code.
        .target(name: "StippleRequests", swiftSettings: strictSwift),
        // The local API's contract as Swift types, generated at build time from docs/openapi.yaml
        // (symlinked into the target) by swift-openapi-generator: the problem codes, the
        // arming-check codes and every schema. The daemon and stipplectl use these, so the spec and
        // the code cannot disagree without the build failing.
        .target(
            name: "StippleAPI",
            dependencies: [.product(name: "OpenAPIRuntime", package: "swift-openapi-runtime")],
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // The local API's client: the generated `Client` of docs/openapi.yaml (its types from
        // StippleAPI) on a Unix-socket transport, every answer read strictly; and the raw
        // HTTP/1.1 and event-stream reading beneath it, which stipplectl and the benchmarks use.
        .target(
            name: "StippleClient",
            dependencies: [
                "StippleAPI", "StippleRequests", "StippleTransport",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSwift,
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // The supervisor's decisions as a pure value (`SupervisorCore`): pen events, API commands,
        // ticks, presence and record outcomes in, effects out. No I/O, no clock, no Logging: the
        // daemon's `Supervisor` actor is the shell that carries the effects out.
        .target(
            name: "StippleSupervision",
            dependencies: ["StippleWire", "StippleSafety", "StippleLink", "StippleAPI"],
            swiftSettings: strictSwift
        ),
        // The daemon: the supervisor (the one owner of the safety core and the link), the local
        // API, configuration. No dependency on the simulator.
        .target(
            name: "StippleDaemon",
            dependencies: [
                "StippleWire", "StippleSafety", "StippleLink", "StippleTransport", "StippleRecords", "CStippleSys",
                "StippleDiscovery", "StippleGPIO", "StippleRequests", "StippleAPI", "StippleSupervision", "StippleReport", "StippleClient",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSwift
        ),
        // The clinic's records on PostgreSQL (docs/fleet.md): the claims that span workstations
        // (gap rule, single-use cartridges) made before a session opens, and the audit chain
        // shipped as the outbox. Above the daemon: the supervisor sees only `ClinicClaims`.
        .target(
            name: "StippleClinic",
            dependencies: [
                "StippleClinicDatabase", "StippleDaemon", "StippleRecords", "StippleSafety",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSwift
        ),
        // The clinic database's schema and connection file, shared by the daemon and by
        // `stipplectl clinic` (which reads the clinic's views with the user's own credentials).
        .target(
            name: "StippleClinicDatabase",
            dependencies: [
                "StippleSafety",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSwift
        ),
        // The simulated pen as the daemon's `sim` backend: `SimPenService` steps the simulator and
        // the supervisor together (scenario steps at their times). A module of its own so that the
        // daemon's libraries never depend on the simulator, and the tests' rig runs this same loop.
        .target(
            name: "StippleSimBackend",
            dependencies: [
                "StippleAPI", "StippleDaemon", "StippleRequests", "StippleSafety", "StippleSim", "StippleTransport", "StippleWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        // The composition root: flags and config, the pen backend (serial, or the simulator as
        // its `sim` backend), services.
        .executableTarget(
            name: "stippled",
            dependencies: [
                "StippleDaemon", "StippleClinic", "StippleClinicDatabase", "StippleSim", "StippleSimBackend", "StippleTransport", "StippleRecords", "StippleRequests", "StippleSafety", "StippleWire",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        // The portable C99 codec for pen firmware, built here so tests and benchmarks can hold
        // it against the Swift codec in the same process.
        .target(
            name: "StippleWireC",
            path: "Firmware-protocol/c",
            exclude: ["test", "README.md"],
            publicHeadersPath: "include",
            cSettings: strictC
        ),
        // The pen firmware core: the pen's rules written once in portable C99 (no heap, no
        // floating point), run by pen microcontrollers, by the simulator through its HAL, and by
        // the host port on a pty (Firmware-protocol/firmware/README.md).
        .target(
            name: "StipplePenFirmware",
            dependencies: ["StippleWireC"],
            path: "Firmware-protocol/firmware",
            exclude: ["test", "README.md", "ports"],
            publicHeadersPath: "include",
            cSettings: strictC
        ),
        // The pen simulator: the physics in Swift around the firmware core, faults, scenarios
        // (HardwareSim/).
        .target(name: "CPty", path: "HardwareSim/Sources/CPty", cSettings: strictC),
        // The protocol conformance suite: any PenTransport, a real pen or the simulator. A module
        // of its own, so that stipplectl holds a real pen to it without linking the simulator.
        .target(name: "StippleConformance", dependencies: ["StippleLink", "StippleTransport", "StippleWire"], swiftSettings: strictSwift),
        .target(
            name: "StippleSim",
            dependencies: ["StippleWire", "StippleLink", "CPty", "StippleTransport", "StippleConformance", "StippleRequests",
                           "StipplePenFirmware", "StippleWireC"],
            path: "HardwareSim/Sources/StippleSim",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "stipple-sim",
            dependencies: [
                "StippleSim",
                "StippleConformance",
                "StippleTransport",
                "StippleWire",
                "CStippleSys",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "HardwareSim/Sources/stipple-sim",
            swiftSettings: strictSwift
        ),
        // stipplectl's commands, in a library so tests can parse and run them in-process; the
        // executable only calls `StippleCtl.main()`. The simulator's conformance suite is
        // `selftest`.
        // The session report as one self-contained HTML page, from the daemon's report JSON: the
        // same renderer for `stipplectl session report` and the daemon's own HTML answer (the
        // console's History), so the two are the same page.
        .target(
            name: "StippleReport",
            dependencies: ["StippleClient"],
            swiftSettings: strictSwift
        ),
        // `stipplectl console`'s bridge: HTTP on 127.0.0.1, as the logged-in user, to the daemon's
        // Unix socket, with the checks that keep other users and other web pages out.
        .target(
            name: "StippleConsoleBridge",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "StippleCtlCommands",
            dependencies: [
                "StippleAPI", "StippleClient", "StippleRequests", "StippleConsoleBridge", "StippleReport",
                "StippleWire", "StippleSafety", "StippleLink", "StippleTransport", "StippleConformance", "StippleDiscovery",
                "StippleClinicDatabase",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift
        ),
        // The clinic benchmark's workload (Benchmarks/clinic/clinic_bench.py runs it): the daemon's
        // own claims and shipper against one PostgreSQL, many workstations in one process.
        .executableTarget(
            name: "stipple-clinic-bench",
            dependencies: [
                "StippleClinic", "StippleClinicDatabase", "StippleDaemon", "StippleRecords",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/clinic/Sources",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "stipplectl",
            dependencies: ["StippleCtlCommands"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StippleWireTests",
            dependencies: [
                "StippleWire",
                "StippleWireC",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StippleSafetyTests",
            dependencies: [
                "StippleSafety",
                "StippleWire",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StippleLinkTests",
            dependencies: ["StippleLink", "StippleWire", "StippleSafety", "StippleSim"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StippleDaemonTests",
            dependencies: ["StippleDaemon", "StippleRecords", "StippleTransport", "StippleLink", "StippleSafety", "StippleWire", "StippleSim",
                           "StippleGPIO", "StippleDiscovery", "StippleAPI", "StippleClient", "StippleRequests", "StippleSupervision", "StippleSimBackend",
                           "StippleClinicDatabase",
                           .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "PropertyBased", package: "swift-property-based"),
                           .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StippleDiscoveryTests",
            dependencies: ["StippleDiscovery", "StippleTransport"],
            exclude: ["recordings"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StippleGPIOTests",
            dependencies: ["StippleGPIO", "StippleLink", "StippleWire", "StippleSafety"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StippleCtlTests",
            dependencies: ["StippleCtlCommands", "StippleClient", "StippleDaemon", "StippleSafety", "StippleWire", "StippleConsoleBridge", "StippleReport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StippleSimTests",
            dependencies: ["StippleSim", "StippleConformance", "StippleTransport", "StippleWire"],
            path: "HardwareSim/Tests/StippleSimTests",
            swiftSettings: strictSwift
        ),
    ],
    swiftLanguageModes: [.v6]
)
