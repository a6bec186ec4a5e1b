import AArch64

/// The identity stage-2 map of the deprivileged host (pKVM's model): every
/// RAM frame except those the hypervisor owns, the host's device MMIO as
/// device memory, and nothing else. The SMMU's registers and the control
/// device's page are never mapped, so a host access to either traps.
///
/// The result is a sorted list of runs, each cut so that one run uses one
/// mapping granule: 4 KiB pages up to the first 2 MiB boundary, 2 MiB blocks
/// up to the first 1 GiB boundary, 1 GiB blocks in the middle, and back down
/// at the end (Arm ARM D8.2: with a 4 KiB granule, level-1 and level-2
/// descriptors may be blocks). The board feeds each run to the P2M as one
/// `map` call; nothing here touches hardware.
public struct HostStage2Layout: Sendable {
    /// More runs than this is refused. A bank split by every kind of exclusion
    /// gives at most five runs per piece; QEMU virt needs about twenty.
    public static let runCapacity = 128
    /// Bounds on the inputs; each is far above any real platform.
    public static let inputCapacity = 32

    /// Runs in ascending address order; no two overlap.
    public private(set) var runs = FixedList<128, HostStage2Run>()

    /// Computes the layout.
    ///
    /// - Parameters:
    ///   - ram: the RAM banks (`/memory`). Rounded inward to whole pages:
    ///     a partial page is not the host's to use.
    ///   - devices: MMIO windows the host owns. Rounded outward to whole pages
    ///     (a page cannot be mapped in part).
    ///   - hypervisorOwned: RAM the hypervisor keeps (its image, frame table,
    ///     table pools, SMMU tables and queues). Rounded outward; each must lie
    ///     inside one RAM bank.
    ///   - neverMapped: IPA ranges that must trap (the SMMU's registers, the
    ///     control page). Rounded outward; they may sit anywhere.
    ///   - ipaLimit: one past the highest IPA the stage 2 can translate
    ///     (`1 << T0SZ-derived bits`); every range must end at or below it.
    /// - Throws: a `HostStage2LayoutError` naming the first offending range;
    ///   nothing is returned then.
    public init(ram: some Sequence<MemoryRange>, devices: some Sequence<MemoryRange>,
                hypervisorOwned: some Sequence<MemoryRange>, neverMapped: some Sequence<MemoryRange>,
                ipaLimit: UInt64) throws(HostStage2LayoutError) {
        // The generic part only walks the four inputs; each range goes to one
        // non-generic routine, and the runs are cut by another (one copy of
        // each in the image, whatever sequence types the caller passes).
        var inputs = Inputs()
        for range in ram { try inputs.add(range, as: .ram, limit: ipaLimit) }
        for range in devices { try inputs.add(range, as: .device, limit: ipaLimit) }
        for range in hypervisorOwned { try inputs.add(range, as: .hypervisorOwned, limit: ipaLimit) }
        for range in neverMapped { try inputs.add(range, as: .neverMapped, limit: ipaLimit) }
        try emitAll(&inputs)
    }

    /// The checked inputs, in pages: RAM banks and device windows (disjoint),
    /// and the pages cut out of both.
    struct Inputs {
        var banks = PageIntervals()
        var windows = PageIntervals()
        var excluded = PageIntervals()

        @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
        init() {}

        enum Kind { case ram, device, hypervisorOwned, neverMapped }

        mutating func add(_ range: MemoryRange, as kind: Kind, limit: UInt64) throws(HostStage2LayoutError) {
            try HostStage2Layout.checkBounds(range, limit: limit)
            let frames = kind == .ram ? range.framesInside : range.framesTouching
            guard !frames.isEmpty else { return }
            let interval = PageInterval(first: frames.first.raw, end: frames.end.raw)
            let added: Bool
            switch kind {
            case .ram:
                if let other = banks.firstOverlap(with: interval) {
                    throw .ramOverlap(range.base, other: PhysAddr(raw: other.first << PageSize.shift4K))
                }
                added = banks.insertSorted(interval)
            case .device:
                if banks.firstOverlap(with: interval) != nil { throw .deviceOverlapsRAM(range.base) }
                added = windows.insertMerging(interval)
            case .hypervisorOwned:
                guard banks.contains(interval) else { throw .hypervisorRangeOutsideRAM(range.base) }
                added = excluded.insertMerging(interval)
            case .neverMapped:
                added = excluded.insertMerging(interval)
            }
            guard added else { throw .tooManyRanges(capacity: HostStage2Layout.inputCapacity) }
        }
    }

    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    private mutating func emitAll(_ inputs: inout Inputs) throws(HostStage2LayoutError) {
        // Banks and windows are disjoint (checked as they were added), so one
        // merge by base address visits every mapped piece in ascending order.
        // Slots are read in place (`inout`): nothing is copied per read.
        var b = 0
        var w = 0
        while b < inputs.banks.list.count || w < inputs.windows.list.count {
            let takeBank = w == inputs.windows.list.count
                || (b < inputs.banks.list.count && inputs.banks.list[slot: b].first < inputs.windows.list[slot: w].first)
            let piece = takeBank ? inputs.banks.list[slot: b] : inputs.windows.list[slot: w]
            if takeBank { b += 1 } else { w += 1 }
            try emit(piece, minus: &inputs.excluded, as: takeBank ? .normal : .device)
        }
    }

