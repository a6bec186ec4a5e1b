/// Typed addresses and frame numbers.
///
/// A guest frame number can never be passed where a machine frame number is
/// meant: each is its own struct, and every conversion between them is a
/// named function. (Hafnium's `paddr_t`/`ipaddr_t`, aarch64-paging's
/// `PhysicalAddress`.)

/// The translation granule this component uses everywhere: 4 KiB.
public enum PageSize {
    public static let shift4K: UInt64 = 12
    public static let bytes4K: UInt64 = 1 << shift4K
    public static let offsetMask4K: UInt64 = bytes4K - 1
    /// 2 MiB: a level-2 block with the 4 KiB granule.
    public static let shift2M: UInt64 = 21
    /// 1 GiB: a level-1 block with the 4 KiB granule.
    public static let shift1G: UInt64 = 30
}

/// A physical (machine) address, as the CPU's last stage and the SMMU output see it.
public struct PhysAddr: Hashable, Comparable, Sendable {
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }
    @inline(__always) public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: PhysAddr, b: PhysAddr) -> Bool { a.raw < b.raw }
    @inline(__always) public var isPageAligned: Bool { raw & PageSize.offsetMask4K == 0 }
    /// The frame that holds this address.
    @inline(__always) public var frame: MFN { MFN(raw: raw >> PageSize.shift4K) }
    @inline(__always) public var pageOffset: UInt64 { raw & PageSize.offsetMask4K }
    @inline(__always) public func adding(_ bytes: UInt64) -> PhysAddr { PhysAddr(raw: raw &+ bytes) }
}

/// An intermediate physical address: what a guest believes is physical.
public struct IPA: Hashable, Comparable, Sendable {
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }
    @inline(__always) public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: IPA, b: IPA) -> Bool { a.raw < b.raw }
    @inline(__always) public var isPageAligned: Bool { raw & PageSize.offsetMask4K == 0 }
    @inline(__always) public var frame: GFN { GFN(raw: raw >> PageSize.shift4K) }
    @inline(__always) public func adding(_ bytes: UInt64) -> IPA { IPA(raw: raw &+ bytes) }
}

/// An I/O virtual address: what a device puts on the bus before the SMMU.
public struct IOVA: Hashable, Comparable, Sendable {
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }
    @inline(__always) public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: IOVA, b: IOVA) -> Bool { a.raw < b.raw }
    /// With the stage-1 IOMMU mirror, a device's IOVA space is the guest's IPA space.
    @inline(__always) public init(_ ipa: IPA) { self.raw = ipa.raw }
    @inline(__always) public var asIPA: IPA { IPA(raw: raw) }
    @inline(__always) public func adding(_ bytes: UInt64) -> IOVA { IOVA(raw: raw &+ bytes) }
}

/// A machine frame number: a physical address shifted right by 12.
public struct MFN: Hashable, Comparable, Sendable {
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }
    @inline(__always) public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: MFN, b: MFN) -> Bool { a.raw < b.raw }
    @inline(__always) public var address: PhysAddr { PhysAddr(raw: raw << PageSize.shift4K) }
    @inline(__always) public func adding(_ frames: UInt64) -> MFN { MFN(raw: raw &+ frames) }
}

/// A guest frame number: an IPA shifted right by 12.
public struct GFN: Hashable, Comparable, Sendable {
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }
    @inline(__always) public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: GFN, b: GFN) -> Bool { a.raw < b.raw }
    @inline(__always) public var address: IPA { IPA(raw: raw << PageSize.shift4K) }
    @inline(__always) public func adding(_ frames: UInt64) -> GFN { GFN(raw: raw &+ frames) }
}
