#if canImport(Glibc)
import Glibc
#endif

/// What a caller of the API may do, from the peer credentials of its socket (H14).
public enum Role: Int, Comparable, Sendable, CustomStringConvertible {
    /// Not a member of either group: refused, whatever the socket's file mode says.
    case none = 0
    /// Group `stipple`: sessions, arming, stops.
    case technician = 1
    /// Group `stipple-eng`: everything a technician may, plus limits and bring-up calls.
    case engineer = 2

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .none: "none"
        case .technician: "technician"
        case .engineer: "engineer"
        }
    }
}

/// The process on the other end of the API socket.
public struct Peer: Sendable, Hashable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    public var userName: String
    public var role: Role

    /// How the audit log names this caller.
    public var description: String { "uid:\(uid)(\(userName))" }
}

/// Decides a caller's role from its uid. Group membership is looked up on every request
/// (`getgrouplist`), so a technician removed from the group loses access at once, without a
/// restart; a user added to a group gains it at their next request.
public struct RolePolicy: Sendable {
    public var technicianGroup: String
    public var engineerGroup: String
    /// The daemon's own user, and root: engineers (a developer's `make run`, an administrator).
    public var ownerUID: UInt32

    public init(technicianGroup: String = "stipple", engineerGroup: String = "stipple-eng", ownerUID: UInt32 = getuid()) {
        self.technicianGroup = technicianGroup
        self.engineerGroup = engineerGroup
        self.ownerUID = ownerUID
    }

    public func peer(pid: Int32, uid: UInt32, gid: UInt32) -> Peer {
        let name = Self.userName(uid) ?? String(uid)
        var role = Role.none
        if uid == ownerUID || uid == 0 {
            role = .engineer
        } else {
            let groups = Set(Self.groups(of: name, primary: gid).compactMap(Self.groupName))
            if groups.contains(engineerGroup) { role = .engineer } else if groups.contains(technicianGroup) { role = .technician }
        }
        return Peer(pid: pid, uid: uid, gid: gid, userName: name, role: role)
    }

    static func userName(_ uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: entry.pw_name)
    }

    static func groups(of user: String, primary: UInt32) -> [UInt32] {
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(user, primary, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(user, primary, &groups, &count) >= 0 else { return [primary] }
        }
        return Array(groups.prefix(Int(count)))
    }

    static func groupName(_ gid: UInt32) -> String? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: entry.gr_name)
    }

    static func groupID(_ name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }
}
