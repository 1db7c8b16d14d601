import Foundation
import StippleDiscovery
import StippleGPIO
import StippleRequests

/// Pen discovery (`discovery`) and the GPIO pen's line map (`gpio`) in the configuration file
/// (docs/configuration.md). Like every other section they are read whole — every problem named
/// with its field, value and allowed range — and a configuration with any problem never starts
/// (exit 78).
public struct DiscoverySettings: Hashable, Sendable {
    /// The pen to pick among those plugged in; nil: the first that matches the pen table.
    public var serial: String?
    /// The site's pens, added to the built-in table.
    public var usb: [PenTable.Entry] = []

    public init(serial: String? = nil, usb: [PenTable.Entry] = []) {
        self.serial = serial
        self.usb = usb
    }

    public var table: PenTable { .standard(adding: usb) }
    public var matcher: PenMatcher { PenMatcher(table: table, serial: serial) }
}

extension DaemonConfiguration.PenSpec {
    /// The in-process simulator: the only pen an accelerated clock may drive.
    public var isSimulated: Bool {
        if case .sim = self { true } else { false }
    }
}

extension DaemonConfiguration {
    static let interfaceRange = 0...255

    /// Reads `discovery`: `{"serial": "...", "usb": [{"vendor": "1209", "product": "0001",
    /// "interface": 0, "name": "..."}]}`.
    mutating func applyDiscovery(_ raw: Any, problems: inout [Problem]) {
        guard let object = raw as? [String: Any] else {
            problems.append(Problem(field: "discovery", value: "\(raw)", allowed: "an object {serial, usb}"))
            return
        }
        var reader = FieldReader(object, prefix: "discovery.", known: ["serial", "usb"])
        var settings = DiscoverySettings()
        settings.serial = reader.string("serial", allowed: "the serial number of the pen to use")
        if let entries = object["usb"] {
            if let list = entries as? [Any] {
                for (index, item) in list.enumerated() {
                    guard let fields = item as? [String: Any] else {
                        reader.add("usb[\(index)]", value: "\(item)", allowed: "an object {vendor, product, interface, name}")
                        continue
                    }
                    var entry = FieldReader(fields, prefix: "discovery.usb[\(index)].", known: ["vendor", "product", "interface", "name"])
                    let vendor = entry.hex16("vendor", required: true)
                    let product = entry.hex16("product", required: true)
                    let interface = entry.integer("interface", range: Self.interfaceRange)
                    let name = entry.string("name", allowed: "a name for people") ?? "site pen"
                    reader.add(entry)
                    if let vendor, let product {
                        settings.usb.append(PenTable.Entry(vendorID: vendor, productID: product, interface: interface, name: name))
                    }
                }
            } else {
                reader.add("usb", value: "\(entries)", allowed: "a list of {vendor, product, interface, name}")
            }
        }
        problems += reader
        discovery = settings
    }

