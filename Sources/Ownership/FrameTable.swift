import AArch64
import Translation
import Synchronization

/// One `FrameEntry` per 4 KiB RAM frame of every bank, and nothing for the
/// holes between banks (Xen's `frame_table` with PDX compression, pKVM's
/// vmemmap backed only for memory).
///
/// Lookup is a binary search over the banks (a handful on any board), then
/// direct indexing: no hashing, no per-hole cost.
///
/// `FrameTable` is a view (the banks and a pointer to the entries) that can be
/// handed to whoever updates frames, e.g. the releaser of a P2M flush batch;
/// the entries themselves belong to one `FrameTableStorage`, allocated once at
/// boot, which must outlive every view.
public struct FrameTable {
    struct Bank {
        let first: UInt64     // first MFN
        let count: UInt64     // frames
        let firstEntry: Int   // index of the bank's first entry
    }

    /// The banks, sorted, behind a pointer (allocated once with the table, freed
    /// by its storage): a view is plain words, copied without reference counting
    /// on every access to the table.
    let banks: UnsafeMutablePointer<Bank>
    let bankCount: Int
    @usableFromInline let entries: UnsafeMutablePointer<FrameEntry>
    /// Entries in the table: the RAM frames of all banks together.
    public let frameCount: Int

    /// Bytes of metadata per 4 KiB frame: at most 16 (0.4% of RAM), pinned by FrameTableTests.
    public static let bytesPerFrame = MemoryLayout<FrameEntry>.stride

    /// Validates the banks, lays them out and initialises one entry per frame,
    /// in `placement` when given (it must hold `FrameTable.bytesNeeded`), else
    /// in memory allocated here.
    @_transparent init(banks input: [MemoryBank], placement: UnsafeMutableRawPointer? = nil) throws(OwnershipError) {
        // The banks sorted by base with an insertion sort in place (a handful of
        // banks, stable like `sort`), then checked in that order. Plain pointer
        // code: the board image carries no stdlib sort or array growth for this.
        let count = input.count
        let sorted = UnsafeMutablePointer<MemoryBank>.allocate(capacity: max(count, 1))
        defer { sorted.deallocate() }
        for i in 0..<count {
            let bank = input[i]
            var j = i
            while j > 0 && bank.base < sorted[j - 1].base {
                (sorted + j).initialize(to: sorted[j - 1])
                j -= 1
            }
            (sorted + j).initialize(to: bank)
        }
        var total = 0
        var previousEnd: UInt64 = 0
        for i in 0..<count {
            let bank = sorted[i]
            guard bank.base.isPageAligned, bank.bytes & PageSize.offsetMask4K == 0, bank.bytes != 0 else {
                throw .EINVAL(.bankMisaligned(bank.base, bytes: bank.bytes))
            }
            let end = bank.base.raw.addingReportingOverflow(bank.bytes)
            guard !end.overflow else { throw .EINVAL(.bankMisaligned(bank.base, bytes: bank.bytes)) }
            guard i == 0 || bank.base.raw >= previousEnd else {
                throw .EINVAL(.bankOverlap(bank.base))
            }
            total += Int(bank.frameCount)
            previousEnd = end.partialValue
        }
        self.bankCount = count
        self.banks = UnsafeMutablePointer<Bank>.allocate(capacity: max(count, 1))
        var first = 0
        for i in 0..<count {
            (self.banks + i).initialize(to: Bank(first: sorted[i].firstFrame.raw, count: sorted[i].frameCount,
                                                 firstEntry: first))
            first += Int(sorted[i].frameCount)
        }
        self.frameCount = total
        if let placement {
            entries = placement.bindMemory(to: FrameEntry.self, capacity: max(total, 1))
        } else {
            entries = UnsafeMutablePointer<FrameEntry>.allocate(capacity: max(total, 1))
        }
        // The two words built once and a `while` loop: on the board (inliner
        // threshold 0) `for i in 0..<total` called the range iterator's `next`
        // and the state's getter and initialiser for every frame, ~40
        // instructions a frame, 10M of the default boot's 14M (1 GiB of RAM).
        let state = FrameState.hostOwned, info = TypeInfo.initializer
        var i = 0
        while i < total {
            (entries + i).initialize(to: FrameEntry(state: state, typeInfo: info))
            i += 1
        }
    }

    /// The entry index of `mfn`, or nil when it is not RAM (a hole, MMIO).
    public func index(of mfn: MFN) -> Int? {
        var lo = 0, hi = bankCount
        while lo < hi {
            let mid = (lo + hi) / 2
            let b = banks[mid]
            if mfn.raw < b.first {
                hi = mid
            } else if mfn.raw - b.first >= b.count {
                lo = mid + 1
            } else {
                return b.firstEntry + Int(mfn.raw - b.first)
            }
        }
        return nil
    }

