import AArch64

/// Which TLB entries an unmap must remove.
public enum InvalidationScope: Equatable, Sendable {
    /// Stage-1 entries of one ASID (TLBI_NH_VA / TLBI_NH_ASID).
    case stage1(asid: UInt16, vmid: UInt16)
    /// Stage-2 entries of one VMID (TLBI_S2_IPA / TLBI_S12_VMALL).
    case stage2(vmid: UInt16)

    /// The one command that invalidates the whole scope: TLBI_NH_ASID or
    /// TLBI_S12_VMALL.
    public var invalidateAllCommand: Command {
        switch self {
        case .stage1(let asid, let vmid): .tlbiNHASID(asid: asid, vmid: vmid)
        case .stage2(let vmid): .tlbiS12VMAll(vmid: vmid)
        }
    }
}

/// Turns a run of 4 KiB pages into the fewest TLBI commands.
///
/// With IDR3.RIL the run is split into chunks of `(NUM+1) * 2^SCALE` pages,
/// taking the lowest set bit of what remains as SCALE each time (so at most one
/// command per five significant bits of the page count); a single-page chunk is
/// sent as a plain single-address TLBI because NUM = SCALE = TTL = 0 is
/// Reserved (IHI 0070 4.4.1). Without RIL it is one TLBI per page. Either way,
/// past `maximumCommands` a whole-ASID or whole-VMID invalidation is cheaper
/// than walking the range and is used instead.
public struct InvalidationPlanner: Equatable, Sendable {
    public var rangeInvalidation: Bool
    public var maximumCommands: Int
    /// Only leaf entries changed (no table was freed): lets the SMMU keep walk caches.
    public var leafOnly: Bool

    public static let defaultMaximumCommands = 64

    public init(rangeInvalidation: Bool, maximumCommands: Int = defaultMaximumCommands, leafOnly: Bool = false) {
        self.rangeInvalidation = rangeInvalidation
        self.maximumCommands = maximumCommands
        self.leafOnly = leafOnly
    }

    /// Largest SCALE the 5-bit field holds (SMMU_IDR5.DS = 0).
    static let maxScale = 31
    /// Largest NUM + 1.
    static let maxNumPlusOne: UInt64 = 32

    /// Number of range commands needed for `pages` pages.
    @_transparent public func rangeCommandCount(pages: UInt64) -> Int {
        var remaining = pages
        var count = 0
        while remaining != 0 {
            let chunk = Self.nextChunk(remaining)
            remaining -= chunk.pages
            count += 1
        }
        return count
    }

    @usableFromInline static func nextChunk(_ remaining: UInt64) -> (num: UInt64, scale: UInt64, pages: UInt64) {
        let scale = UInt64(min(remaining.trailingZeroBitCount, maxScale))
        let num = min((remaining >> scale) & (maxNumPlusOne - 1), maxNumPlusOne - 1)
        // remaining >> scale is odd (scale is the lowest set bit) unless capped
        // at maxScale, where num may mask to 0: take 31 << 31 pages then.
        let n = num == 0 ? maxNumPlusOne - 1 : num
        return (n, scale, n << scale)
    }

    /// Emit the commands invalidating `pages` pages from `first` (no CMD_SYNC:
    /// the caller's batch ends with exactly one). Transparent: on the board
    /// its one caller is `SMMUHandle.queue` (through `SMMU.queueInvalidation`).
    @_transparent public func plan(_ scope: InvalidationScope, first: PageNumber, pages: UInt64,
                     emit: (Command) -> Void) {
        guard pages != 0 else { return }
        let needed = rangeInvalidation ? rangeCommandCount(pages: pages) : (pages > UInt64(maximumCommands) ? Int.max : Int(pages))
        if needed > maximumCommands {
            emit(scope.invalidateAllCommand)
            return
        }
        // One loop for both: without RIL every chunk is one page. The scope's
        // fields are built once, as the single-page TLBI of address 0; each
        // command adds its range and address, fields the builders OR in
        // disjointly, so the result is exactly `command(scope, page, range)`
        // without a copy of both builders in the loop.
        let template = command(scope, 0, nil)
        let addressMask: UInt64
        switch scope {
        case .stage1: addressMask = Command.vaMask
        case .stage2: addressMask = Command.ipaMask
        }
        var page = first.raw
        var remaining = pages
        while remaining != 0 {
            let chunk = rangeInvalidation ? Self.nextChunk(remaining) : (num: 1, scale: 0, pages: 1)
            let range = chunk.pages == 1 ? nil : TLBIRange(num: UInt8(chunk.num - 1), scale: UInt8(chunk.scale))
            emit(Command(dw0: template.dw0 | Command.rangeFields0(range),
                         dw1: template.dw1 | Command.rangeFields1(range) | page << PageSize.shift4K & addressMask))
            page += chunk.pages
            remaining -= chunk.pages
        }
    }

    /// The TLBI of `scope` for `range` (nil: the single page) from `page`.
    @usableFromInline @_transparent func command(_ scope: InvalidationScope, _ page: UInt64, _ range: TLBIRange?) -> Command {
        let address = page << PageSize.shift4K
        switch scope {
        case .stage1(let asid, let vmid):
            return .tlbiNHVA(asid: asid, vmid: vmid, va: IOVA(address), range: range, leaf: leafOnly)
        case .stage2(let vmid): return .tlbiS2IPA(vmid: vmid, ipa: IPA(address), range: range, leaf: leafOnly)
        }
    }
}

/// A 4 KiB page number in an input address space (IOVA = IPA for the domains
/// this driver serves).
public struct PageNumber: Equatable, Comparable, Sendable {
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public init(_ gfn: GFN) { raw = gfn.raw }
    public static func < (a: PageNumber, b: PageNumber) -> Bool { a.raw < b.raw }
}
