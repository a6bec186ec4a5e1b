import AArch64

/// A private pool of frames for one owner (a P2M's or an IOMMU mirror's
/// table pages): one contiguous run taken from the frame allocator up front,
/// handed out from a bitmap.
///
/// The run belongs to the pool alone, so a two-phase table update can count
/// the frames it needs (`availableFrames`) before it writes, and nobody takes
/// one between the count and the use (Hafnium's per-VM mpool serves the same
/// purpose). Runs of up to `runAlignment` frames are aligned to their length,
/// as a concatenated stage-2 root must be (Arm ARM "Concatenated translation
/// tables": 2 to 16 tables, aligned to their total size).
public struct FramePool {
    /// The largest run served, and the alignment of the pool's first frame,
    /// so every run's alignment within the pool is also a physical one.
    public static let runAlignment = 16
    @usableFromInline static let bitsPerWord = UInt64.bitWidth
    @usableFromInline static let wordShift = 6  // log2(bitsPerWord)

    public let first: MFN
    public let count: Int
    /// Bit `i % 64` of word `i / 64` is set while frame `first + i` is handed out.
    @usableFromInline var inUse: [UInt64]
    /// One 16-bit counter per frame for its user's bookkeeping (a table page's
    /// valid entries), zeroed whenever the frame is handed out: frame `i`'s is
    /// bits `16 * (i % 4)` up of word `i / 4`. Words like the bitmap's, so the
    /// board image carries one set of Array code for both.
    @usableFromInline var counterWords: [UInt64]
    public private(set) var availableFrames: Int

    // The board's allocator methods below are @_transparent: each has one
    // caller on the board (the table-page source in the Hypervisor module),
    // where they are inlined; what they use is @usableFromInline for that.
    @usableFromInline mutating func setAvailable(_ frames: Int) { availableFrames = frames }

    /// Takes `count` frames, aligned to `runAlignment`, from `allocator`.
    public init(frames count: Int, from allocator: inout FrameAllocator) throws(FrameAllocatorError) {
        guard count > 0 else { throw .zeroCount }
        first = try allocator.allocate(count: UInt64(count), alignment: UInt64(Self.runAlignment))
        self.count = count
        inUse = [UInt64](repeating: 0, count: (count + Self.bitsPerWord - 1) / Self.bitsPerWord)
        counterWords = [UInt64](repeating: 0, count: (count + 3) / 4)
        availableFrames = count
    }

    /// `run` free frames in a row, the first aligned to `run` frames; the
    /// lowest such run. `run` is a power of two up to `runAlignment`.
    @_transparent
    public mutating func allocate(run: Int = 1) throws(FramePoolError) -> MFN {
        guard run > 0, run <= Self.runAlignment, run & (run - 1) == 0 else { throw .unsupportedRun(run) }
        guard run <= availableFrames else { throw .exhausted(run: run, available: availableFrames) }
        var start = 0
        while start + run <= count {
            if isFree(start..<start + run) {
                for index in start..<start + run {
                    setInUse(index, true)
                    storeCounter(index, 0)
                }
                setAvailable(availableFrames - run)
                return first.adding(UInt64(start))
            }
            start += run
        }
        throw .exhausted(run: run, available: availableFrames)
    }

    /// Gives one frame back. A frame outside the pool, or one not handed
    /// out, is refused and the pool is unchanged.
    @_transparent
    public mutating func free(_ frame: MFN) throws(FramePoolError) {
        guard let index = index(of: frame) else { throw .notInPool(frame) }
        guard isInUse(index) else { throw .doubleFree(frame) }
        setInUse(index, false)
        setAvailable(availableFrames + 1)
    }

    public func contains(_ frame: MFN) -> Bool { index(of: frame) != nil }

    /// The counter of `frame`, a frame of this pool handed out.
    @_transparent
    public func counter(_ frame: MFN) -> UInt16 {
        guard let index = index(of: frame) else { preconditionFailure("FramePool: not one of this pool's frames") }
        return UInt16(truncatingIfNeeded: counterWords[index &>> 2] >> UInt64((index & 3) &* 16))
    }
    @_transparent
    public mutating func setCounter(_ frame: MFN, _ value: UInt16) {
        guard let index = index(of: frame) else { preconditionFailure("FramePool: not one of this pool's frames") }
        storeCounter(index, value)
    }

    // Word and bit positions by shift and mask: `index` is never negative
    // here (it comes from `index(of:)` or a walk from 0), and a signed `/`
    // and `%` cost a division and sign fix-ups at each use; the arrays'
    // own bounds checks stay.
    @_transparent  // small, few callers: inlined (the board inliner's threshold is 0)
    @usableFromInline mutating func storeCounter(_ index: Int, _ value: UInt16) {
        let shift = UInt64((index & 3) &* 16)
        counterWords[index &>> 2] = counterWords[index &>> 2] & ~(0xFFFF << shift) | UInt64(value) << shift
    }

    public func isAllocated(_ frame: MFN) -> Bool {
        guard let index = index(of: frame) else { return false }
        return isInUse(index)
    }

    // Inlined (the board inliner's threshold is 0): out of line, a caller
    // holding the pool inout or behind a pointer (setCounter for the table
    // engine's every new entry count) copied the whole pool to pass it.
    @_transparent @usableFromInline func index(of frame: MFN) -> Int? {
        guard frame >= first, frame.raw - first.raw < UInt64(count) else { return nil }
        return Int(frame.raw - first.raw)
    }

    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    @usableFromInline func isFree(_ indices: Range<Int>) -> Bool {
        for index in indices where isInUse(index) { return false }
        return true
    }

    @_transparent  // small, few callers: inlined (the board inliner's threshold is 0)
    @usableFromInline func isInUse(_ index: Int) -> Bool {
        inUse[index &>> Self.wordShift] >> UInt64(index & (Self.bitsPerWord - 1)) & 1 != 0
    }

    @_transparent  // small, few callers: inlined (the board inliner's threshold is 0)
    @usableFromInline mutating func setInUse(_ index: Int, _ value: Bool) {
        let bit: UInt64 = 1 << UInt64(index & (Self.bitsPerWord - 1))
        if value { inUse[index &>> Self.wordShift] |= bit } else { inUse[index &>> Self.wordShift] &= ~bit }
    }
}
