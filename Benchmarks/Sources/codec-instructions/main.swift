// codec-instructions: instructions per frame that the Swift and the C decoder execute on one
// realistic session stream, counted by valgrind's callgrind. Unlike seconds, instruction counts
// repeat exactly for the same binary and input, whatever else the machine is doing, so this is
// the figure `make test` can hold the decoder to.
//
//   codec-instructions                  count both decoders, print, check (make bench, make test)
//   codec-instructions --keep DIR       also keep callgrind's profiles in DIR for callgrind_annotate
//   codec-instructions --record         write this run's Swift figure to Thresholds/ (make bench-thresholds)
//   codec-instructions --decode swift|c one decode, counted alone (what callgrind runs)
//
// It fails if the Swift decoder executes more instructions per frame than the C decoder, or more
// than Thresholds/codec-instructions.json records plus its tolerance.
import CCallgrind
import CodecWorkload
import Foundation

let arguments = CommandLine.arguments
func argument(after flag: String) -> String? {
    arguments.firstIndex(of: flag).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
}

/// Where callgrind's copy of this executable goes; removed on the way out.
let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("codec-instructions-\(getpid())")

func fail(_ message: String) -> Never {
    try? FileManager.default.removeItem(at: scratch)
    FileHandle.standardError.write(Data("codec-instructions: \(message)\n".utf8))
    exit(1)
}

enum Codec: String, CaseIterable {
    case swift, c

    var label: String { self == .swift ? "Swift decode" : "C decode" }

    func decode(_ bytes: UnsafeRawBufferPointer) -> Int {
        switch self {
        case .swift: Codecs.decodeWithSwift(bytes)
        case .c: Codecs.decodeWithC(bytes)
        }
    }
}

// Child mode: build the stream uncounted, count one decode of it.
if let name = argument(after: "--decode") {
    guard let codec = Codec(rawValue: name) else { fail("--decode takes swift or c") }
    let stream = SessionStream()
    let frames = stream.bytes.withUnsafeBytes { bytes in
        stipple_callgrind_toggle_collect()
        defer { stipple_callgrind_toggle_collect() }
        return codec.decode(bytes)
    }
    guard frames == stream.frames.count else { fail("\(codec.label) decoded \(frames) of \(stream.frames.count) frames") }
    print("frames \(frames) bytes \(stream.bytes.count)")
    exit(0)
}

/// Runs `executable` with `arguments`; returns its exit status, stdout and stderr.
func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    do { try process.run() } catch { fail("cannot run \(executable): \(error)") }
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
}

func which(_ tool: String) -> String {
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let path = "\(directory)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    fail("\(tool) not found; make deps installs it (Debian package \(tool == "valgrind" ? "valgrind" : "binutils"))")
}

let valgrind = which("valgrind")
let objcopy = which("objcopy")
let keepDirectory = argument(after: "--keep")

// valgrind 3.19 cannot read the DWARF 5 that the toolchain's clang writes, so callgrind runs a
// copy of this executable without debug information; symbols stay for callgrind_annotate.
try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
let stripped = scratch.appendingPathComponent("codec-instructions").path
let executable = Bundle.main.executablePath ?? CommandLine.arguments[0]
let copy = run(objcopy, ["--strip-debug", executable, stripped])
guard copy.status == 0 else { fail("objcopy failed: \(copy.errors)") }

struct Count {
    var instructions: Int
    var frames: Int
    var bytes: Int
    var perFrame: Double { Double(instructions) / Double(frames) }
}

func count(_ codec: Codec) -> Count {
    let profile = keepDirectory.map { "\($0)/callgrind.out.\(codec.rawValue)" } ?? "/dev/null"
    let result = run(valgrind, [
        "--tool=callgrind", "--collect-atstart=no", "--callgrind-out-file=\(profile)",
        stripped, "--decode", codec.rawValue,
    ])
    guard result.status == 0 else { fail("callgrind run of the \(codec.label) failed:\n\(result.errors)\(result.output)") }
    guard let collected = result.errors.split(separator: "\n").first(where: { $0.contains("Collected :") }),
          let instructions = collected.split(separator: " ").last.flatMap({ Int($0) }) else {
        fail("no instruction count in callgrind's output:\n\(result.errors)")
    }
    let words = result.output.split(separator: " ")
    guard words.count == 4, let frames = Int(words[1]), let bytes = Int(words[3].trimmingCharacters(in: .whitespacesAndNewlines)) else {
        fail("unexpected output from the decode run: \(result.output)")
    }
    return Count(instructions: instructions, frames: frames, bytes: bytes)
}

if let keepDirectory { try? FileManager.default.createDirectory(atPath: keepDirectory, withIntermediateDirectories: true) }
let swift = count(.swift)
let c = count(.c)
try? FileManager.default.removeItem(at: scratch)
precondition(swift.frames == c.frames && swift.bytes == c.bytes, "the two runs decoded different streams")

/// What was last recorded for the Swift decoder, and how far above it counts as a regression.
struct Recorded: Codable {
    var swiftDecodeInstructionsPerFrame: Double
    var tolerancePercent: Double
}
let thresholdsFile = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Thresholds/codec-instructions.json")
let recorded = (try? Data(contentsOf: thresholdsFile)).flatMap { try? JSONDecoder().decode(Recorded.self, from: $0) }

func row(_ codec: Codec, _ count: Count) -> String {
    "  \(codec.label.padding(toLength: 13, withPad: " ", startingAt: 0)) \(String(format: "%13d instructions  %7.1f per frame", count.instructions, count.perFrame))"
}
print("codec-instructions: callgrind on one realistic session stream, \(swift.frames) frames, \(swift.bytes) bytes")
print(row(.swift, swift))
print(row(.c, c))
print(String(format: "  Swift/C instructions per frame: %.2f", swift.perFrame / c.perFrame))
if let keepDirectory { print("  profiles: callgrind_annotate \(keepDirectory)/callgrind.out.swift (or .c)") }

if arguments.contains("--record") {
    let record = Recorded(
        swiftDecodeInstructionsPerFrame: (swift.perFrame * 10).rounded() / 10,
        tolerancePercent: recorded?.tolerancePercent ?? 3)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    do { try (encoder.encode(record) + Data("\n".utf8)).write(to: thresholdsFile) } catch { fail("cannot write \(thresholdsFile.path): \(error)") }
    print("  recorded in \(thresholdsFile.path)")
    exit(0)
}

var failures: [String] = []
if swift.perFrame > c.perFrame {
    failures.append(String(format: "the Swift decoder executes more instructions per frame than the C decoder (%.1f > %.1f)", swift.perFrame, c.perFrame))
}
if let recorded {
    let ceiling = recorded.swiftDecodeInstructionsPerFrame * (1 + recorded.tolerancePercent / 100)
    print(String(format: "  recorded Swift decode: %.1f per frame, regression above %.1f", recorded.swiftDecodeInstructionsPerFrame, ceiling))
    if swift.perFrame > ceiling {
        failures.append(String(format: "Swift decode regressed: %.1f instructions per frame, recorded %.1f + %.0f%%", swift.perFrame, recorded.swiftDecodeInstructionsPerFrame, recorded.tolerancePercent))
    }
} else {
    failures.append("cannot read \(thresholdsFile.path)")
}
if !failures.isEmpty {
    for failure in failures { print("FAIL: \(failure)") }
    exit(1)
}
