import StippleTransport
/// One serial device, judged: is it a pen, which one, and why (or why not).
public struct PenCandidate: Hashable, Sendable, CustomStringConvertible {
    public enum Verdict: Hashable, Sendable {
        /// A pen the daemon may drive.
        case pen
        /// A pen, but not the one configured or bound to the open session.
        case otherPen
        /// Not a pen.
        case notAPen
    }

    public var device: TTYDevice
    public var verdict: Verdict
    /// The pen table's entry it matched, if any.
    public var entry: PenTable.Entry?
    /// Why it is (or is not) a pen, in a sentence.
    public var reason: String
    /// Whether `byIDPath` exists on this machine (udevd made the link).
    public var byIDPathExists: Bool

    public var devnode: String? { device.devnode }
    public var byIDPath: String? { device.byIDPath }
    public var serial: String? { device.serial }
    /// `vvvv:pppp`, for a USB device.
    public var usbID: String? {
        guard let vendor = device.vendorID, let product = device.productID else { return nil }
        return PenTable.Entry.hex(vendor) + ":" + PenTable.Entry.hex(product)
    }
    public var isPen: Bool { verdict == .pen }

    /// The path to open: the stable by-id link when it exists, else the node.
    public var openPath: String? { byIDPathExists ? byIDPath : devnode }

    public var description: String {
        let node = devnode ?? device.devpath
        return "\(node)\(byIDPath.map { " (\($0))" } ?? ""): \(reason)"
    }
}

/// Judges tty devices against the pen table and, when one is wanted, a serial number.
public struct PenMatcher: Hashable, Sendable {
    public var table: PenTable
    /// The pen to pick (the configuration's `discovery.serial`, or the serial the open session
    /// is bound to); nil: any pen.
    public var serial: String?

    public init(table: PenTable = .standard(), serial: String? = nil) {
        self.table = table
        self.serial = serial
    }

    public func judge(_ device: TTYDevice, linkExists: (String) -> Bool = { _ in false }) -> PenCandidate {
        let exists = device.byIDPath.map(linkExists) ?? false
        func candidate(_ verdict: PenCandidate.Verdict, _ entry: PenTable.Entry?, _ reason: String) -> PenCandidate {
            PenCandidate(device: device, verdict: verdict, entry: entry, reason: reason, byIDPathExists: exists)
        }
        guard device.devnode != nil else { return candidate(.notAPen, nil, "no device node") }
        guard device.isUSB, let vendor = device.vendorID, let product = device.productID else {
            return candidate(.notAPen, nil, "not a USB device (a built-in or virtual serial port)")
        }
        let id = PenTable.Entry.hex(vendor) + ":" + PenTable.Entry.hex(product)
        let named = [device.manufacturer, device.model].compactMap { $0 }.joined(separator: " ")
        let sameID = table.entries.filter { $0.vendorID == vendor && $0.productID == product }
        guard !sameID.isEmpty else {
            return candidate(.notAPen, nil, "USB \(id)\(named.isEmpty ? "" : " (\(named))") is not in the pen table")
        }
        guard let entry = sameID.first(where: { $0.interface == nil || $0.interface == device.interfaceNumber }) else {
            let wanted = sameID.compactMap(\.interface).map { String(format2: $0) }.joined(separator: " or ")
            let actual = device.interfaceNumber.map { String(format2: $0) } ?? "unknown"
            return candidate(.notAPen, nil, "USB \(id) interface \(actual) is not the pen's link (interface \(wanted))")
        }
        if let wanted = serial {
            guard let actual = device.serial else {
                return candidate(.pen, entry, "matches \(entry); it reports no USB serial, so the handshake will tell whether it is \(wanted)")
            }
            guard Self.sameSerial(actual, wanted) else {
                return candidate(.otherPen, entry, "matches \(entry), but its serial \(actual) is not the pen wanted (\(wanted))")
            }
            return candidate(.pen, entry, "matches \(entry), serial \(actual) as wanted")
        }
        return candidate(.pen, entry, "matches \(entry)\(device.serial.map { ", serial \($0)" } ?? "")")
    }

    /// Every device judged, pens first, each group by node.
    public func candidates(_ devices: [TTYDevice], linkExists: (String) -> Bool = { _ in false }) -> [PenCandidate] {
        devices.map { judge($0, linkExists: linkExists) }.sorted { a, b in
            if a.isPen != b.isPen { return a.isPen }
            return (a.byIDPath ?? a.devnode ?? a.device.devpath) < (b.byIDPath ?? b.devnode ?? b.device.devpath)
        }
    }

    /// Serial numbers compare as the safety core compares them: trimmed, case-insensitive.
    static func sameSerial(_ a: String, _ b: String) -> Bool {
        func canonical(_ s: String) -> String { String(s.split(whereSeparator: \.isWhitespace).joined()).uppercased() }
        return canonical(a) == canonical(b)
    }
}

/// Pen discovery in one call, for `stippled --pen auto` and `stipplectl devices`: every tty
/// device on this machine, judged against the pen table.
///
/// ```swift
/// let candidates = try PenDiscovery().scan()
/// for candidate in candidates { print(candidate) }   // "/dev/ttyACM0 (/dev/serial/by-id/...): matches 1209:0001 ..."
/// let pen = candidates.first(where: \.isPen)
/// ```
public struct PenDiscovery: Sendable {
    public var matcher: PenMatcher
    public var enumerator: any DeviceEnumerator

    public init(table: PenTable = .standard(), serial: String? = nil, enumerator: any DeviceEnumerator = UdevEnumerator()) {
        matcher = PenMatcher(table: table, serial: serial)
        self.enumerator = enumerator
    }

    /// Every tty device, judged (pens first).
    public func scan() throws(SystemCallError) -> [PenCandidate] {
        matcher.candidates(try enumerator.ttyDevices(), linkExists: Self.exists)
    }

    static func exists(_ path: String) -> Bool { fileExists(path) }
}


/// Lists the tty devices of this machine.
public protocol DeviceEnumerator: Sendable {
    func ttyDevices() throws(SystemCallError) -> [TTYDevice]
}
