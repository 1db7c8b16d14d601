import ArgumentParser
import Foundation
import StippleClient
import StippleReport

struct SessionReport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a session's report: HTML with plots of depth and rate (default), or PDF for printing.",
        discussion: """
            The report is one self-contained file: client, dates, pen serial and firmware, cartridge, \
            zone and layer, limits in force, setpoint changes, session time, warnings, faults, stops, \
            plots of protrusion depth and stroke rate with the band and limits drawn in, and the audit \
            chain's state. --pdf prints it with WeasyPrint (Debian package weasyprint, installed by \
            `make deps`). With --json, the daemon's report JSON instead (GET /v1/sessions/{id}/report).
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The session (default: the current one).")
    var id: String?

    @Option(name: [.short, .customLong("output")], help: "The file to write (default stipple-report-ID.html or .pdf; '-': standard output).",
            completion: .file(extensions: ["html", "pdf"]))
    var output: String?

    @Flag(help: "Write a PDF (needs weasyprint).")
    var pdf = false

    func run() throws {
        let client = options.client()
        let id = try currentSessionID(id, client: client)
        let reply = try client.get("/v1/sessions/\(pathSegment(id))/report")
        if options.json, output == nil { return options.print(reply) { _ in "" } }
        let html = Report(data: reply.json, generatedAt: Date()).html
        let safeID = id.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }
        let path = output ?? "stipple-report-\(String(safeID)).\(pdf ? "pdf" : "html")"
        if pdf {
            try Self.printPDF(html: html, to: path)
        } else {
            try writeOutput(html, to: path)
        }
        if path != "-" {
            if options.json {
                Output.line(JSON.object(["file": .string(path), "session_id": .string(id), "audit_ok": reply.json["audit"]["ok"]]).compactText)
            } else {
                let audit = reply.json["audit"]["ok"].bool == true ? "audit chain verified" : "AUDIT CHAIN BROKEN: \(reply.json["audit"]["first_broken"].text)"
                Output.line("wrote \(path) (session \(id); \(audit))")
            }
        }
    }

    /// HTML to PDF with WeasyPrint (it draws inline SVG and honours the print CSS).
    static func printPDF(html: String, to path: String) throws {
        guard let weasyprint = ["/usr/bin/weasyprint", "/usr/local/bin/weasyprint"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CtlError(.unreachable, code: "no_pdf_tool", "cannot make a PDF: weasyprint is not installed (`apt-get install weasyprint`, or `make deps`); the HTML report prints from any browser")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stipplectl-\(getpid())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("report.html")
        let pdfFile = directory.appendingPathComponent("report.pdf")
        try Data(html.utf8).write(to: input)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: weasyprint)
        process.arguments = ["--quiet", input.path, pdfFile.path]
        let errors = Pipe()
        process.standardError = errors
        do { try process.run() } catch {
            throw CtlError(.cannotCreate, code: "pdf_failed", "cannot run \(weasyprint): \(error)")
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let data = FileManager.default.contents(atPath: pdfFile.path) else {
            throw CtlError(.cannotCreate, code: "pdf_failed", "weasyprint failed (\(process.terminationStatus)): \(message.text.prefix(400))")
        }
        try writeOutput(data, to: path)
    }
}