    /// Reads `gpio`: `{"chip": "gpiochip0", "serial": "...", "lines": {"motor_enable":
    /// {"offset": 17}, "pedal": {"name": "PEDAL", "active_low": true, "debounce_us": 10000,
    /// "bias": "pull_up"}, ...}}`.
    mutating func applyGPIO(_ raw: Any, problems: inout [Problem]) {
        guard let object = raw as? [String: Any] else {
            problems.append(Problem(field: "gpio", value: "\(raw)", allowed: "an object {chip, serial, lines}"))
            return
        }
        var reader = FieldReader(object, prefix: "gpio.", known: ["chip", "serial", "lines"])
        let chip = reader.string("chip", allowed: "a chip name, path, number or label") ?? GPIOPenSettings.defaultChip
        let serial = reader.string("serial", allowed: "1 to 16 printable ASCII characters") ?? ""
        var lines: [GPIOPenLine: GPIOLineSpec] = [:]
        if let rawLines = object["lines"] {
            if let fields = rawLines as? [String: Any] {
                for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                    guard let line = GPIOPenLine(rawValue: key) else {
                        reader.add("lines.\(key)", value: "present", allowed: "one of \(GPIOPenLine.allCases.map(\.rawValue).joined(separator: ", "))")
                        continue
                    }
                    guard let spec = value as? [String: Any] else {
                        reader.add("lines.\(key)", value: "\(value)", allowed: "an object {offset | name, chip, active_low, debounce_us, bias}")
                        continue
                    }
                    if let parsed = Self.lineSpec(line, spec, into: &reader) { lines[line] = parsed }
                }
            } else {
                reader.add("lines", value: "\(rawLines)", allowed: "an object of lines")
            }
        }
        problems += reader
        gpio = GPIOPenSettings(chip: chip, serial: serial, lines: lines)
    }

    static func lineSpec(_ line: GPIOPenLine, _ object: [String: Any], into outer: inout FieldReader) -> GPIOLineSpec? {
        let prefix = "gpio.lines.\(line.rawValue)."
        var reader = FieldReader(object, prefix: prefix, known: ["offset", "name", "chip", "active_low", "debounce_us", "bias"])
        defer { outer.add(reader) }
        let offset = reader.integer("offset", range: Int.min...Int.max)
        let name = reader.string("name", allowed: "the line's name")
        let address: GPIOLineSpec.Address
        switch (offset, name) {
        case (let offset?, nil): address = .offset(offset)
        case (nil, let name?): address = .name(name)
        default:
            reader.add(String(prefix.dropLast()), value: offset != nil ? "both offset and name" : "neither offset nor name",
                       allowed: "exactly one of offset and name", absolute: true)
            return nil
        }
        var spec = GPIOLineSpec(chip: reader.string("chip", allowed: "a chip name, path, number or label"), address: address,
                                debounce: GPIOPenSettings.defaultDebounce(line))
        spec.activeLow = reader.boolean("active_low") ?? false
        if let us = reader.integer("debounce_us", range: Int.min...Int.max) { spec.debounce = .microseconds(us) }
        if let bias = reader.string("bias", allowed: "") {
            if let value = GPIOLineSpec.Bias(rawValue: bias) { spec.bias = value } else {
                reader.add("bias", value: bias, allowed: GPIOLineSpec.Bias.allCases.map(\.rawValue).joined(separator: ", "))
            }
        }
        return spec
    }

    /// The pen sections' problems, as part of `validate()`.
    func validatePens() -> [Problem] {
        var problems: [Problem] = []
        if case .gpio = pen, gpio == nil {
            problems.append(Problem(field: "gpio", value: "missing", allowed: "the GPIO pen's lines (docs/configuration.md): required with pen gpio"))
        }
        if let gpio { problems += gpio.validate(prefix: "gpio.") }
        if let serial = discovery.serial, serial.trimmingCharacters(in: .whitespaces).isEmpty {
            problems.append(Problem(field: "discovery.serial", value: "\"\(serial)\"", allowed: "a pen's serial number (or leave it out)"))
        }
        return problems
    }
}

extension FieldReader {
    /// A USB id as udev writes it: four hex digits ("1209").
    mutating func hex16(_ key: String, required: Bool) -> UInt16? {
        let allowed = "four hex digits, as lsusb shows (\"1209\")"
        guard let raw = body.object[key] else {
            if required { add(key, value: "missing", allowed: allowed) }
            return nil
        }
        guard let text = raw as? String, text.count == 4, let value = UInt16(text, radix: 16) else {
            add(key, value: "\(raw)", allowed: allowed)
            return nil
        }
        return value
    }
}

extension [DaemonConfiguration.Problem] {
    /// A reader's problems, as the configuration's.
    static func += (problems: inout Self, reader: FieldReader) {
        problems += reader.problems.map { DaemonConfiguration.Problem(field: $0.field, value: $0.value, allowed: $0.allowed) }
    }
}
