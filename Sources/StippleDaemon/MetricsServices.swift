import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import ServiceLifecycle

/// `/metrics` on a loopback TCP port, for a Prometheus that cannot reach the Unix socket. Only
/// when configured (`metrics_port`), only on 127.0.0.1, and only the metrics: the API itself is
/// never on TCP (H14).
public struct LoopbackMetricsServer {
    public static func application(port: Int, metrics: @escaping @Sendable () -> [UInt8], logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics())))
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "stippled-metrics",
                                 availableConnectionsDelegate: MaximumAvailableConnections(8)),
            logger: logger)
    }
}

/// The node_exporter textfile option: the metrics written atomically (a temporary file renamed
/// over the old one) every 15 s to `metrics_textfile`.
public struct MetricsTextfileService: Service {
    let path: String
    let metrics: @Sendable () -> [UInt8]
    let logger: Logger
    public var interval = Duration.seconds(15)

    public init(path: String, metrics: @escaping @Sendable () -> [UInt8], logger: Logger) {
        self.path = path
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            write()
            try? await Task.sleep(for: interval)
        }
    }

    func write() {
        let temporary = path + ".tmp"
        do {
            try Data(metrics()).write(to: URL(fileURLWithPath: temporary))
            _ = try FileManager.default.replaceItemAt(URL(fileURLWithPath: path), withItemAt: URL(fileURLWithPath: temporary))
        } catch {
            logger.warning("cannot write the metrics textfile", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}
