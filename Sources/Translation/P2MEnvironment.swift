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
    /// A second table editor whose commits may run through this environment's
    /// P2M session type (`P2MSessionGuest`): the board's stage-1 mirror, so the
    /// image holds one copy of the engine's commit half instead of two. The
    /// default, `NoSessionGuest`, lends the session to nobody and costs nothing.
    associatedtype SessionGuest: P2MSessionGuest = NoSessionGuest
}

/// A table editor's sink that can ride in a P2M session (`P2MEnvironment.SessionGuest`):
/// a guest session forwards every report of the engine to it, and the P2M's own
/// sessions never reach it.
public protocol P2MSessionGuest: TableEditSink {
    /// False only for `NoSessionGuest`: a P2M session then has no guest branch at all.
    static var isPresent: Bool { get }
}

extension P2MSessionGuest {
    @inlinable @inline(__always) public static var isPresent: Bool { true }
}

/// No guest: the default `SessionGuest`, never instantiated.
public enum NoSessionGuest: P2MSessionGuest {
    @inlinable @inline(__always) public static var isPresent: Bool { false }
    public func invalidateLater(_ input: UInt64, count: UInt64) { switch self {} }
    public func invalidateNow(_ input: UInt64, count: UInt64) -> Bool { switch self {} }
    public func breakNotMade(_ input: UInt64, count: UInt64) { switch self {} }
    public func leafRemoved(_ input: UInt64, output: MFN, count: UInt64, descriptor: UInt64) { switch self {} }
    public func allocateTablePage() -> MFN { switch self {} }
    public var availableTablePages: Int { switch self {} }
    public func tableUnlinked(_ frame: MFN, clearedEntry: Int) { switch self {} }
    public func leafRewritten(_ input: UInt64, count: UInt64, old: UInt64, new: UInt64) { switch self {} }
    public func validEntries(_ table: MFN) -> Int { switch self {} }
    public func setValidEntries(_ table: MFN, _ count: Int) { switch self {} }
}
