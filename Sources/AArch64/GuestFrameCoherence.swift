/// Frames the hypervisor (or the host) wrote through its write-back cacheable
/// mapping, about to become a guest's: a guest may run with SCTLR_EL1.C = 0
/// (Linux's boot protocol starts that way), and then its accesses are
/// Non-cacheable and go to memory, past any dirty line the writer left in a
/// cache (Arm ARM "Mismatched memory attributes": the data must be cleaned to
/// the point of coherency first; KVM cleans each page before it maps it at
/// stage 2). Worse, a dirty line evicted later would overwrite what the guest
/// wrote meanwhile. So each such frame is cleaned and invalidated to PoC by VA
/// (DC CIVAC) and a DSB completes it before the mapping is made.
///
/// Not needed when stage 2 forces the guest's accesses to Normal write-back
/// (FEAT_S2FWB in use: HCR_EL2.FWB set, and stage-2 descriptors encoded for it):
/// the guest's accesses are then cacheable and coherent with the writer's.
public struct GuestFrameCoherence: Equatable, Sendable {
    /// HCR_EL2.FWB, bit 46 (FEAT_S2FWB; ID_AA64MMFR2_EL1.FWB says it exists).
    public static let hcrFWB: UInt64 = 1 << 46

    /// Stage 2 combines the guest's attributes into write-back: no clean needed.
    public let stage2ForcesWriteBack: Bool

    /// From the HCR_EL2 value the guest runs with.
    public init(hcr: UInt64) {
        stage2ForcesWriteBack = hcr & Self.hcrFWB != 0
    }

    /// Make `count` frames from `first` safe for a guest that may read them
    /// with its caches off: clean and invalidate them to PoC, then DSB. Returns
    /// whether maintenance was issued (not with FWB). Before the frames are mapped.
    @discardableResult
    public func prepareForGuest<Cache: CacheMaintenance>(_ first: MFN, count: UInt64 = 1,
                                                        cache: inout Cache) -> Bool {
        guard !stage2ForcesWriteBack, count > 0 else { return false }
        cache.cleanAndInvalidate(first.address, bytes: count << PageSize.shift4K)
        cache.synchronize()
        return true
    }
}
