import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import StippleClinicDatabase
import StippleSafety
import Synchronization

/// `stipplectl clinic …`: the clinic's records across workstations, read from its PostgreSQL with
/// the user's own credentials (a role in `stipple_reader`; docs/fleet.md) — never through a
/// daemon, which holds only its own workstation's role. And the schema, for the database owner.
struct Clinic: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The clinic's records on PostgreSQL: sessions across chairs, a client's history, who used a lot, each workstation's lag.",
        discussion: """
            Reads the clinic's views as you (a PostgreSQL role in stipple_reader), from a connection file of \
            key=value lines (host, port, dbname, user, password, sslmode, sslrootcert) readable by you only: \
            --connection FILE, else $STIPPLE_CLINIC, else ~/.config/stipple/clinic.conf. docs/fleet.md.
            """,
        subcommands: [ClinicSessions.self, ClinicClient.self, ClinicLot.self, ClinicWorkstations.self, ClinicReview.self, ClinicSchemaCommand.self])
}

/// Where the clinic's database is, and JSON for scripts.
struct ClinicOptions: ParsableArguments {
    @Option(help: "The connection file (default $STIPPLE_CLINIC, else ~/.config/stipple/clinic.conf).")
    var connection: String?

    @Flag(help: "Print the rows as JSON.")
    var json = false

    var path: String {
        if let connection { return connection }
        if let path = ProcessInfo.processInfo.environment["STIPPLE_CLINIC"], !path.isEmpty { return path }
        return NSString(string: "~/.config/stipple/clinic.conf").expandingTildeInPath
    }

    /// Runs `sql` (every column cast to text) and prints the rows.
    func show(_ query: PostgresQuery, columns: [String], empty: String) throws {
        let rows = try ClinicQuery.rows(query, path: path)
        if json {
            let objects = rows.map { row in Dictionary(uniqueKeysWithValues: zip(columns, row.map { $0.map { $0 as Any } ?? NSNull() })) }
            let data = try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard !rows.isEmpty else { return print(empty) }
        let cells = [columns] + rows.map { $0.map { $0 ?? "-" } }
        let widths = columns.indices.map { index in cells.map { $0[index].count }.max() ?? 0 }
        for (number, row) in cells.enumerated() {
            print(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces))
            if number == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
    }
}

/// One query against the clinic's database, from a synchronous command.
enum ClinicQuery {
    static func rows(_ query: PostgresQuery, path: String) throws -> [[String?]] {
        let connection: ClinicConnection
        switch ClinicConnection.load(path: path, owner: getuid()) {
        case .success(let loaded): connection = loaded
        case .failure(let error):
            throw CtlError(.usage, code: "clinic_connection", "the clinic's connection file is not usable: \(error)")
        }
        let configuration = try connection.clientConfiguration()
        let result = Mutex<Result<[[String?]], any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let outcome: Result<[[String?]], any Error>
            do {
                outcome = .success(try await fetch(query, configuration))
            } catch {
                outcome = .failure(error)
            }
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        switch result.withLock({ $0 })! {
        case .success(let rows): return rows
        case .failure(let error as CtlError):
            throw error
        case .failure(let error as PSQLError):
            let message = error.serverInfo?[.message] ?? "\(error.code)"
            throw CtlError(error.serverInfo == nil ? .unreachable : .refused, code: "clinic_database", "the clinic's database: \(message)")
        case .failure(let error):
            throw CtlError(.unreachable, code: "clinic_unreachable", "the clinic's database cannot be reached: \(error)")
        }
    }

    static func fetch(_ query: PostgresQuery, _ configuration: PostgresClient.Configuration) async throws -> [[String?]] {
        var quiet = Logger(label: "stipplectl.clinic")
        quiet.logLevel = .critical
        let logger = quiet
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: [[String?]]?.self) { group in
            group.addTask { await client.run(); return nil }
            group.addTask {
                var rows: [[String?]] = []
                for try await row in try await client.query(query, logger: logger) {
                    rows.append(try row.map { try $0.decode(String?.self) })
                }
                return rows
            }
            group.addTask {
                try await Task.sleep(for: .seconds(10))
                throw CtlError(.unreachable, code: "clinic_unreachable", "the clinic's database did not answer within 10 s")
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let rows = next { return rows }
            }
            return []
        }
    }
}

