import Foundation
import Synchronization

/// A JSON value for event payloads and API answers built by hand.
public enum JSONValue: Sendable, Hashable, Encodable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): if value.isFinite { try container.encode(value) } else { try container.encodeNil() }
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        case .array(let values): try container.encode(values)
        case .object(let values): try container.encode(values)
        }
    }

    public static func optional(_ value: Int?) -> JSONValue { value.map { .int(Int64($0)) } ?? .null }
    public static func optional(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
}

/// One live event for the API's event stream (Server-Sent Events).
public struct DaemonEvent: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case state, fault, warning, telemetry, pen, session, link
    }
    public var kind: Kind
    /// The event as one line of JSON: encoded once, sent to every subscriber.
    public var json: String

    public init(_ kind: Kind, _ fields: [String: JSONValue]) {
        self.kind = kind
        var all = fields
        all["type"] = .string(kind.rawValue)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        json = (try? encoder.encode(all)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// Fans events out to every open event stream without ever waiting for one: each subscriber has
/// a bounded buffer that keeps the newest events, so a slow or stalled client loses events
/// (and is told so by a gap in `seq`) but never delays the supervisor. Telemetry is decimated per
/// subscriber (10 Hz unless it asked for full rate); state changes, faults and warnings always go
/// out at once.
public final class EventHub: Sendable {
    struct Subscriber: Sendable {
        var continuation: AsyncStream<String>.Continuation
        var fullRate: Bool
        var lastTelemetry: ContinuousClock.Instant?
    }

    private let state = Mutex<(next: Int, subscribers: [Int: Subscriber], seq: Int64)>((0, [:], 0))
    public static let telemetryInterval = Duration.milliseconds(100)
    public static let bufferSize = 256

    public init() {}

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// A new stream of event lines; it ends when `onTermination` runs (the client went away).
    public func subscribe(fullRate: Bool, onTermination: @escaping @Sendable () -> Void = {}) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(Self.bufferSize))
        let id = state.withLock { state in
            let id = state.next
            state.next += 1
            state.subscribers[id] = Subscriber(continuation: continuation, fullRate: fullRate, lastTelemetry: nil)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
            onTermination()
        }
        return stream
    }

    public func publish(_ event: DaemonEvent) {
        let now = ContinuousClock.now
        state.withLock { state in
            state.seq += 1
            let line = "id: \(state.seq)\nevent: \(event.kind.rawValue)\ndata: \(event.json)\n\n"
            for (id, var subscriber) in state.subscribers {
                if event.kind == .telemetry && !subscriber.fullRate {
                    if let last = subscriber.lastTelemetry, now - last < Self.telemetryInterval { continue }
                    subscriber.lastTelemetry = now
                    state.subscribers[id] = subscriber
                }
                subscriber.continuation.yield(line)
            }
        }
    }

    /// A comment line to every stream, once a second: a client that died is noticed by the
    /// failed write even when no event flows, and no idle timeout cuts a quiet stream.
    public func keepalive() {
        let now = ContinuousClock.now
        let due = lastKeepalive.withLock { last in
            if let last, now - last < .seconds(1) { return false }
            last = now
            return true
        }
        guard due else { return }
        state.withLock { state in
            for subscriber in state.subscribers.values { subscriber.continuation.yield(": keepalive\n\n") }
        }
    }

    private let lastKeepalive = Mutex<ContinuousClock.Instant?>(nil)

    /// Ends every stream (shutdown).
    public func finishAll() {
        let subscribers = state.withLock { state in
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.continuation.finish() }
    }
}
