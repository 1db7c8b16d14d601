import StippleSafety
import StippleWire

/// The six lines of a GPIO pen (domain.md): the host drives the motor enable and the status
/// LED; the pedal, the e-stop button, the stroke tachometer and the over-depth switch are
/// inputs. Values are *logical* everywhere above the kernel: `true` means active (motor
/// enabled, pedal pressed, e-stop pressed, switch tripped), whatever the wiring's polarity —
/// the kernel applies each line's active-low flag.
public enum GPIOPenLine: String, CaseIterable, Hashable, Sendable, Comparable {
    case motorEnable = "motor_enable"
    case statusLED = "status_led"
    case pedal
    case estop
    case tachometer
    case overDepth = "over_depth"

    /// Lines the host drives.
    public var isOutput: Bool { self == .motorEnable || self == .statusLED }

    /// Every line but the status LED must be wired for a pen to be driven at all.
    public var isRequired: Bool { self != .statusLED }

    /// The logical value of an input that can only make the pen safer: a released pedal, a
    /// pressed e-stop, a tripped switch. Debouncing never delays an edge towards it
    /// (`InputDebouncer`). The tachometer has none: it counts strokes.
    public var safeValue: Bool? {
        switch self {
        case .pedal: false
        case .estop, .overDepth: true
        default: nil
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Where one line is and how it is requested.
public struct GPIOLineSpec: Hashable, Sendable {
    /// A line by its offset on the chip, or by its name (from the device tree or the chip's
    /// driver; `gpioinfo` lists both).
    public enum Address: Hashable, Sendable, CustomStringConvertible {
        case offset(Int)
        case name(String)

        public var description: String {
            switch self {
            case .offset(let offset): "offset \(offset)"
            case .name(let name): "\"\(name)\""
            }
        }
    }

    /// Pull resistors the kernel may enable on an input (libgpiod's bias flags).
    public enum Bias: String, Hashable, Sendable, CaseIterable {
        case asIs = "as_is", disabled, pullUp = "pull_up", pullDown = "pull_down"
    }

    /// The chip (`gpiochip0`, `/dev/gpiochip0`, a number, or the chip's label); nil: the pen's
    /// default chip.
    public var chip: String?
    public var address: Address
    /// The line is active when low (a switch to ground with a pull-up, an inverting driver).
    public var activeLow: Bool
    /// For inputs: how long a change away from the safe value must hold before it counts.
    public var debounce: Duration
    public var bias: Bias

    public init(chip: String? = nil, address: Address, activeLow: Bool = false, debounce: Duration = .zero, bias: Bias = .asIs) {
        self.chip = chip
        self.address = address
        self.activeLow = activeLow
        self.debounce = debounce
        self.bias = bias
    }
}

/// A GPIO pen as the configuration describes it (docs/configuration.md, `gpio`).
public struct GPIOPenSettings: Hashable, Sendable {
    /// The chip for lines that name none.
    public var chip: String
    /// The pen's serial number: a GPIO pen cannot tell its own, so the site assigns one (it is
    /// what sessions are bound to, H8). 1–16 printable ASCII characters.
    public var serial: String
    public var lines: [GPIOPenLine: GPIOLineSpec]

    public init(chip: String = Self.defaultChip, serial: String, lines: [GPIOPenLine: GPIOLineSpec]) {
        self.chip = chip
        self.serial = serial
        self.lines = lines
    }

    public static let defaultChip = "gpiochip0"
    /// The consumer name the kernel shows for our lines (`gpioinfo`).
    public static let consumer = "stippled"

    /// Debounce defaults, per input: the pedal's press must hold 10 ms; a released e-stop or
    /// switch must stay released 20 ms. The tachometer's is the shortest spacing between two
    /// strokes that counts (a bouncing sensor reads as a runaway, which stops: fail safe).
    public static func defaultDebounce(_ line: GPIOPenLine) -> Duration {
        switch line {
        case .pedal: .milliseconds(10)
        case .estop, .overDepth: .milliseconds(20)
        default: .zero
        }
    }

    /// Allowed debounce per input, in microseconds. The tachometer's stays far below the
    /// period of a runaway (1 / 160 Hz = 6250 µs), so debouncing can never hide one.
    public static func debounceRangeUs(_ line: GPIOPenLine) -> ClosedRange<Int> {
        switch line {
        case .tachometer: 0...2000
        case .pedal, .estop, .overDepth: 0...100_000
        case .motorEnable, .statusLED: 0...0
        }
    }

    public static let offsetRange = 0...65_535
    /// The kernel keeps 32 bytes for a line name, NUL included.
    public static let nameLengthRange = 1...31

    /// The chip a line is on.
    public func chip(of line: GPIOPenLine) -> String? {
        guard let spec = lines[line] else { return nil }
        return spec.chip ?? chip
    }

    /// Every problem, each with field, value and what is allowed; empty when the pen may be
    /// opened. `prefix` is where these settings sit in the configuration (`gpio.`).
    public func validate(prefix: String = "gpio.") -> [LimitViolation] {
        var problems: [LimitViolation] = []
        func problem(_ field: String, _ value: String, _ allowed: String) {
            problems.append(LimitViolation(field: prefix + field, value: value, allowed: allowed))
        }
        if chip.isEmpty { problem("chip", "\"\"", "a chip name, path, number or label") }
        if serial.isEmpty || FixedText<16>(serial) == nil {
            problem("serial", "\"\(serial)\"", "1 to 16 printable ASCII characters (the pen's serial number, which sessions are bound to)")
        }
        for line in GPIOPenLine.allCases where line.isRequired && lines[line] == nil {
            problem("lines.\(line.rawValue)", "missing", "a line: {\"offset\": N} or {\"name\": \"...\"}, optionally \"chip\"")
        }
        var seen: [String: GPIOPenLine] = [:]
        for (line, spec) in lines.sorted(by: { $0.key < $1.key }) {
            let field = "lines.\(line.rawValue)"
            switch spec.address {
            case .offset(let offset):
                if !Self.offsetRange.contains(offset) {
                    problem("\(field).offset", "\(offset)", "\(Self.offsetRange.lowerBound)...\(Self.offsetRange.upperBound)")
                }
            case .name(let name):
                if !Self.nameLengthRange.contains(name.utf8.count) {
                    problem("\(field).name", "\"\(name)\"", "a line name of \(Self.nameLengthRange.lowerBound)...\(Self.nameLengthRange.upperBound) bytes")
                }
            }
            if let chip = spec.chip, chip.isEmpty { problem("\(field).chip", "\"\"", "a chip name, path, number or label") }
            let debounceUs = spec.debounce.microsecondsRoundedUp
            let range = Self.debounceRangeUs(line)
            if !range.contains(debounceUs) {
                problem("\(field).debounce_us", "\(debounceUs)", line.isOutput ? "0 (outputs are not debounced)" : "\(range.lowerBound)...\(range.upperBound)")
            }
            if line.isOutput && spec.bias != .asIs {
                problem("\(field).bias", spec.bias.rawValue, "as_is (bias applies to inputs)")
            }
            let key = "\(spec.chip ?? chip) \(spec.address)"
            if let other = seen[key] {
                problem(field, "\(spec.address) on \(spec.chip ?? chip)", "a line of its own (\(other.rawValue) uses it)")
            } else {
                seen[key] = line
            }
        }
        return problems
    }
}

extension Duration {
    /// Whole microseconds, rounded up (a configured debounce is never shortened).
    var microsecondsRoundedUp: Int {
        let (seconds, attoseconds) = components
        let (us, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let fraction = attoseconds / 1_000_000_000_000
        let rest = attoseconds % 1_000_000_000_000
        return Int(clamping: us + fraction + (rest > 0 ? 1 : 0))
    }
}
