/// A guest domain's identifier, Xen's `domid_t`.
///
/// Values from `firstReserved` up are not guests (Xen's `DOMID_FIRST_RESERVED`,
/// 0x7FF0): the host and the hypervisor are owners of their own kind
/// (`PageOwner`), never a domain number, so no reserved id is ever stored.
public struct DomainID: Hashable, Comparable, Sendable {
    public let raw: UInt16
    /// Xen's DOMID_FIRST_RESERVED.
    public static let firstReserved: UInt16 = 0x7FF0
    @inline(__always) public init(_ raw: UInt16) { self.raw = raw }
    public static func < (a: DomainID, b: DomainID) -> Bool { a.raw < b.raw }
    public var isGuest: Bool { raw < Self.firstReserved }
}
