import ArgumentParser
import CStippleSys
import Foundation
import StippleSim
import StippleWire

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a simulated pen on a pseudo-terminal, in real time.",
        discussion: """
            Opens a pty pair in raw mode and prints the device path; the daemon (or stipplectl) opens it \
            exactly as it would /dev/ttyACM0. Type commands on standard input to act on the pen:
              pedal on|off          press or release the foot pedal
              estop on|off          press or release the e-stop button
              insert [ID]           insert a conforming cartridge (default id SIM-CART-0002)
              remove                pull the cartridge out
              fault NAME [k=v ...]  inject a fault (stipple-sim list-faults)
              power                 power-cycle the pen
              status                print the pen's state
              quit                  stop serving
            """
    )

    @Flag(name: .long, help: "Serve on a pseudo-terminal (the only transport of this command).")
    var pty = false

    @Option(name: .long, help: "Also place a symlink to the pty at this path (replaced if it is a symlink).")
    var link: String?

    @Option(help: "Random seed of the pen model.")
    var seed: UInt64 = 1

    @Option(help: "Pen serial number.")
    var serial: String = "SIM-0001"

    @Flag(help: "Hold the pedal down from the start.")
    var pedal = false

    @Option(help: "Stop after this many seconds (0: run until quit or end of input).")
    var seconds: Double = 0

    /// A pen is a microcontroller of its own: a busy host never delays its firmware. The
    /// simulated pen runs in a process of the host, so on a loaded machine (a build, a test run)
    /// its loop could be kept off the CPU past its own heartbeat deadman and fault itself with
    /// `host_heartbeat_lost` — a fault of the simulator, not of the daemon. Hence SCHED_FIFO,
    /// above the daemon's supervisor (10), where the system allows it.
    @Option(name: .customLong("realtime-priority"),
            help: "SCHED_FIFO priority of the pen's loop, 1...99 (0: normal scheduling). Refused without CAP_SYS_NICE: the pen then runs at normal priority and says so.")
    var realtimePriority: Int = 20

    func run() throws {
        guard pty else { throw ValidationError("serve needs --pty") }
        guard serial.utf8.count <= 16, FixedText<16>(serial) != nil else {
            throw ValidationError("--serial: must be printable ASCII of at most 16 bytes")
        }
        var config = PenConfig()
        config.serial = serial
        let server = try PtyPenServer(config: config, seed: seed)
        if let link { try server.placeSymlink(at: link) }
        say("stipple-sim: serving pen \(serial) on \(server.devicePath)\(link.map { " (symlink \($0))" } ?? "")")
        if pedal { server.perform("pedal on") }
        guard seconds >= 0, seconds <= 31_536_000 else { throw ValidationError("--seconds: must be 0 up to a year") }
        guard (0...99).contains(realtimePriority) else {
            throw ValidationError("--realtime-priority: \(realtimePriority) is outside the allowed range 0...99")
        }
        if realtimePriority > 0 {
            let refused = stipple_thread_realtime(Int32(realtimePriority))
            if refused != 0 {
                say("stipple-sim: SCHED_FIFO \(realtimePriority) refused (\(String(cString: strerror(refused)))): the pen runs at normal priority and may fault itself on a busy machine")
            } else {
                say("stipple-sim: pen loop at SCHED_FIFO \(realtimePriority)")
            }
        }
        try server.serve(for: seconds > 0 ? .seconds(seconds) : nil, commands: FileHandle.standardInput.fileDescriptor) { say($0) }
    }
}

