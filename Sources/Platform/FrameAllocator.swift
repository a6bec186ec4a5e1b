import AArch64

/// Physical frames for the hypervisor: table pages, queues, stream tables,
/// guest RAM.
///
/// The free space is a sorted table of disjoint, non-adjacent frame ranges
/// with a fixed capacity, so the allocator's own footprint does not grow with
/// RAM (a frame table, if wanted, is allocated *from* it). It is built from
/// the RAM banks minus every range that must never be handed out: the image,
/// the DTB blob (QEMU places it inside RAM), `/memreserve/` entries and
/// `/reserved-memory` regions. Banks lose their partial pages at both ends;
/// exclusions grow to whole pages, so a partially reserved page is never used.
public struct FrameAllocator {
    public static let freeRangeCapacity = 112
    public static let bankCapacity = 16
    /// Every reserved range a DTB may state (`PlatformDescription.reservedRanges`) plus the image and the blob.
    public static let exclusionCapacity = 96

    /// Sorted by `first`, disjoint, never adjacent (adjacent ranges merge).
    public private(set) var freeRanges = FixedList<112, FrameRange>()
    /// The bank frames, sorted and merged: what `free` accepts. At most
    /// `bankCapacity` ranges, checked in `init`; the list has the free list's
    /// type so that the image has one `insertMerging` (and one of each
    /// `FixedList` method) for both.
    private var managed = FixedList<112, FrameRange>()
    /// Whole-page exclusions, as given; at most `exclusionCapacity` (checked
    /// in `init`), in a list of the free list's type for the same reason.
    private var exclusions = FixedList<112, FrameRange>()

    /// Builds the allocator from RAM `banks` minus `excluded` ranges.
    public init(banks: some Sequence<MemoryRange>, excluding excluded: some Sequence<MemoryRange>)
        throws(FrameAllocatorError) {
        for bank in banks {
            let frames = bank.framesInside
            if frames.isEmpty { continue }
            guard FrameAllocator.insertMerging(frames, into: &managed), managed.count <= FrameAllocator.bankCapacity else {
                throw .tooManyBanks(capacity: FrameAllocator.bankCapacity)
            }
        }
        // `managed` is sorted, merged and of the free list's type: everything
        // in the banks is free until the exclusions are cut out.
        freeRanges = managed
        for range in excluded {
            let frames = range.framesTouching
            if frames.isEmpty { continue }
            guard exclusions.count < FrameAllocator.exclusionCapacity, exclusions.append(frames) else {
                throw .tooManyExclusions(capacity: FrameAllocator.exclusionCapacity)
            }
            guard FrameAllocator.subtract(frames, from: &freeRanges) else {
                throw .freeListFull(capacity: FrameAllocator.freeRangeCapacity)
            }
        }
    }

    /// Builds the allocator for the board: every bank of `platform`, minus
    /// the hypervisor `image`, the `deviceTree` blob and every reservation
    /// the DTB states.
    @_transparent  // one caller on the board (in Hypervisor): inlined there
    public init(platform: PlatformDescription, image: MemoryRange, deviceTree: MemoryRange)
        throws(FrameAllocatorError) {
        var excluded = platform.reservedRanges
        guard excluded.append(image), excluded.append(deviceTree) else {
            throw .tooManyExclusions(capacity: FrameAllocator.exclusionCapacity)
        }
        try self.init(banks: platform.memoryBanks, excluding: excluded)
    }

    /// Frames currently free.
    public var freeFrameCount: UInt64 {
        @_transparent  // one caller on the board (in Hypervisor): inlined there
        get {
            // One copy, then slots read in place (as a `for in` would copy it into
            // its iterator, without the iterator's code).
            var list = freeRanges
            var total: UInt64 = 0
            var i = 0
            while i < list.count {
                total += list[slot: i].count
                i += 1
            }
            return total
        }
    }

    public func isFree(_ frame: MFN) -> Bool {
        var list = freeRanges
        var i = 0
        while i < list.count {
            if list[slot: i].contains(frame) { return true }
            i += 1
        }
        return false
    }

    /// One frame.
    public mutating func allocate() throws(FrameAllocatorError) -> MFN {
        try allocate(count: 1, alignment: 1)
    }

    /// `count` contiguous frames whose first frame number is a multiple of
    /// `alignment` (a power of two, in frames): an SMMU stream table or queue
    /// of 2^n bytes passes its own size in frames. Lowest address first.
    public mutating func allocate(count: UInt64, alignment: UInt64 = 1) throws(FrameAllocatorError) -> MFN {
        guard count > 0 else { throw .zeroCount }
        guard alignment > 0, alignment & (alignment - 1) == 0 else { throw .alignmentNotPowerOfTwo(alignment) }
        var blockedByCapacity = false
        var index = 0
        while index < freeRanges.count {
            let range = freeRanges[slot: index]
            index += 1
            let mask = alignment - 1
            guard range.first.raw <= UInt64.max - mask else { continue }
            let start = (range.first.raw + mask) & ~mask
            guard start < range.end.raw, range.end.raw - start >= count else { continue }
            let head = FrameRange(first: range.first, endRaw: start)
            let tail = FrameRange(first: MFN(raw: start + count), endRaw: range.end.raw)
            let at = index - 1
            if head.isEmpty && tail.isEmpty {
                freeRanges.remove(at: at)
            } else if head.isEmpty || tail.isEmpty {
                freeRanges[at] = head.isEmpty ? tail : head
            } else {
                // Carving from the middle needs one more slot.
                guard !freeRanges.isFull else {
                    blockedByCapacity = true
                    continue
                }
                freeRanges[at] = head
                freeRanges.insert(tail, at: at + 1)
            }
            return MFN(raw: start)
        }
        if blockedByCapacity { throw .freeListFull(capacity: FrameAllocator.freeRangeCapacity) }
        throw .exhausted(count: count, alignment: alignment)
    }

