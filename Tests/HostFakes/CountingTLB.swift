import AArch64
import Translation

/// CPU TLB maintenance that only counts invalidations, for tests and
/// benchmarks that measure something else.
public struct CountingTLB: TLBMaintenance {
    public private(set) var operations = 0
    public init() {}
    public mutating func invalidateStage2(vmid: UInt16, ipa: IPA, pages: UInt64) { operations &+= 1 }
    public mutating func invalidateVMID(_ vmid: UInt16) { operations &+= 1 }
    public mutating func synchronize() {}
}
