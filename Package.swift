// swift-tools-version: 6.2
import PackageDescription

// Every target of ours builds in the Swift 6 language mode (strict concurrency) and treats
// warnings as errors; dependencies keep their own settings.
let strictSwift: [SwiftSetting] = [.treatAllWarnings(as: .error)]
/// The codec and the simulator are optimised even in debug builds: the unit tests simulate a
/// four-hour session (2.16 million strokes), which unoptimised code runs ten times slower.
let optimisedSwift: [SwiftSetting] = strictSwift + [.unsafeFlags(["-O"], .when(configuration: .debug))]
let strictC: [CSetting] = [.enableWarning("all"), .enableWarning("extra"), .treatAllWarnings(as: .error)]

let package = Package(
    name: "Stipple",
    products: [
        .library(name: "StippleWire", targets: ["StippleWire"]),
        .library(name: "StippleSafety", targets: ["StippleSafety"]),
        .executable(name: "stipplectl", targets: ["stipplectl"]),
        .executable(name: "stipple-sim", targets: ["stipple-sim"]),
        .library(name: "StippleSim", targets: ["StippleSim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        // Pen protocol v1 codec: sans-I/O, no Foundation. Messages.generated.swift comes from
        // Firmware-protocol/messages.json via Firmware-protocol/tools/gen_code.py.
        .target(name: "StippleWire", swiftSettings: optimisedSwift),
        // The safety core: pure decisions about whether the needle may move (docs/safety.md).
        .target(name: "StippleSafety", dependencies: ["StippleWire"], swiftSettings: strictSwift),
        // The portable C99 codec for pen firmware, built here so tests and benchmarks can hold
        // it against the Swift codec in the same process.
        .target(
            name: "StippleWireC",
            path: "Firmware-protocol/c",
            exclude: ["test", "README.md"],
            publicHeadersPath: "include",
            cSettings: strictC
        ),
        // The pen simulator: firmware-faithful model, faults, scenarios (HardwareSim/).
        .target(name: "CPty", path: "HardwareSim/Sources/CPty", cSettings: strictC),
        .target(
            name: "StippleSim",
            dependencies: ["StippleWire", "CPty"],
            path: "HardwareSim/Sources/StippleSim",
            swiftSettings: optimisedSwift
        ),
        .executableTarget(
            name: "stipple-sim",
            dependencies: [
                "StippleSim",
                "StippleWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "HardwareSim/Sources/stipple-sim",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "stipplectl",
            dependencies: [
                "StippleWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift
        ),
        // Measuring executable for the codec: throughput and heap allocations per frame,
        // Swift against C on the same stream (make bench).
        .target(name: "MallocCounter", path: "Benchmarks/MallocCounter", cSettings: strictC),
        .executableTarget(
            name: "codec-bench",
            dependencies: ["StippleWire", "StippleWireC", "MallocCounter"],
            path: "Benchmarks/CodecBench",
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "sim-bench",
            dependencies: ["StippleSim", "StippleWire"],
            path: "Benchmarks/SimBench",
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
            name: "StippleSimTests",
            dependencies: ["StippleSim", "StippleWire"],
            path: "HardwareSim/Tests/StippleSimTests",
            swiftSettings: strictSwift
        ),
    ],
    swiftLanguageModes: [.v6]
)
