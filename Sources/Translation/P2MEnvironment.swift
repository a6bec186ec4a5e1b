import AArch64

/// What one P2M runs on and reports to, as associated types: the hardware
/// (memory, table pages, CPU TLB maintenance) and the hooks (IOMMU invalidation,
/// removal listener, change observer), so a P2M type names one environment
/// instead of six parameters. The hooks default to the no-op types.
///
/// A board names its hardware once and varies the hooks by refinement:
/// ```
/// protocol Board: P2MEnvironment where Memory == IdentityMemory, Pool == FramePool, TLB == BoardTLB {}
/// enum PlainDomain: Board {}
/// enum DeviceDomain: Board { typealias IOMMU = Hooks; typealias Observer = Hooks }
/// ```
/// Conforming types are never instantiated: an uninhabited `enum` is the idiom.
public protocol P2MEnvironment {
    associatedtype Memory: PhysicalMemory
    associatedtype Pool: TablePageSource
    associatedtype TLB: TLBMaintenance
    associatedtype IOMMU: IOMMUInvalidator = NoIOMMU
    associatedtype Listener: P2MEntryListener = NoEntryListener
    associatedtype Observer: P2MChangeObserver = NoChangeObserver
}
