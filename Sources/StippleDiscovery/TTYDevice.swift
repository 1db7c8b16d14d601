/// A serial (tty) device as udev describes it: its properties — from udev's database or an
/// event (`udevadm info --query=property`, `udevadm monitor --property`), or, where udevd does
/// not run, the same keys filled from the USB device's attributes in /sys by `UdevEnumerator`.
public struct TTYDevice: Hashable, Sendable {
    /// The kernel's path under /sys (DEVPATH), e.g. `/devices/pci0000:00/.../tty/ttyACM0`.
    public var devpath: String
    /// The device node, e.g. `/dev/ttyACM0`; nil for a tty without one.
    public var devnode: String?
    /// udev's properties (ID_BUS, ID_VENDOR_ID, ID_MODEL_ID, ID_SERIAL_SHORT,
    /// ID_USB_INTERFACE_NUM, DEVLINKS, ...).
    public var properties: [String: String]

    public init(devpath: String, devnode: String?, properties: [String: String]) {
        self.devpath = devpath
        self.devnode = devnode
        self.properties = properties
    }

    /// The kernel's name of the node (`ttyACM0`).
    public var kernelName: String { String(devpath.split(separator: "/").last ?? "") }

    /// Whether the tty hangs off a USB device.
    public var isUSB: Bool { properties["ID_BUS"] == "usb" || properties["ID_VENDOR_ID"] != nil }

    public var vendorID: UInt16? { properties["ID_VENDOR_ID"].flatMap { UInt16($0, radix: 16) } }
    public var productID: UInt16? { properties["ID_MODEL_ID"].flatMap { UInt16($0, radix: 16) } }
    /// The USB interface the tty belongs to (a composite pen may have several).
    public var interfaceNumber: Int? { properties["ID_USB_INTERFACE_NUM"].flatMap { Int($0, radix: 16) } }
    /// The USB serial number (iSerialNumber); a Stipple pen's is its pen serial.
    public var serial: String? { properties["ID_SERIAL_SHORT"].flatMap { $0.isEmpty ? nil : $0 } }
    public var manufacturer: String? { properties["ID_VENDOR_FROM_DATABASE"] ?? properties["ID_VENDOR"] }
    public var model: String? { properties["ID_MODEL_FROM_DATABASE"] ?? properties["ID_MODEL"] }

    /// udev's links to the node (DEVLINKS).
    public var devlinks: [String] { (properties["DEVLINKS"] ?? "").split(separator: " ").map(String.init) }

    /// The stable `/dev/serial/by-id/` link: udev's own when its database has one, otherwise
    /// the name its rule (60-serial.rules) gives — `usb-<ID_SERIAL>-if<NN>` — which then
    /// exists only where udevd runs.
    public var byIDPath: String? {
        if let link = devlinks.first(where: { $0.hasPrefix("/dev/serial/by-id/") }) { return link }
        guard isUSB, let interface = properties["ID_USB_INTERFACE_NUM"] else { return nil }
        let idSerial = properties["ID_SERIAL"] ?? [properties["ID_VENDOR"], properties["ID_MODEL"], serial]
            .compactMap { $0 }.joined(separator: "_")
        guard !idSerial.isEmpty else { return nil }
        return "/dev/serial/by-id/usb-\(Self.udevSafe(idSerial))-if\(interface)"
    }

    /// udev's replacement of characters it does not put in link names (`udev_replace_chars`,
    /// whitespace to underscores, then anything outside a plain set to underscores).
    static func udevSafe(_ text: String) -> String {
        String(text.unicodeScalars.map { scalar -> Character in
            let allowed = scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "#+-.:=@_".unicodeScalars.contains(scalar))
            return allowed ? Character(scalar) : "_"
        })
    }
}
