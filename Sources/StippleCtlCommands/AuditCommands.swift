import ArgumentParser
import Foundation
import StippleClient
import StippleReport

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The daemon's append-only, hash-chained audit log.",
        subcommands: [AuditList.self, AuditVerify.self, AuditExport.self])
}

struct AuditList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Audit entries, oldest first.")

    @OptionGroup var options: GlobalOptions

    @Option(help: "Only entries after this sequence number.")
    var after: Int = 0

    @Option(help: "At most this many (1...10000).")
    var limit: Int = 100

    @Option(help: "Only this session's entries (of those fetched).")
    var session: String?

    func run() throws {
        let reply = try options.client().get("/v1/audit?after=\(after)&limit=\(limit)")
        if options.json, session == nil { return options.print(reply) { _ in "" } }
        let entries = reply.json.array.filter { session == nil || $0["session_id"].string == session }
        if options.json {
            Output.line(JSON.array(entries).compactText)
            return
        }
        guard !entries.isEmpty else { return Output.line("no audit entries") }
        Output.line(Text.table(["SEQ", "AT", "ACTOR", "KIND", "SESSION", "PAYLOAD"], entries.map { entry in
            [entry["seq"].text, Text.date(entry["at"].int), entry["actor"].text, entry["kind"].text,
             entry["session_id"].string ?? "-", entry["payload"].text]
        }))
    }
}

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Walk the hash chain; report the first broken link (exit status 1 if the chain is broken).")

    @OptionGroup var options: GlobalOptions

    func run() throws {
        let reply = try options.client().get("/v1/audit/verify")
        options.print(reply) { Self.text($0) }
        if reply.json["ok"].bool != true { throw ExitCode(ExitStatus.checkFailed.rawValue) }
    }

    static func text(_ result: JSON) -> String {
        if result["ok"].bool == true { return "audit chain verified: \(result["entries"].text) entries, every link holds" }
        return "audit chain BROKEN: \(result["first_broken"].text) (checked \(result["entries"].text) entries)"
    }
}

struct AuditExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the whole audit log to a file: one JSON entry per line (or CSV), with each entry's hashes.",
        discussion: "Anyone can re-check the export: each hash is the SHA-256 of prev_hash, seq, at, actor, kind, session_id and payload, one per line.")

    @OptionGroup var options: GlobalOptions

    enum Format: String, ExpressibleByArgument, CaseIterable { case jsonl, csv }

    @Option(help: "jsonl (one JSON object per line) or csv.")
    var format: Format = .jsonl

    @Option(name: [.short, .customLong("output")], help: "The file to write ('-': standard output).", completion: .file())
    var output: String = "-"

    func run() throws {
        let client = options.client()
        var after = 0
        var lines: [String] = format == .csv ? ["seq,at,actor,kind,session_id,payload,prev_hash,hash"] : []
        var count = 0
        while true {
            let page = try client.get("/v1/audit?after=\(after)&limit=10000").json.array
            for entry in page {
                count += 1
                switch format {
                case .jsonl: lines.append(entry.compactText)
                case .csv:
                    lines.append(["seq", "at", "actor", "kind", "session_id", "payload", "prev_hash", "hash"]
                        .map { Self.csv(entry[$0].isNull ? "" : entry[$0].text) }.joined(separator: ","))
                }
            }
            guard let last = page.last?["seq"].int, page.count == 10000 else { break }
            after = last
        }
        let verification = try client.get("/v1/audit/verify").json
        try writeOutput(lines.joined(separator: "\n") + "\n", to: output)
        if output != "-" {
            let summary = "exported \(count) entries to \(output); \(AuditVerify.text(verification))"
            if options.json {
                Output.line(JSON.object(["file": .string(output), "entries": .number(Double(count)), "verification": verification]).compactText)
            } else {
                Output.line(summary)
            }
        }
        if verification["ok"].bool != true { throw ExitCode(ExitStatus.checkFailed.rawValue) }
    }

    static func csv(_ field: String) -> String {
        field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
    }
}

/// Writes a command's output file ('-': standard output); a failure says which file and why.
func writeOutput(_ text: String, to path: String) throws {
    try writeOutput(Data(text.utf8), to: path)
}

func writeOutput(_ data: Data, to path: String) throws {
    if path == "-" {
        FileHandle.standardOutput.write(data)
        return
    }
    do {
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw CtlError(.cannotCreate, code: "cannot_write", "cannot write \(path): \((error as NSError).localizedDescription)")
    }
}

extension JSON {
    /// One line of JSON with sorted keys.
    var compactText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
}
