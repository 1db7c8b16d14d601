#if canImport(Glibc)
import Foundation
import Glibc
import StippleLink
import StippleTransport
import StippleWire
import SystemPackage

/// The monotonic clock, as the daemon and the pen protocol count time.
func monotonicNow() -> MonotonicInstant { MonotonicClock.now() }

/// Opens a pen's serial port for a bring-up command that talks to it directly. The port is
/// opened exactly as stippled opens it (`SerialPort`: raw, TIOCEXCL, flock), so a port the
/// daemon holds is refused — and said so.
func openPort(_ path: String) throws -> SerialPort {
    do {
        return try SerialPort(path: path)
    } catch {
        if error.isBusy {
            throw CtlError(.portBusy, code: "port_busy",
                           "\(path) is held by another process — stippled drives the pen: run the command without --port to go through the daemon (group stipple-eng), or stop the daemon (`systemctl stop stippled`)")
        }
        if error.errno == .noSuchFileOrDirectory {
            throw CtlError(.unreachable, code: "no_such_port", "\(path): no such device (`stipplectl devices` lists the serial ports)")
        }
        if error.errno == .permissionDenied {
            throw CtlError(.permissionDenied, code: "port_permission", "\(path): permission denied (the pen's port belongs to group dialout or stipple: `usermod -aG dialout $USER`)")
        }
        throw CtlError(.ioError, code: "port_failed", "\(path): \(error)")
    }
}

/// One frame seen on a link, with when and which way: what `trace` prints and saves.
struct SeenFrame {
    enum Direction: String { case toPen = ">", fromPen = "<" }
    var direction: Direction
    var at: MonotonicInstant
    var output: FrameDecoder.Output

    /// "+12.345 ms > seq=1 hello proto_major=1 proto_minor=0"
    func line(since start: MonotonicInstant) -> String {
        let micros = (at - start).totalNanoseconds / 1000
        let text: String = switch output {
        case .frame(let frame): "\(frame)"
        case .rejected(let rejection): "\(rejection)"
        }
        return String(format: "+%10.3f ms %@ %@", Double(micros) / 1000, direction == .toPen ? "host>" : "pen <", text)
    }
}

/// The host side of a link to a pen the daemon does not hold: stippled's own `HostLink` over
/// the port, so the pen meets the same host (handshake, stop-and-wait, retransmission,
/// heartbeat). Every byte both ways can be watched (`onBytes`).
final class DirectPen {
    let port: SerialPort
    var link = HostLink()
    var onBytes: ((SeenFrame.Direction, [UInt8], MonotonicInstant) -> Void)?
    private var pending: [HostLink.Event] = []

    init(port: SerialPort) { self.port = port }

    deinit { port.close() }

    /// Writes what the link has to send and reads for up to `slice`; returns the link's events.
    func step(_ slice: Duration = .milliseconds(5)) throws -> [HostLink.Event] {
        let now = monotonicNow()
        let (bytes, events) = link.poll(at: now)
        if !bytes.isEmpty {
            do { try port.write(bytes) } catch { throw CtlError(.ioError, code: "port_failed", "writing \(port.path): \(error)") }
            onBytes?(.toPen, bytes, now)
        }
        let input: [UInt8]
        do { input = try port.read(timeout: slice) } catch { throw CtlError(.ioError, code: "port_failed", "reading \(port.path): \(error)") }
        var all = events
        if !input.isEmpty {
            let at = monotonicNow()
            onBytes?(.fromPen, input, at)
            all += link.receive(input, at: at)
        }
        return all
    }

    /// Runs the link until `done` picks an event, or `timeout` passes.
    func run<T>(timeout: Duration, _ done: (HostLink.Event) -> T?) throws -> T? {
        let deadline = monotonicNow() + timeout
        while monotonicNow() < deadline {
            for event in try step() {
                if let result = done(event) { return result }
            }
        }
        return nil
    }

    /// HELLO: the pen answers with its identity (PROTOCOL.md section 6, step 1–3).
    func hello() throws -> Message.HelloReply {
        link.send(.hello(.init(protoMajor: ProtocolVersion.major, protoMinor: ProtocolVersion.minor)))
        let reply = try run(timeout: .seconds(2)) { event -> Message.HelloReply? in
            if case .helloReply(let reply) = event { return reply }
            return nil
        }
        guard let reply else {
            throw CtlError(.unreachable, code: "pen_silent", "the pen on \(port.path) did not answer HELLO within 2 s (is it powered, and is this its port?)")
        }
        return reply
    }

    /// Sends a command and waits for its ACK; the round trip from the first write to the ACK.
    func command(_ message: Message, timeout: Duration = .seconds(1)) throws -> (status: AckStatus, detail: UInt8, roundTrip: Duration)? {
        // Let anything queued (a heartbeat) go first, so the timing covers this command only.
        _ = try run(timeout: .milliseconds(200)) { _ -> Bool? in self.link.isIdle ? true : nil }
        link.send(message)
        let started = monotonicNow()
        return try run(timeout: timeout) { event -> (AckStatus, UInt8, Duration)? in
            if case .acknowledged(let acked, let status, let detail) = event, acked.id == message.id {
                return (status, detail, monotonicNow() - started)
            }
            return nil
        }
    }
}
#endif