    /// Gives back `count` frames starting at `first`. Every frame must be
    /// inside a bank, outside every exclusion and currently allocated.
    public mutating func free(_ first: MFN, count: UInt64 = 1) throws(FrameAllocatorError) {
        guard count > 0 else { throw .zeroCount }
        guard first.raw <= UInt64.max - count else { throw .rangeWraps(first: first, count: count) }
        let range = FrameRange(first: first, count: count)
        // Indexed slot reads (`[slot:]`, in place): a `for in` copies the whole list into its iterator.
        var inBank = false
        var i = 0
        while i < managed.count {
            if managed[slot: i].first.raw <= range.first.raw && range.end.raw <= managed[slot: i].end.raw { inBank = true }
            i += 1
        }
        guard inBank else { throw .notManaged(firstFrameOutsideBanks(range)) }
        i = 0
        while i < exclusions.count {
            let exclusion = exclusions[slot: i]
            if exclusion.overlaps(range) { throw .excluded(MFN(raw: max(exclusion.first.raw, range.first.raw))) }
            i += 1
        }
        i = 0
        while i < freeRanges.count {
            let free = freeRanges[slot: i]
            if free.overlaps(range) { throw .doubleFree(MFN(raw: max(free.first.raw, range.first.raw))) }
            i += 1
        }
        guard FrameAllocator.insertMerging(range, into: &freeRanges) else {
            throw .freeListFull(capacity: FrameAllocator.freeRangeCapacity)
        }
    }

    /// `mutating` only to read the banks in place; it changes nothing.
    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    private mutating func firstFrameOutsideBanks(_ range: FrameRange) -> MFN {
        var frame = range.first
        // Walk bank by bank rather than frame by frame.
        while true {
            var advanced = false
            var i = 0
            while i < managed.count {
                if managed[slot: i].contains(frame) {
                    frame = managed[slot: i].end
                    advanced = true
                }
                i += 1
            }
            if !advanced || frame.raw >= range.end.raw { return frame }
        }
    }

    // MARK: Range table primitives

    /// Inserts `range` keeping the table sorted, merging with every range it
    /// overlaps or touches. `false` (table unchanged) when a new slot is needed
    /// and there is none.
    static func insertMerging<let n: Int>(_ range: FrameRange, into table: inout FixedList<n, FrameRange>) -> Bool {
        var first = range.first.raw
        var end = range.end.raw
        var lowest = table.count
        var highest = -1
        for i in 0..<table.count {
            let existing = table[slot: i]
            guard existing.first.raw <= end && first <= existing.end.raw else { continue }
            first = min(first, existing.first.raw)
            end = max(end, existing.end.raw)
            lowest = min(lowest, i)
            highest = max(highest, i)
        }
        let merged = FrameRange(first: MFN(raw: first), endRaw: end)
        if highest >= 0 {
            table[lowest] = merged
            var i = highest
            while i > lowest {
                table.remove(at: i)
                i -= 1
            }
            return true
        }
        var at = 0
        while at < table.count && table[slot: at].first.raw < first { at += 1 }
        return table.insert(merged, at: at)
    }

    /// Removes `range` from the table. `false` (table unchanged) when a range
    /// would split in two and there is no free slot.
    static func subtract<let n: Int>(_ range: FrameRange, from table: inout FixedList<n, FrameRange>) -> Bool {
        var i = 0
        while i < table.count {
            if table[slot: i].first.raw < range.first.raw && range.end.raw < table[slot: i].end.raw && table.isFull {
                return false
            }
            i += 1
        }
        i = 0
        while i < table.count {
            let existing = table[slot: i]
            guard existing.overlaps(range) else {
                i += 1
                continue
            }
            let head = FrameRange(first: existing.first, endRaw: max(existing.first.raw, min(range.first.raw, existing.end.raw)))
            let tail = FrameRange(first: MFN(raw: min(existing.end.raw, max(range.end.raw, existing.first.raw))),
                                  endRaw: existing.end.raw)
            if head.isEmpty && tail.isEmpty {
                table.remove(at: i)
            } else if head.isEmpty || tail.isEmpty {
                table[i] = head.isEmpty ? tail : head
                i += 1
            } else {
                table[i] = head
                table.insert(tail, at: i + 1)
                i += 2
            }
        }
        return true
    }
}
