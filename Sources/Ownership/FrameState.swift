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
///
/// The state is kept as that word: reading a field is a shift and a mask, and
/// a transition builds the next word from the last with field setters, so a
/// compare-exchange loop decodes nothing it does not look at.
public struct FrameState: Equatable, Sendable {
    /// The encoded word, as stored in the frame entry. Canonical: the domain
    /// field is zero unless `owner` or `borrower` is a guest.
    public private(set) var raw: UInt64

    public var owner: PageOwner {
        @inline(__always) get {
            switch Self.field(raw, Self.ownerShift, Self.kindWidth) {
            case Self.ownerHost: return .host
            case Self.ownerHypervisor: return .hypervisor
            case Self.ownerGuest: return .guest(domainField)
            default: return .none
            }
        }
        @inline(__always) set {
            let code: UInt64
            switch newValue {
            case .none: code = Self.ownerNone
            case .host: code = Self.ownerHost
            case .hypervisor: code = Self.ownerHypervisor
            case .guest(let d):
                precondition(borrowerCode != Self.borrowerGuest, "a guest-owned frame cannot have a guest borrower")
                code = Self.ownerGuest
                domainField = d
            }
            if code != Self.ownerGuest && borrowerCode != Self.borrowerGuest { domainField = DomainID(0) }
            raw = Self.replacing(raw, Self.ownerShift, Self.kindWidth, code)
        }
    }

    public var hostState: HostPageState {
        // Two bits, and every two-bit value is a case.
        @_transparent get { HostPageState(twoBits: Self.field(raw, Self.hostStateShift, Self.kindWidth)) }
        @inline(__always) set { raw = Self.replacing(raw, Self.hostStateShift, Self.kindWidth, UInt64(newValue.rawValue)) }
    }

    public var borrower: Borrower {
        @inline(__always) get {
            switch borrowerCode {
            case Self.borrowerIOMMU: return .iommu
            case Self.borrowerHypervisor: return .hypervisor
            case Self.borrowerGuest: return .guest(domainField)
            default: return .none
            }
        }
        @inline(__always) set {
            let code: UInt64
            switch newValue {
            case .none: code = Self.borrowerNone
            case .iommu: code = Self.borrowerIOMMU
            case .hypervisor: code = Self.borrowerHypervisor
            case .guest(let d):
                precondition(ownerCode != Self.ownerGuest, "a guest-owned frame cannot have a guest borrower")
                code = Self.borrowerGuest
                domainField = d
            }
            if code != Self.borrowerGuest && ownerCode != Self.ownerGuest { domainField = DomainID(0) }
            raw = Self.replacing(raw, Self.borrowerShift, Self.kindWidth, code)
        }
    }

    /// Xen's `count_info & PGC_count_mask`: allocation, mappings of foreign
    /// or granted frames, and references held across a deferred flush.
    public var references: UInt32 {
        @inline(__always) get { UInt32(truncatingIfNeeded: Self.field(raw, Self.referencesShift, Self.referencesWidth)) }
        @inline(__always) set {
            precondition(newValue <= Self.maxReferences, "reference count beyond its field")
            raw = Self.replacing(raw, Self.referencesShift, Self.referencesWidth, UInt64(newValue))
        }
    }

    /// Live `hostShareDMA` shares of this frame.
    public var dmaShares: UInt16 {
        @inline(__always) get { UInt16(truncatingIfNeeded: Self.field(raw, Self.dmaSharesShift, Self.dmaSharesWidth)) }
        @inline(__always) set { raw = Self.replacing(raw, Self.dmaSharesShift, Self.dmaSharesWidth, UInt64(newValue)) }
    }

    /// Xen's `PGC_allocated`: the owner's own reference is one of `references`.
    public var isAllocated: Bool {
        @inline(__always) get { raw >> Self.allocatedBit & 1 != 0 }
        @inline(__always) set { raw = Self.replacing(raw, Self.allocatedBit, 1, newValue ? 1 : 0) }
    }

