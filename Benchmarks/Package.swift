// swift-tools-version: 6.2
import PackageDescription

// Stipple's benchmarks, a package of their own (as swift-nio keeps them) so that the main
// package's products stay dependable: this one may use whatever measuring needs.
// Run them from the repository root with `make bench` (see README.md here).
let package = Package(
    name: "StippleBenchmarks",
    dependencies: [
        // The package under measurement, named so that products resolve whatever the clone's
        // directory is called.
        .package(name: "Stipple", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The realistic session stream and the decode loops, shared by the timed benchmarks and
        // the instruction counter so that both measure the same code on the same bytes.
        .target(
            name: "CodecWorkload",
            dependencies: [
                .product(name: "StippleWire", package: "Stipple"),
                .product(name: "StippleWireC", package: "Stipple"),
            ]
        ),
        // Valgrind's client requests, so the instruction counter can count the decode alone.
        .target(name: "CCallgrind"),
        // stippled as a process against a simulated pen on a real pty: stop reaction beside the
        // bare pty round trip, CPU per telemetry frame, memory over a four-hour session.
        .target(name: "CBenchPty"),
        .executableTarget(
            name: "daemon-bench",
            dependencies: [
                "CBenchPty",
                .product(name: "StippleClient", package: "Stipple"),
                .product(name: "StippleSim", package: "Stipple"),
                .product(name: "StippleWire", package: "Stipple"),
            ]
        ),
        .executableTarget(
            name: "codec-instructions",
            dependencies: ["CodecWorkload", "CCallgrind"]
        ),
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [
                "CodecWorkload",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "StippleWire", package: "Stipple"),
            ],
            path: "Benchmarks/CodecBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SimBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "StippleSim", package: "Stipple"),
                .product(name: "StippleWire", package: "Stipple"),
            ],
            path: "Benchmarks/SimBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
