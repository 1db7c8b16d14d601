#if canImport(Glibc)
import CUDev
import Glibc
import StippleTransport

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// The tty devices libudev enumerates. This reads /sys and works without udevd; where udevd
/// runs, its database adds the properties its rules set (ID_*, DEVLINKS). Where it does not,
/// the USB identity (ID_VENDOR_ID, ID_MODEL_ID, ID_SERIAL_SHORT, ID_USB_INTERFACE_NUM,
/// ID_VENDOR, ID_MODEL) is filled from the attributes of the USB device and interface the tty
/// belongs to, so a pen is recognised either way.
public struct UdevEnumerator: DeviceEnumerator {
    public init() {}

    public func ttyDevices() throws(SystemCallError) -> [TTYDevice] {
        guard let udev = udev_new() else { throw SystemCallError("udev_new", errno: errno) }
        defer { udev_unref(udev) }
        guard let enumerate = udev_enumerate_new(udev) else { throw SystemCallError("udev_enumerate_new", errno: errno) }
        defer { udev_enumerate_unref(enumerate) }
        var result = udev_enumerate_add_match_subsystem(enumerate, "tty")
        if result < 0 { throw SystemCallError("udev_enumerate_add_match_subsystem tty", errno: -result) }
        result = udev_enumerate_scan_devices(enumerate)
        if result < 0 { throw SystemCallError("udev_enumerate_scan_devices", errno: -result) }
        var devices: [TTYDevice] = []
        var entry = udev_enumerate_get_list_entry(enumerate)
        while let current = entry {
            defer { entry = udev_list_entry_get_next(current) }
            guard let syspath = udev_list_entry_get_name(current),
                  let device = udev_device_new_from_syspath(udev, syspath) else { continue }
            devices.append(Self.ttyDevice(device))
            udev_device_unref(device)
        }
        return devices
    }

    /// A libudev device as a `TTYDevice` (also used for the monitor's events).
    static func ttyDevice(_ device: OpaquePointer) -> TTYDevice {
        var properties: [String: String] = [:]
        var entry = udev_device_get_properties_list_entry(device)
        while let current = entry {
            if let name = udev_list_entry_get_name(current) {
                properties[String(cString: name)] = udev_list_entry_get_value(current).map { String(cString: $0) } ?? ""
            }
            entry = udev_list_entry_get_next(current)
        }
        func attribute(_ device: OpaquePointer?, _ name: String) -> String? {
            guard let device, let value = udev_device_get_sysattr_value(device, name) else { return nil }
            let text = String(cString: value).trimmingTrailingWhitespace
            return text.isEmpty ? nil : text
        }
        // Parents belong to the child: not unreferenced here.
        let usbDevice = udev_device_get_parent_with_subsystem_devtype(device, "usb", "usb_device")
        if usbDevice != nil {
            let interface = udev_device_get_parent_with_subsystem_devtype(device, "usb", "usb_interface")
            let filled: [(String, String?)] = [
                ("ID_BUS", "usb"),
                ("ID_VENDOR_ID", attribute(usbDevice, "idVendor")),
                ("ID_MODEL_ID", attribute(usbDevice, "idProduct")),
                ("ID_SERIAL_SHORT", attribute(usbDevice, "serial")),
                ("ID_VENDOR", attribute(usbDevice, "manufacturer").map(TTYDevice.udevSafe)),
                ("ID_MODEL", attribute(usbDevice, "product").map(TTYDevice.udevSafe)),
                ("ID_USB_INTERFACE_NUM", attribute(interface, "bInterfaceNumber")),
            ]
            for case let (key, value?) in filled where properties[key] == nil { properties[key] = value }
        }
        let devpath = udev_device_get_devpath(device).map { String(cString: $0) } ?? properties["DEVPATH"] ?? ""
        let devnode = udev_device_get_devnode(device).map { String(cString: $0) }
        return TTYDevice(devpath: devpath, devnode: devnode, properties: properties)
    }
}

extension String {
    var trimmingTrailingWhitespace: String {
        var text = self
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}
#endif