    /// Xen's `PGC_xen_heap`: the frame came from the hypervisor's heap.
    public var isXenheap: Bool {
        @inline(__always) get { raw >> Self.xenheapBit & 1 != 0 }
        @inline(__always) set { raw = Self.replacing(raw, Self.xenheapBit, 1, newValue ? 1 : 0) }
    }

    /// The frame was reachable by a device that does not snoop the CPU caches
    /// since its last clean+invalidate (seed 003).
    public var cacheFlushRequired: Bool {
        @inline(__always) get { raw >> Self.cacheFlushBit & 1 != 0 }
        @inline(__always) set { raw = Self.replacing(raw, Self.cacheFlushBit, 1, newValue ? 1 : 0) }
    }

    public init(owner: PageOwner, hostState: HostPageState, borrower: Borrower = .none,
                references: UInt32 = 0, dmaShares: UInt16 = 0, isAllocated: Bool = false,
                isXenheap: Bool = false, cacheFlushRequired: Bool = false) {
        raw = 0
        self.owner = owner
        self.hostState = hostState
        self.borrower = borrower
        self.references = references
        self.dmaShares = dmaShares
        self.isAllocated = isAllocated
        self.isXenheap = isXenheap
        self.cacheFlushRequired = cacheFlushRequired
    }

    /// Owned by the host, `owned`, no borrower, no DMA share, no reference:
    /// pKVM's "owned by the host and nobody borrows it", as one masked compare.
    @inline(__always) public var isExclusivelyHostOwned: Bool {
        let mask = Self.fieldMask(Self.ownerShift, Self.kindWidth) | Self.fieldMask(Self.hostStateShift, Self.kindWidth)
            | Self.fieldMask(Self.borrowerShift, Self.kindWidth) | Self.fieldMask(Self.dmaSharesShift, Self.dmaSharesWidth)
            | Self.fieldMask(Self.referencesShift, Self.referencesWidth)
        let expected = Self.ownerHost << Self.ownerShift | UInt64(HostPageState.owned.rawValue) << Self.hostStateShift
            | Self.borrowerNone << Self.borrowerShift
        return raw & mask == expected
    }

    /// A host-owned frame nobody else touches: every RAM frame at boot.
    /// `owner == o`, compared on the encoded fields: no `PageOwner` is decoded
    /// and no enum `==` called (one fewer call on the DMA share paths, and the
    /// board image needs no derived `==` for the owner and borrower enums).
    @_transparent public func isOwned(by o: PageOwner) -> Bool {
        switch o {
        case .none: return ownerCode == Self.ownerNone
        case .host: return ownerCode == Self.ownerHost
        case .hypervisor: return ownerCode == Self.ownerHypervisor
        case .guest(let d): return ownerCode == Self.ownerGuest && domainField == d
        }
    }

    /// `borrower == b`, compared on the encoded fields (see `isOwned(by:)`).
    @inline(__always) public func isBorrowed(by b: Borrower) -> Bool {
        switch b {
        case .none: return borrowerCode == Self.borrowerNone
        case .iommu: return borrowerCode == Self.borrowerIOMMU
        case .hypervisor: return borrowerCode == Self.borrowerHypervisor
        case .guest(let d): return borrowerCode == Self.borrowerGuest && domainField == d
        }
    }

    /// Computed from constants: a stored `static let` was a lazily initialised
    /// global on the board (its addressor and once-initialiser at every use).
    public static var hostOwned: FrameState {
        @inline(__always) get {
            FrameState(raw: Self.ownerHost << Self.ownerShift | UInt64(HostPageState.owned.rawValue) << Self.hostStateShift
                | Self.borrowerNone << Self.borrowerShift)
        }
    }

    /// The whole states the donations write, built from the encoding's
    /// constants: `init(owner:hostState:...)` sets each field through its
    /// setter, and was a call (with the owner setter) on the board for each.
    /// FrameStateTests pins them to that initialiser.
    static var hypervisorOwned: FrameState {
        @inline(__always) get {
            FrameState(raw: Self.ownerHypervisor << Self.ownerShift | UInt64(HostPageState.noPage.rawValue) << Self.hostStateShift)
        }
    }

