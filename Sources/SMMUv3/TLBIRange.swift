/// The range fields of a TLBI_NH_VA / TLBI_S2_IPA with TG = 4 KiB
/// (IHI 0070 4.4.1): `(num + 1) * 2^scale` pages. `num == 0 && scale == 0 &&
/// ttl == 0` is Reserved and raises CERROR_ILL, so the planner never builds it.
public struct TLBIRange: Equatable, Sendable {
    public var num: UInt8
    public var scale: UInt8
    /// Level of the leaf entries (1...3) or 0 for "any level".
    public var ttl: UInt8
    public init(num: UInt8, scale: UInt8, ttl: UInt8 = 0) {
        self.num = num
        self.scale = scale
        self.ttl = ttl
    }
    public var pages: UInt64 { (UInt64(num) + 1) << UInt64(scale) }
}