    /// What the host's stage 2 maps at `address`, or nil where it traps.
    public func memoryType(at address: PhysAddr) -> HostMemoryType? { lookUp(address) }

    /// Whether `address` is RAM the host owns at boot.
    public func isHostRAM(_ address: PhysAddr) -> Bool { lookUp(address) == .normal }

    /// `memoryType`'s body, inlined into `isHostRAM`, its one caller on the
    /// board (the public `memoryType` is then unused there and dropped).
    @_transparent
    func lookUp(_ address: PhysAddr) -> HostMemoryType? {
        // Binary search: runs are sorted and disjoint. One copy of the list,
        // then slots read in place: a plain subscript read copied all 3 KiB
        // of it at every step.
        var list = runs
        var low = 0
        var high = list.count
        while low < high {
            let mid = (low + high) / 2
            let run = list[slot: mid]
            if address.raw < run.base.raw {
                high = mid
            } else if address.raw - run.base.raw >= run.size {
                low = mid + 1
            } else {
                return run.memory
            }
        }
        return nil
    }


    static func checkBounds(_ range: MemoryRange, limit: UInt64) throws(HostStage2LayoutError) {
        guard range.end.raw <= limit else { throw .beyondIPASpace(range.base, size: range.size, limit: limit) }
    }

    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    private mutating func emit(_ piece: PageInterval, minus excluded: inout PageIntervals,
                               as memory: HostMemoryType) throws(HostStage2LayoutError) {
        var start = piece.first
        // Indexed, like every walk of a PageIntervals list: no iterator specialisation.
        // Cuts are sorted and disjoint. Past the last one, a zero-length cut at
        // the piece's end emits the tail, and a cut beyond the piece stops at its
        // end: one call site of `split`, which is then inlined.
        var index = 0
        while start < piece.end {
            let cut = index < excluded.list.count ? excluded.list[slot: index] : PageInterval(first: piece.end, end: piece.end)
            index += 1
            guard cut.end > start else { continue }
            let upTo = min(cut.first, piece.end)
            if upTo > start { try split(PageInterval(first: start, end: upTo), as: memory) }
            start = max(start, cut.end)
        }
    }

    /// Cuts one mapped piece into at most five single-granule runs.
    @_transparent  // one call site, in emit
    private mutating func split(_ piece: PageInterval, as memory: HostMemoryType) throws(HostStage2LayoutError) {
        var s = piece.first
        let e = piece.end
        let to2M = HostStage2Granule.block2M.pages
        let to1G = HostStage2Granule.block1G.pages
        // Rising edge: pages up to the first 2 MiB boundary, 2 MiB blocks up to
        // the first 1 GiB one; then the middle and the falling edge. Written
        // out, not looped over a literal array, so the board build allocates nothing.
        try take(&s, upTo: min(alignUp(s, to2M), e), .page4K, memory)
        try take(&s, upTo: min(alignUp(s, to1G), alignDown(e, to2M)), .block2M, memory)
        try take(&s, upTo: alignDown(e, to1G), .block1G, memory)
        try take(&s, upTo: alignDown(e, to2M), .block2M, memory)
        try take(&s, upTo: e, .page4K, memory)
    }

    private mutating func take(_ s: inout UInt64, upTo t: UInt64, _ granule: HostStage2Granule,
                               _ memory: HostMemoryType) throws(HostStage2LayoutError) {
        guard t > s else { return }
        try append(s, t, granule, memory)
        s = t
    }

    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    private mutating func append(_ first: UInt64, _ end: UInt64, _ granule: HostStage2Granule,
                                 _ memory: HostMemoryType) throws(HostStage2LayoutError) {
        let run = HostStage2Run(base: PhysAddr(raw: first << PageSize.shift4K),
                                size: (end - first) << PageSize.shift4K, granule: granule, memory: memory)
        guard runs.append(run) else { throw .tooManyRuns(capacity: Self.runCapacity) }
    }
}

