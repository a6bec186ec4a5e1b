import AArch64
import Translation

/// CPU TLB maintenance that only counts invalidations (and publish barriers),
/// for tests and benchmarks that measure something else.
public struct CountingTLB: TLBMaintenance {
    public private(set) var operations = 0
    public private(set) var publishBarriers = 0
    public init() {}
    public mutating func invalidateStage2(_ vttbr: VTTBR, ipa: IPA, pages: UInt64) { operations &+= 1 }
    public mutating func invalidateVMID(_ vttbr: VTTBR) { operations &+= 1 }
    public mutating func synchronize() {}
    public mutating func publishNewEntries() { publishBarriers &+= 1 }
}