    /// A xenheap frame: the hypervisor's, `PGC_xen_heap`.
    static var xenheapOwned: FrameState {
        @_transparent get { FrameState(raw: hypervisorOwned.raw | 1 << Self.xenheapBit) }
    }

    /// A frame donated to `domain`: its owner reference, allocated, no host page.
    @_transparent static func donated(to domain: DomainID) -> FrameState {
        FrameState(raw: Self.ownerGuest << Self.ownerShift | UInt64(HostPageState.noPage.rawValue) << Self.hostStateShift
            | UInt64(domain.raw) << Self.domainShift | 1 << Self.referencesShift | 1 << Self.allocatedBit)
    }

    // MARK: encoding

    static let dmaSharesShift: UInt64 = 0
    static let dmaSharesWidth: UInt64 = 16
    @usableFromInline static let domainShift: UInt64 = 16
    @usableFromInline static let domainWidth: UInt64 = 16
    @usableFromInline static let ownerShift: UInt64 = 32
    @usableFromInline static let hostStateShift: UInt64 = 34
    static let borrowerShift: UInt64 = 36
    @usableFromInline static let kindWidth: UInt64 = 2
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
    @usableFromInline static let ownerNone: UInt64 = 0, ownerHost: UInt64 = 1, ownerHypervisor: UInt64 = 2, ownerGuest: UInt64 = 3
    static let borrowerNone: UInt64 = 0, borrowerIOMMU: UInt64 = 1, borrowerHypervisor: UInt64 = 2,
               borrowerGuest: UInt64 = 3

    @usableFromInline @inline(__always) static func field(_ raw: UInt64, _ shift: UInt64, _ width: UInt64) -> UInt64 {
        (raw &>> shift) & ((1 &<< width) &- 1)
    }

    @inline(__always) static func fieldMask(_ shift: UInt64, _ width: UInt64) -> UInt64 {
        ((1 &<< width) &- 1) &<< shift
    }

    /// `raw` with the `width`-bit field at `shift` set to `value` (which fits).
    @inline(__always) static func replacing(_ raw: UInt64, _ shift: UInt64, _ width: UInt64, _ value: UInt64) -> UInt64 {
        let mask = ((1 &<< width) &- 1) &<< shift
        return raw & ~mask | (value &<< shift) & mask
    }

    @usableFromInline @inline(__always) var ownerCode: UInt64 { Self.field(raw, Self.ownerShift, Self.kindWidth) }
    @inline(__always) var borrowerCode: UInt64 { Self.field(raw, Self.borrowerShift, Self.kindWidth) }
    @usableFromInline @inline(__always) var domainField: DomainID {
        get { DomainID(UInt16(truncatingIfNeeded: Self.field(raw, Self.domainShift, Self.domainWidth))) }
        set { raw = Self.replacing(raw, Self.domainShift, Self.domainWidth, UInt64(newValue.raw)) }
    }

    /// The state a frame entry's word encodes. Domain bits that name no
    /// guest (neither `owner` nor `borrower` is one) are dropped, so equal
    /// states have equal words.
    @inline(__always)
    public init(raw: UInt64) {
        self.raw = raw
        if Self.field(raw, Self.ownerShift, Self.kindWidth) != Self.ownerGuest
            && Self.field(raw, Self.borrowerShift, Self.kindWidth) != Self.borrowerGuest {
            domainField = DomainID(0)
        }
    }
}

extension HostPageState {
    /// The state of a two-bit field: every value 0...3 is a case.
    @_transparent @usableFromInline init(twoBits: UInt64) {
        switch twoBits & 3 {
        case 0: self = .owned
        case 1: self = .sharedOwned
        case 2: self = .sharedBorrowed
        default: self = .noPage
        }
    }
}
