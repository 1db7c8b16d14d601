/// Which USB devices are pens: vendor and product ids, and the interface that carries the
/// pen's serial link. docs/configuration.md documents the built-in entries; a site adds its
/// pens (`discovery.usb` in the configuration).
public struct PenTable: Hashable, Sendable {
    public struct Entry: Hashable, Sendable, CustomStringConvertible {
        public var vendorID: UInt16
        public var productID: UInt16
        /// The USB interface of the pen's link (CDC-ACM data); nil: any interface.
        public var interface: Int?
        /// What the pen is, for people.
        public var name: String

        public init(vendorID: UInt16, productID: UInt16, interface: Int?, name: String) {
            self.vendorID = vendorID
            self.productID = productID
            self.interface = interface
            self.name = name
        }

        public var usbID: String { Self.hex(vendorID) + ":" + Self.hex(productID) }

        public var description: String {
            "\(usbID)\(interface.map { " interface \(String(format2: $0))" } ?? "") (\(name))"
        }

        static func hex(_ value: UInt16) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// The built-in entries. Stipple's development pens enumerate as pid.codes' test PID
    /// (1209:0001) with the link on interface 0; a production pen's own VID:PID is added by
    /// the site's configuration (or here, when one is allocated).
    public static let builtIn: [Entry] = [
        Entry(vendorID: 0x1209, productID: 0x0001, interface: 0, name: "Stipple development pen (CDC-ACM)"),
    ]

    /// The built-in entries and the site's.
    public static func standard(adding site: [Entry] = []) -> PenTable {
        PenTable(entries: builtIn + site)
    }
}

extension String {
    /// Two hex digits, as udev writes ID_USB_INTERFACE_NUM.
    init(format2 value: Int) {
        let digits = String(value, radix: 16)
        self = digits.count < 2 ? "0" + digits : digits
    }
}
