import ArgumentParser
import Foundation

struct SessionReport: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "Write a session's report (HTML with plots, or PDF).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The session.")
    var id: String
    func run() throws {}
}
