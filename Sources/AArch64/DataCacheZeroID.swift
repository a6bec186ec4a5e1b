/// DCZID_EL0, the Data Cache Zero ID register (Arm ARM D23.2, "DCZID_EL0"):
/// whether `DC ZVA` may be used, and how many bytes one zeroes (the naturally
/// aligned block that holds its address). Decoded only here; the board reads
/// the register where it zeroes a page.
public struct DataCacheZeroID: Equatable, Sendable {
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }

    /// DCZID_EL0.DZP, bit 4: 1 = `DC ZVA` is prohibited at this EL.
    static let dzpBit: UInt64 = 1 << 4
    /// DCZID_EL0.BS, bits [3:0]: log2 of the block size in 4-byte words.
    static let bsMask: UInt64 = 0b1111

    @inline(__always) public var prohibited: Bool { raw & Self.dzpBit != 0 }
    /// Bytes one `DC ZVA` zeroes: 4 << BS (BS = 4, 64 bytes, on most cores; 9,
    /// 2 KiB, the largest the Arm ARM names; 15 would be 128 KiB).
    @inline(__always) public var blockBytes: UInt64 { 4 &<< (raw & Self.bsMask) }

    /// The address step for zeroing `bytes` bytes aligned to `bytes` (a power of
    /// two) with `DC ZVA`: the block size, or nil when the zeroing must be
    /// stores: `DC ZVA` prohibited, or a block larger than `bytes` (it would
    /// zero memory around them).
    @inline(__always) public func zeroingStep(forAligned bytes: UInt64) -> UInt64? {
        prohibited || blockBytes > bytes ? nil : blockBytes
    }
}
