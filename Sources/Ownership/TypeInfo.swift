import AArch64
import Translation

/// The second word of a frame entry: Xen's `type_info` in the arm64 layout
/// of seed 001 (xen/arch/arm/include/asm/mm.h after "Store frame GFN in
/// struct page_info on Arm").
///
/// ```
///   63   62 61 60                                                     0
/// +----+-------+--------------------------------------------------------+
/// |type| count |            xenheap GFN (all ones: none)                |
/// +----+-------+--------------------------------------------------------+
/// ```
/// `type` is PGT_writable_page, `count` the 2-bit PGT_count_mask, and the GFN
/// portion (PGT_gfn_mask) holds where a xenheap frame is mapped in its
/// guest's P2M, or the all-ones sentinel PGT_INVALID_XENHEAP_GFN. Every
/// allocation initialises the word to `TypeInfo.initializer`
/// (PGT_TYPE_INFO_INITIALIZER), so a frame never inherits a stale GFN.
public struct TypeInfo: Equatable, Sendable {
    public var raw: UInt64

    static let typeBit: UInt64 = 63
    static let countShift: UInt64 = 61
    static let countMask: UInt64 = 0b11
    /// Width of the GFN portion: 61 bits, more than the 52-bit IPA space needs.
    public static let gfnWidth: UInt64 = 61
    static let gfnMask: UInt64 = (1 << gfnWidth) - 1
    /// PGT_INVALID_XENHEAP_GFN: the all-ones GFN portion.
    public static let invalidGFN: UInt64 = gfnMask
    /// PGT_TYPE_INFO_INITIALIZER: type none, count 0, GFN invalid.
    public static let initializer = TypeInfo(raw: invalidGFN)
    /// The largest type count the 2-bit field holds.
    public static let maxTypeCount: UInt8 = UInt8(countMask)

    @inline(__always) public init(raw: UInt64) { self.raw = raw }

    public enum PageType: UInt8, Equatable, Sendable {
        /// PGT_none: mapped read-only wherever it is mapped.
        case none = 0
        /// PGT_writable_page.
        case writable = 1
    }

    public var type: PageType {
        get { raw >> Self.typeBit & 1 == 0 ? .none : .writable }
        set { raw = raw & ~(1 << Self.typeBit) | UInt64(newValue.rawValue) << Self.typeBit }
    }

    public var typeCount: UInt8 {
        get { UInt8(raw >> Self.countShift & Self.countMask) }
        set {
            precondition(UInt64(newValue) <= Self.countMask, "type count beyond its 2-bit field")
            raw = raw & ~(Self.countMask << Self.countShift) | UInt64(newValue) << Self.countShift
        }
    }

    /// Whether `gfn` fits the GFN portion without colliding with the sentinel.
    public static func canHold(_ gfn: GFN) -> Bool { gfn.raw < invalidGFN }

    /// The xenheap GFN, or nil for the invalid sentinel (page_get_xenheap_gfn).
    public var xenheapGFN: GFN? {
        get {
            let g = raw & Self.gfnMask
            return g == Self.invalidGFN ? nil : GFN(raw: g)
        }
        set {
            let g: UInt64
            if let gfn = newValue {
                precondition(Self.canHold(gfn), "GFN does not fit type_info")
                g = gfn.raw
            } else {
                g = Self.invalidGFN
            }
            raw = raw & ~Self.gfnMask | g
        }
    }
}
