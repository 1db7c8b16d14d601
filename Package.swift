// swift-tools-version: 6.1
import PackageDescription

// Our own targets build in the Swift 6 language mode (strict concurrency) with warnings
// treated as errors by `make` (see Makefile: SWIFT_FLAGS).
let package = Package(
    name: "Stipple",
    products: [
        .library(name: "StippleWire", targets: ["StippleWire"]),
        .executable(name: "stipplectl", targets: ["stipplectl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        // Pen protocol v1 codec: sans-I/O, no Foundation. Messages.generated.swift comes from
        // Firmware-protocol/messages.json via Firmware-protocol/tools/gen_code.py.
        .target(name: "StippleWire"),
        // The portable C99 codec for pen firmware, built here so tests and benchmarks can hold
        // it against the Swift codec in the same process.
        .target(
            name: "StippleWireC",
            path: "Firmware-protocol/c",
            exclude: ["test"],
            publicHeadersPath: "include"
        ),
        .executableTarget(
            name: "stipplectl",
            dependencies: [
                "StippleWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Measuring executable for the codec: throughput and heap allocations per frame,
        // Swift against C on the same stream (make bench).
        .target(name: "MallocCounter", path: "Benchmarks/MallocCounter"),
        .executableTarget(
            name: "codec-bench",
            dependencies: ["StippleWire", "StippleWireC", "MallocCounter"],
            path: "Benchmarks/CodecBench"
        ),
        .testTarget(
            name: "StippleWireTests",
            dependencies: [
                "StippleWire",
                "StippleWireC",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
