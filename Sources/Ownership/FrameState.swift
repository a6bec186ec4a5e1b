/// The first word of a frame entry: owner, pKVM page state, Xen's
/// `count_info` (general reference count and allocation/xenheap flags), the
/// DMA share count (seed 004's 16-bit refcount in the hyp vmemmap) and the
/// cache-flush-required flag (seed 003's `cache_flush_required`, per frame).
///
/// Seed 004's review (Jean-Philippe Brucker) concludes that owner and share
/// state belong in the per-frame metadata next to the refcount, so that a
/// transition is one compare-exchange of one word; this is that word.
///
/// ```
///  63                 41 40 39 38 37 36 35 34 33 32 31        16 15         0
/// +---------------------+--+--+--+-----+-----+-----+------------+------------+
/// |   references (23)   |CF|XH|AL| brw | hst | own | domain id  | DMA shares |
/// +---------------------+--+--+--+-----+-----+-----+------------+------------+
/// ```
/// `domain id` names the guest in whichever of `owner`/`borrower` is a guest;
/// a frame never has a guest owner and a guest borrower at once (guests lend
/// to each other through grants, which pin the frame with `references`).
public struct FrameState: Equatable, Sendable {
    public var owner: PageOwner
    public var hostState: HostPageState
    public var borrower: Borrower
    /// Xen's `count_info & PGC_count_mask`: allocation, mappings of foreign
    /// or granted frames, and references held across a deferred flush.
    public var references: UInt32
    /// Live `hostShareDMA` shares of this frame.
    public var dmaShares: UInt16
    /// Xen's `PGC_allocated`: the owner's own reference is one of `references`.
    public var isAllocated: Bool
    /// Xen's `PGC_xen_heap`: the frame came from the hypervisor's heap.
    public var isXenheap: Bool
    /// The frame was reachable by a device that does not snoop the CPU caches
    /// since its last clean+invalidate (seed 003).
    public var cacheFlushRequired: Bool

    public init(owner: PageOwner, hostState: HostPageState, borrower: Borrower = .none,
                references: UInt32 = 0, dmaShares: UInt16 = 0, isAllocated: Bool = false,
                isXenheap: Bool = false, cacheFlushRequired: Bool = false) {
        self.owner = owner
        self.hostState = hostState
        self.borrower = borrower
        self.references = references
        self.dmaShares = dmaShares
        self.isAllocated = isAllocated
        self.isXenheap = isXenheap
        self.cacheFlushRequired = cacheFlushRequired
    }

    /// A host-owned frame nobody else touches: every RAM frame at boot.
    public static let hostOwned = FrameState(owner: .host, hostState: .owned)

    // MARK: encoding

    static let dmaSharesShift: UInt64 = 0
    static let dmaSharesWidth: UInt64 = 16
    static let domainShift: UInt64 = 16
    static let domainWidth: UInt64 = 16
    static let ownerShift: UInt64 = 32
    static let hostStateShift: UInt64 = 34
    static let borrowerShift: UInt64 = 36
    static let kindWidth: UInt64 = 2
    static let allocatedBit: UInt64 = 38
    static let xenheapBit: UInt64 = 39
    static let cacheFlushBit: UInt64 = 40
    static let referencesShift: UInt64 = 41
    static let referencesWidth: UInt64 = 23

    /// The largest DMA share count; one more share is refused, never wrapped.
    public static let maxDMAShares: UInt16 = UInt16.max
    /// The largest reference count; one more reference is refused, never wrapped.
    public static let maxReferences: UInt32 = UInt32((1 << referencesWidth) - 1)

    // Kind codes inside the two-bit owner and borrower fields.
    static let ownerNone: UInt64 = 0, ownerHost: UInt64 = 1, ownerHypervisor: UInt64 = 2, ownerGuest: UInt64 = 3
    static let borrowerNone: UInt64 = 0, borrowerIOMMU: UInt64 = 1, borrowerHypervisor: UInt64 = 2,
               borrowerGuest: UInt64 = 3

    @inline(__always) static func field(_ raw: UInt64, _ shift: UInt64, _ width: UInt64) -> UInt64 {
        (raw >> shift) & ((1 << width) - 1)
    }

    public init(raw: UInt64) {
        let domain = DomainID(UInt16(truncatingIfNeeded: Self.field(raw, Self.domainShift, Self.domainWidth)))
        switch Self.field(raw, Self.ownerShift, Self.kindWidth) {
        case Self.ownerHost: owner = .host
        case Self.ownerHypervisor: owner = .hypervisor
        case Self.ownerGuest: owner = .guest(domain)
        default: owner = .none
        }
        switch Self.field(raw, Self.borrowerShift, Self.kindWidth) {
        case Self.borrowerIOMMU: borrower = .iommu
        case Self.borrowerHypervisor: borrower = .hypervisor
        case Self.borrowerGuest: borrower = .guest(domain)
        default: borrower = .none
        }
        hostState = HostPageState(rawValue: UInt8(Self.field(raw, Self.hostStateShift, Self.kindWidth)))!
        dmaShares = UInt16(truncatingIfNeeded: Self.field(raw, Self.dmaSharesShift, Self.dmaSharesWidth))
        references = UInt32(truncatingIfNeeded: Self.field(raw, Self.referencesShift, Self.referencesWidth))
        isAllocated = raw >> Self.allocatedBit & 1 != 0
        isXenheap = raw >> Self.xenheapBit & 1 != 0
        cacheFlushRequired = raw >> Self.cacheFlushBit & 1 != 0
    }

    public var raw: UInt64 {
        var domain: UInt64 = 0
        let ownerCode: UInt64
        switch owner {
        case .none: ownerCode = Self.ownerNone
        case .host: ownerCode = Self.ownerHost
        case .hypervisor: ownerCode = Self.ownerHypervisor
        case .guest(let d): ownerCode = Self.ownerGuest; domain = UInt64(d.raw)
        }
        let borrowerCode: UInt64
        switch borrower {
        case .none: borrowerCode = Self.borrowerNone
        case .iommu: borrowerCode = Self.borrowerIOMMU
        case .hypervisor: borrowerCode = Self.borrowerHypervisor
        case .guest(let d):
            precondition(ownerCode != Self.ownerGuest, "a guest-owned frame cannot have a guest borrower")
            borrowerCode = Self.borrowerGuest; domain = UInt64(d.raw)
        }
        precondition(references <= Self.maxReferences, "reference count beyond its field")
        return UInt64(dmaShares) << Self.dmaSharesShift
            | domain << Self.domainShift
            | ownerCode << Self.ownerShift
            | UInt64(hostState.rawValue) << Self.hostStateShift
            | borrowerCode << Self.borrowerShift
            | (isAllocated ? 1 << Self.allocatedBit : 0)
            | (isXenheap ? 1 << Self.xenheapBit : 0)
            | (cacheFlushRequired ? 1 << Self.cacheFlushBit : 0)
            | UInt64(references) << Self.referencesShift
    }
}
