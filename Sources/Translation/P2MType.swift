import AArch64

/// What a P2M entry is, with the meaning Xen on Arm gives `p2m_type_t`
/// (xen/arch/arm/include/asm/p2m.h); the raw value is stored in the stage-2
/// descriptor's four software bits, so it must stay below 16.
public enum P2MType: UInt8, Sendable, CaseIterable {
    case invalid = 0
    /// Normal guest RAM.
    case ramRW = 1
    /// Read-only guest RAM (log-dirty, or a page the guest must not write).
    case ramRO = 2
    /// Device MMIO passed through, Device-nGnRE.
    case mmioDirectDevice = 3
    /// MMIO mapped Normal Non-cacheable (e.g. a framebuffer).
    case mmioDirectNC = 4
    /// MMIO mapped Normal Write-Back (e.g. shared on-chip RAM).
    case mmioDirectCacheable = 5
    /// A page of another domain mapped by a privileged domain (holds a reference).
    case mapForeignRW = 6
    case mapForeignRO = 7
    /// A grant mapping.
    case grantMapRW = 8
    case grantMapRO = 9
    /// An IOMMU-only mapping of a direct-mapped domain.
    case iommuMapRW = 10
    case iommuMapRO = 11

    /// Decode the software bits of a valid descriptor; nil for a value this P2M never writes.
    @_transparent public init?(softwareBits: UInt8) { self.init(rawValue: softwareBits) }

    /// Writable by the guest before any access restriction (Xen's `p2m_set_permission`).
    @inlinable public var isWritable: Bool {
        switch self {
        case .ramRW, .mmioDirectDevice, .mmioDirectNC, .mmioDirectCacheable,
             .mapForeignRW, .grantMapRW, .iommuMapRW: true
        case .invalid, .ramRO, .mapForeignRO, .grantMapRO, .iommuMapRO: false
        }
    }
    /// Only RAM is executable; everything else is XN (as Xen sets `p2m.xn`).
    @inlinable public var isExecutable: Bool { self == .ramRW || self == .ramRO }

    @inlinable public var memoryAttribute: Stage2MemoryAttribute {
        switch self {
        case .mmioDirectDevice: .deviceNGnRE
        case .mmioDirectNC: .normalNonCacheable
        default: .normalWriteBack
        }
    }
    /// Xen maps device and non-cacheable MMIO outer-shareable, memory inner-shareable.
    @inlinable public var shareability: Shareability {
        switch self {
        case .mmioDirectDevice, .mmioDirectNC: .outer
        default: .inner
        }
    }
    /// Whether a stage-1 IOMMU mirror should map this type for DMA, and how: nil = not
    /// DMA-reachable; otherwise whether devices may write. RAM, grants, foreign pages and
    /// IOMMU-only mappings are DMA targets (Xen's `p2m_get_iommu_flags`, seed 002 for
    /// grants); MMIO is not, so one device cannot DMA into another's registers.
    public var dmaWritable: Bool? {
        switch self {
        case .ramRW, .mapForeignRW, .grantMapRW, .iommuMapRW: true
        case .ramRO, .mapForeignRO, .grantMapRO, .iommuMapRO: false
        case .invalid, .mmioDirectDevice, .mmioDirectNC, .mmioDirectCacheable: nil
        }
    }

    /// `changeType` transitions the P2M accepts: the RW/RO halves of one kind
    /// (log-dirty for RAM; Xen's `p2m_change_type_range`), and write-protecting a
    /// grant or foreign mapping. Anything else changes what a page *is* and must go
    /// through unmap + map. Transparent: `P2M.changeType` is its one caller on the board.
    @_transparent public func canChange(to other: P2MType) -> Bool {
        let target = Self.changeTargets >> (UInt64(rawValue) &* 4) & 0xF
        return target != 0 && target == UInt64(other.rawValue)
    }

    /// The one type each type may change to, as a table rather than a switch over
    /// pairs (a fraction of its code): nibble n holds the raw value type n may become,
    /// 0 (`.invalid`, never a target) for none. ramRW <-> ramRO, iommuMapRW <->
    /// iommuMapRO, grantMapRW -> grantMapRO, mapForeignRW -> mapForeignRO.
    @usableFromInline static var changeTargets: UInt64 {
        2 << (4 * 1) | 1 << (4 * 2) | 7 << (4 * 6) | 9 << (4 * 8) | 11 << (4 * 10) | 10 << (4 * 11)
    }
}

/// An access restriction on top of the type (Xen's `p2m_access_t`, mem_access):
/// it can only remove permissions the type grants.
public struct P2MAccess: Equatable, Sendable {
    public var raw: UInt8
    @inline(__always) public init(raw: UInt8) { self.raw = raw }
    public static let read = P2MAccess(raw: 1 << 0)
    public static let write = P2MAccess(raw: 1 << 1)
    public static let execute = P2MAccess(raw: 1 << 2)
    public static let none = P2MAccess(raw: 0)
    public static let all = P2MAccess(raw: 0b111)
    public static let readWrite = P2MAccess(raw: 0b011)
    public static let readExecute = P2MAccess(raw: 0b101)
    @inline(__always) public func contains(_ other: P2MAccess) -> Bool { raw & other.raw == other.raw }
    @inline(__always) public func union(_ other: P2MAccess) -> P2MAccess { P2MAccess(raw: raw | other.raw) }
}

extension P2MType {
    /// The stage-2 leaf attributes of this type under `access`. Inlinable, with
    /// what it reads, so a map in another module folds it into a few instructions
    /// instead of calling out on every map (the board's one module does anyway).
    @inlinable public func stage2Attributes(access: P2MAccess = .all) -> Stage2Attributes {
        let read = access.contains(.read)
        let write = isWritable && access.contains(.write)
        let s2ap: Stage2Access = read ? (write ? .readWrite : .readOnly) : (write ? .writeOnly : .none)
        let xn: Stage2ExecuteNever = isExecutable && access.contains(.execute) ? .executable : .never
        return Stage2Attributes(memory: memoryAttribute, access: s2ap, shareability: shareability,
                                executeNever: xn, softwareBits: rawValue)
    }
}