    /// The frame of entry `index` (inverse of `index(of:)`).
    public func frame(at index: Int) -> MFN {
        precondition(index >= 0 && index < frameCount, "frame index out of the table")
        var lo = 0, hi = bankCount - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if banks[mid].firstEntry <= index { lo = mid } else { hi = mid - 1 }
        }
        return MFN(raw: banks[lo].first + UInt64(index - banks[lo].firstEntry))
    }

    /// Whether `mfn` is RAM according to the memory map (pKVM's `addr_is_memory`).
    public func isRAM(_ mfn: MFN) -> Bool { index(of: mfn) != nil }

    // MARK: atomic access

    public func state(at index: Int) -> FrameState {
        FrameState(raw: entries[index].state.load(ordering: .acquiring))
    }

    public func typeInfo(at index: Int) -> TypeInfo {
        TypeInfo(raw: entries[index].typeInfo.load(ordering: .acquiring))
    }

    /// Replaces the state word if it still holds `expected`.
    @discardableResult
    public func compareExchangeState(at index: Int, expected: FrameState, desired: FrameState) -> Bool {
        entries[index].state.compareExchange(expected: expected.raw, desired: desired.raw,
                                             ordering: .acquiringAndReleasing).exchanged
    }

    @discardableResult
    public func compareExchangeTypeInfo(at index: Int, expected: TypeInfo, desired: TypeInfo) -> Bool {
        entries[index].typeInfo.compareExchange(expected: expected.raw, desired: desired.raw,
                                                ordering: .acquiringAndReleasing).exchanged
    }

    /// Sets the state word whatever it held: for a frame nobody else can reach
    /// (a dead frame going back to the host). One store, where an `updateState`
    /// closure ignoring the old word was a compare-exchange loop on the board.
    func storeState(at index: Int, _ state: FrameState) {
        entries[index].state.store(state.raw, ordering: .releasing)
    }

    /// Sets `type_info` whatever it held (a frame starting a new life, which
    /// nobody can reach before its operation returns): see `storeState`.
    func storeTypeInfo(at index: Int, _ info: TypeInfo) {
        entries[index].typeInfo.store(info.raw, ordering: .releasing)
    }

    /// Applies `transform` to the state word with a compare-exchange loop.
    /// `transform` throws to refuse the transition; then nothing changes.
    /// Transparent, not `@inline(__always)`: closure specialisation ran first and
    /// left one out-of-line copy per call site on the board (-580 bytes).
    @_transparent @discardableResult
    func updateState<E: Error>(at index: Int,
                               _ transform: (FrameState) throws(E) -> FrameState) throws(E) -> (old: FrameState, new: FrameState) {
        var seen = entries[index].state.load(ordering: .acquiring)
        while true {
            let old = FrameState(raw: seen)
            let new = try transform(old)
            let (done, current) = entries[index].state.compareExchange(
                expected: seen, desired: new.raw, ordering: .acquiringAndReleasing)
            if done { return (old, new) }
            seen = current
        }
    }

    @_transparent @usableFromInline @discardableResult
    func updateTypeInfo<E: Error>(at index: Int,
                                  _ transform: (TypeInfo) throws(E) -> TypeInfo) throws(E) -> (old: TypeInfo, new: TypeInfo) {
        var seen = entries[index].typeInfo.load(ordering: .acquiring)
        while true {
            let old = TypeInfo(raw: seen)
            let new = try transform(old)
            let (done, current) = entries[index].typeInfo.compareExchange(
                expected: seen, desired: new.raw, ordering: .acquiringAndReleasing)
            if done { return (old, new) }
            seen = current
        }
    }

    /// Both words of every entry, in table order: what tests compare to prove
    /// a failed call changed nothing.
    public func snapshot() -> [UInt64] {
        var words: [UInt64] = []
        words.reserveCapacity(frameCount * 2)
        for i in 0..<frameCount {
            words.append(entries[i].state.load(ordering: .acquiring))
            words.append(entries[i].typeInfo.load(ordering: .acquiring))
        }
        return words
    }
}

/// The owner of the frame entries' memory. Every frame starts host-owned
/// (pKVM: the host owns all memory at boot) with `type_info` at its initializer.
public struct FrameTableStorage: ~Copyable {
    public let table: FrameTable
    /// False when the entries live in memory the caller placed them in.
    let ownsEntries: Bool

    public init(banks: [MemoryBank]) throws(OwnershipError) {
        table = try FrameTable(banks: banks)
        ownsEntries = true
    }

    /// The entries go in `memory`, which holds at least `bytesNeeded(for:)`
    /// bytes, is aligned to 16, and outlives this storage. On the board this is
    /// a run of frames from the boot frame allocator: the table for all RAM is
    /// far larger than the boot heap.
    public init(banks: [MemoryBank], placingEntriesAt memory: UnsafeMutableRawPointer) throws(OwnershipError) {
        table = try FrameTable(banks: banks, placement: memory)
        ownsEntries = false
    }

    /// Owns `table`'s entries if `ownsEntries`. `PageOwnership`'s placing
    /// initialiser builds its table with this, so the table's @_transparent
    /// initialiser is inlined there (one call fewer on the board).
    @_transparent init(table: FrameTable, ownsEntries: Bool) {
        self.table = table
        self.ownsEntries = ownsEntries
    }

    /// Bytes of entries the table for `banks` needs (holes cost nothing).
    public static func bytesNeeded(for banks: [MemoryBank]) -> UInt64 {
        var frames: UInt64 = 0
        for i in 0..<banks.count { frames += banks[i].frameCount }  // by index: no iterator copy on the board
        return frames * UInt64(FrameTable.bytesPerFrame)
    }

    deinit {
        table.entries.deinitialize(count: table.frameCount)
        if ownsEntries { table.entries.deallocate() }
        table.banks.deinitialize(count: table.bankCount)
        table.banks.deallocate()
    }
}