/// How the host's stage 2 maps a run: Normal write-back RAM, or Device-nGnRE
/// (the board chooses the P2M types, e.g. `ramRW` and `mmioDirectDevice`).
public enum HostMemoryType: Equatable, Sendable {
    case normal
    case device
}

/// The translation granule a run is mapped with.
public enum HostStage2Granule: Equatable, Sendable {
    case page4K
    case block2M
    case block1G

    /// The granule's size in 4 KiB pages.
    public var pages: UInt64 {
        switch self {
        case .page4K: 1
        case .block2M: 1 << (PageSize.shift2M - PageSize.shift4K)
        case .block1G: 1 << (PageSize.shift1G - PageSize.shift4K)
        }
    }
    /// The granule's size in bytes.
    public var bytes: UInt64 { pages << PageSize.shift4K }
}

/// One identity run: `[base, base + size)` mapped with `granule`-sized
/// entries; `base` and `size` are multiples of the granule.
public struct HostStage2Run: Equatable, Sendable {
    public let base: PhysAddr
    public let size: UInt64
    public let granule: HostStage2Granule
    public let memory: HostMemoryType

    public init(base: PhysAddr, size: UInt64, granule: HostStage2Granule, memory: HostMemoryType) {
        self.base = base
        self.size = size
        self.granule = granule
        self.memory = memory
    }
}

/// Why the host layout was refused. Addresses are those of the input range.
public enum HostStage2LayoutError: Error, Equatable, Sendable {
    /// Two RAM banks share a page.
    case ramOverlap(PhysAddr, other: PhysAddr)
    /// A device window shares a page with RAM.
    case deviceOverlapsRAM(PhysAddr)
    /// A hypervisor-owned range is not entirely inside one RAM bank.
    case hypervisorRangeOutsideRAM(PhysAddr)
    /// A range ends above what the stage 2 can translate.
    case beyondIPASpace(PhysAddr, size: UInt64, limit: UInt64)
    case tooManyRanges(capacity: Int)
    case tooManyRuns(capacity: Int)
}

/// `[first, end)`: 4 KiB pages in the host layout, bytes in
/// `HostPlatformScan`'s device windows (nothing here depends on the unit).
struct PageInterval: Equatable {
    var first: UInt64
    var end: UInt64

    func overlaps(_ other: PageInterval) -> Bool { first < other.end && other.first < end }
}

/// A small sorted set of disjoint page intervals.
struct PageIntervals {
    var list = FixedList<32, PageInterval>()

    // Every read is `list[slot:]`, in place (the methods are `mutating` for
    // that alone): a plain subscript read copies the whole list.

    mutating func firstOverlap(with interval: PageInterval) -> PageInterval? {
        var index = 0
        while index < list.count {
            if list[slot: index].overlaps(interval) { return list[slot: index] }
            index += 1
        }
        return nil
    }

    /// Whether one interval of the set covers all of `interval`.
    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    mutating func contains(_ interval: PageInterval) -> Bool {
        var index = 0
        while index < list.count {
            if list[slot: index].first <= interval.first && interval.end <= list[slot: index].end { return true }
            index += 1
        }
        return false
    }

    /// Inserts a disjoint interval in order; `false` when full.
    mutating func insertSorted(_ interval: PageInterval) -> Bool {
        var index = 0
        while index < list.count && list[slot: index].first < interval.first { index += 1 }
        return list.insert(interval, at: index)
    }

    /// Inserts an interval, merging it with every one it overlaps or touches;
    /// `false` (and the set unchanged) when full.
    mutating func insertMerging(_ interval: PageInterval) -> Bool {
        // In place, with no copy to fall back on: the insert can fail only when
        // the list is full, and then no interval merged (a merge removes at
        // least one and frees its slot), so nothing was removed either.
        var merged = interval
        var index = 0
        while index < list.count {
            let existing = list[slot: index]
            if existing.first <= merged.end && merged.first <= existing.end {
                merged = PageInterval(first: min(existing.first, merged.first), end: max(existing.end, merged.end))
                list.remove(at: index)
            } else {
                index += 1
            }
        }
        return insertSorted(merged)
    }
}

@inline(__always) private func alignUp(_ value: UInt64, _ granule: UInt64) -> UInt64 {
    (value + granule - 1) & ~(granule - 1)
}

@inline(__always) private func alignDown(_ value: UInt64, _ granule: UInt64) -> UInt64 {
    value & ~(granule - 1)
}
