#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOSSL
import PostgresNIO
import StippleSafety

/// Where the clinic's PostgreSQL is and who this workstation is there: a file of libpq-style
/// `key=value` lines (docs/fleet.md), readable by the daemon's user only, because it holds the
/// workstation role's password. Checked whole at start like the rest of the configuration: every
/// problem names the key, the value and what is allowed, and the daemon exits 78.
public struct ClinicConnection: Sendable, Hashable {
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// Only over a Unix socket or loopback (the file says so; anything else is refused).
        case disable
        /// TLS, with the server's certificate checked against `sslrootcert` (or the system's
        /// roots) and its name against `host`.
        case verifyFull = "verify-full"
    }

    /// A host name or address, or an absolute path: the directory of a local server's socket.
    public var host: String
    public var port = 5432
    public var database: String
    /// The workstation's role: its name is the workstation's name in the clinic's records.
    public var user: String
    public var password: String?
    public var tls: TLSMode = .verifyFull
    public var rootCertificate: String?

    public var isUnixSocket: Bool { host.hasPrefix("/") }
    public var socketPath: String { "\(host)/.s.PGSQL.\(port)" }

    public init(host: String, port: Int = 5432, database: String, user: String, password: String? = nil,
                tls: TLSMode = .verifyFull, rootCertificate: String? = nil) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.tls = tls
        self.rootCertificate = rootCertificate
    }

    static let keys = ["host", "port", "dbname", "user", "password", "sslmode", "sslrootcert"]

    /// Reads and checks the file at `path`. `owner`: the uid that must own it (the daemon's);
    /// nil skips the owner and mode checks (a person's own file for `stipplectl clinic`).
    public static func load(path: String, owner: uid_t?) -> Result<ClinicConnection, ClinicConnectionError> {
        var problems: [LimitViolation] = []
        var info = stat()
        guard stat(path, &info) == 0 else {
            return .failure(ClinicConnectionError(path: path, problems: [
                LimitViolation(field: "clinic.connection_file", value: path, allowed: "an existing file (\(String(cString: strerror(errno))))")]))
        }
        if let owner {
            if (info.st_mode & S_IFMT) != S_IFREG {
                problems.append(LimitViolation(field: "clinic.connection_file", value: path, allowed: "a regular file"))
            }
            if info.st_mode & 0o077 != 0 {
                problems.append(LimitViolation(field: "clinic.connection_file", value: "mode \(String(info.st_mode & 0o777, radix: 8))",
                                               allowed: "0600 or 0400: it holds the workstation's password, readable by the daemon's user only"))
            }
            if info.st_uid != owner {
                problems.append(LimitViolation(field: "clinic.connection_file", value: "owner uid \(info.st_uid)",
                                               allowed: "owned by the daemon's user (uid \(owner))"))
            }
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            problems.append(LimitViolation(field: "clinic.connection_file", value: path, allowed: "a readable UTF-8 text file"))
            return .failure(ClinicConnectionError(path: path, problems: problems))
        }
        switch parse(text, path: path) {
        case .success(let connection) where problems.isEmpty: return .success(connection)
        case .success: return .failure(ClinicConnectionError(path: path, problems: problems))
        case .failure(let found): return .failure(ClinicConnectionError(path: path, problems: problems + found.problems))
        }
    }

    /// Parses `key=value` lines (`#` comments, blank lines); a value may be single-quoted.
    public static func parse(_ text: String, path: String = "connection file") -> Result<ClinicConnection, ClinicConnectionError> {
        var problems: [LimitViolation] = []
        var values: [String: String] = [:]
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                problems.append(LimitViolation(field: "line \(number + 1)", value: "\"\(line.prefix(40))\"", allowed: "key=value"))
                continue
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("'"), value.hasSuffix("'") { value = String(value.dropFirst().dropLast()) }
            guard keys.contains(key) else {
                problems.append(LimitViolation(field: key, value: "line \(number + 1)", allowed: keys.joined(separator: ", ")))
                continue
            }
            if values[key] != nil {
                problems.append(LimitViolation(field: key, value: "given twice", allowed: "once"))
            }
            values[key] = value
        }
        for key in ["host", "dbname", "user"] where (values[key] ?? "").isEmpty {
            problems.append(LimitViolation(field: key, value: "missing", allowed: key == "host" ? "a host name, address or socket directory" : "a name"))
        }
        var connection = ClinicConnection(host: values["host"] ?? "", database: values["dbname"] ?? "", user: values["user"] ?? "")
        if let text = values["port"] {
            if let port = Int(text), (1...65535).contains(port) { connection.port = port } else {
                problems.append(LimitViolation(field: "port", value: text, allowed: "1...65535"))
            }
        }
        connection.password = values["password"].flatMap { $0.isEmpty ? nil : $0 }
        if let mode = values["sslmode"] {
            if let tls = TLSMode(rawValue: mode) { connection.tls = tls } else {
                problems.append(LimitViolation(field: "sslmode", value: mode, allowed: "verify-full, or disable over a Unix socket or loopback"))
            }
        }
        connection.rootCertificate = values["sslrootcert"].flatMap { $0.isEmpty ? nil : $0 }
        if connection.tls == .disable && !connection.isUnixSocket && !["127.0.0.1", "::1", "localhost"].contains(connection.host) {
            problems.append(LimitViolation(field: "sslmode", value: "disable with host \(connection.host)",
                                           allowed: "verify-full: records and passwords never cross a network in the clear"))
        }
        if let root = connection.rootCertificate, !FileManager.default.isReadableFile(atPath: root) {
            problems.append(LimitViolation(field: "sslrootcert", value: root, allowed: "a readable PEM file"))
        }
        return problems.isEmpty ? .success(connection) : .failure(ClinicConnectionError(path: path, problems: problems))
    }

    /// PostgresNIO's configuration for this connection.
    public func clientConfiguration() throws -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if isUnixSocket {
            configuration = .init(unixSocketPath: socketPath, username: user, password: password, database: database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch self.tls {
            case .disable:
                tls = .disable
            case .verifyFull:
                var settings = TLSConfiguration.makeClientConfiguration()
                settings.certificateVerification = .fullVerification
                if let rootCertificate { settings.trustRoots = .file(rootCertificate) }
                tls = .require(settings)
            }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        // One connection kept open: a claim never waits for a connection and its authentication.
        configuration.options.minimumConnections = 1
        // Two: a claim never queues behind a shipping batch, and a clinic's server needs no more
        // than two connections per workstation (docs/fleet.md: max_connections).
        configuration.options.maximumConnections = 2
        configuration.options.connectionIdleTimeout = .seconds(60)
        // The server ends what hangs: a statement (a claim waiting on a lock held by a chair whose
        // network is gone), a lock wait, a transaction left open.
        configuration.options.additionalStartupParameters = [
            ("application_name", "stippled"), ("statement_timeout", "10000"), ("lock_timeout", "5000"),
            ("idle_in_transaction_session_timeout", "30000"),
        ]
        return configuration
    }
}

/// What is wrong with a connection file, every problem at once.
public struct ClinicConnectionError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var problems: [LimitViolation]
    public var description: String {
        "\(path): " + problems.map { "\($0.field) = \($0.value) (allowed: \($0.allowed))" }.joined(separator: "; ")
    }
}
