import ArgumentParser
import Foundation

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serial devices that could be a pen, and why each matched or not.")
    @OptionGroup var options: GlobalOptions
    func run() throws {}
}

struct Identify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Blink the pen's identify LED.")
    @OptionGroup var options: GlobalOptions
    func run() throws {}
}

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Round-trip time over the pen link (p50/p99).")
    @OptionGroup var options: GlobalOptions
    func run() throws {}
}

struct Raw: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send one frame built like `encode`; print the decoded answer.")
    @OptionGroup var options: GlobalOptions
    func run() throws {}
}

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Live decoded frames, both directions, with timestamps.")
    @OptionGroup var options: GlobalOptions
    func run() throws {}
}

struct Selftest: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the protocol conformance suite against a pen.")
    @OptionGroup var options: GlobalOptions
    func run() throws {}
}
