import AArch64

/// One ordered record of the maintenance a P2M issues (CPU TLB and IOMMU),
/// of held references being released and of table pages being freed, shared
/// by every fake that reports into it so tests can check the order across them.
public final class EventLog {
    public enum Event: Equatable, Sendable {
        case tlbiRange(vmid: UInt16, page: UInt64, pages: UInt64)
        case tlbiVMID(UInt16)
        case tlbSync
        /// `TLBMaintenance.publishNewEntries` (DSB ISHST with no TLBI).
        case tlbPublish
        case iommuRange(vmid: UInt16, page: UInt64, pages: UInt64)
        case iommuAll(UInt16)
        case iommuSync
        case release
        case free(UInt64)
    }
    public var events: [Event] = []
    /// The VTTBR_EL2 value each CPU TLB invalidation ran under, in order.
    public var maintenanceVTTBRs: [VTTBR] = []
    /// The next this-many IOMMU waits do not confirm completion (a lost CMD_SYNC).
    public var failingIOMMUSyncs = 0
    public init() {}
}