struct ClinicSessions: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sessions", abstract: "Sessions at every workstation, newest first.")
    @OptionGroup var options: ClinicOptions
    @Option(help: "At most this many (1...10000).") var limit = 50

    func validate() throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("--limit \(limit): allowed 1...10000") }
    }

    func run() throws {
        try options.show("\(unescaped: Self.select) ORDER BY opened_at DESC LIMIT \(limit)", columns: Self.columns,
                         empty: "no sessions in the clinic's records")
    }

    static let columns = ["workstation", "session", "client", "zone", "technician", "cartridge", "pigment_lots", "opened", "closed", "close_reason"]
    /// The `stipple.sessions` view as `columns` shows it (a constant: no value of the user's in it).
    static let select = """
        SELECT workstation, session_id, client_id, zone, technician, cartridge_id, array_to_string(pigment_lots, ','),
               to_char(opened_at, 'YYYY-MM-DD HH24:MI'), to_char(closed_at, 'YYYY-MM-DD HH24:MI'), close_reason
        FROM stipple.sessions
        """
}

struct ClinicClient: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "client", abstract: "One client's sessions across every chair, newest first.")
    @OptionGroup var options: ClinicOptions
    @Argument(help: "The client's (pseudonymous) id.") var id: String

    func run() throws {
        try options.show("\(unescaped: ClinicSessions.select) WHERE client_id IN (\(Identifier.canonical(id) ?? id), \(id)) OR upper(client_id) = upper(\(id)) ORDER BY opened_at DESC",
                         columns: ClinicSessions.columns, empty: "no sessions of client \(id) in the clinic's records")
    }
}

struct ClinicLot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lot", abstract: "Who was treated with a pigment or cartridge lot (a recall), oldest first.")
    @OptionGroup var options: ClinicOptions
    @Argument(help: "The lot number.") var lot: String

    func run() throws {
        try options.show("""
            SELECT material, lot, workstation, session_id, client_id, to_char(used_at, 'YYYY-MM-DD HH24:MI')
            FROM stipple.lot_uses WHERE lot = \(lot) ORDER BY used_at, workstation, session_id
            """, columns: ["material", "lot", "workstation", "session", "client", "used"], empty: "lot \(lot) is not in the clinic's records")
    }
}

struct ClinicWorkstations: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workstations", abstract: "Each workstation's last contact, shipping backlog and lag, and open review items.")
    @OptionGroup var options: ClinicOptions

    func run() throws {
        try options.show("""
            SELECT workstation, to_char(last_contact, 'YYYY-MM-DD HH24:MI:SS'), confirmed_seq::text, backlog_entries::text,
                   round(extract(epoch FROM lag))::text, open_review_items::text
            FROM stipple.workstation_status ORDER BY workstation
            """, columns: ["workstation", "last_contact", "confirmed", "backlog", "lag_s", "review_items"],
            empty: "no workstation has contacted the clinic's database yet")
    }
}

struct ClinicReview: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review", abstract: "Conflicts found when claims made offline reached the database, still unresolved.")
    @OptionGroup var options: ClinicOptions

    func run() throws {
        try options.show("""
            SELECT id::text, workstation, session_id, kind, detail, override_reason, to_char(found_at, 'YYYY-MM-DD HH24:MI')
            FROM stipple.review_items WHERE resolved_at IS NULL ORDER BY id
            """, columns: ["id", "workstation", "session", "kind", "detail", "offline_reason", "found"], empty: "no open review items")
    }
}

struct ClinicSchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema", abstract: "Print the clinic database's schema (SQL), for its owner: stipplectl clinic schema | psql -v ON_ERROR_STOP=1 -d stipple")

    func run() throws { print(ClinicSchema.sql) }
}
