/// Frame ranges whose cached translations must be invalidated, merged as they are
/// recorded; past `capacity` distinct ranges it degrades to "everything" (one
/// whole-VMID or whole-ASID invalidation), which is always correct.
/// Non-generic on purpose: recording sits on every unmap's hot path.
public struct InvalidationRanges: Sendable {
    public static var capacity: Int { 8 }
    @usableFromInline var start = InlineArray<8, UInt64>(repeating: 0)
    @usableFromInline var end = InlineArray<8, UInt64>(repeating: 0)
    public private(set) var count = 0
    /// The ranges overflowed: invalidate everything.
    public private(set) var coversEverything = false
    /// Frames covered by the recorded ranges (overlaps merged).
    public private(set) var pages: UInt64 = 0

    /// Transparent, as `PendingInvalidation.init`: a call built the value on the
    /// stack and copied it into place.
    @_transparent public init() {}

    public var isEmpty: Bool { count == 0 && !coversEverything }

    // Slots are read and written `unchecked` below: every index is in
    // 0..<count or is count itself after `count < capacity` was checked, and
    // 0 <= count <= capacity always (only `record` raises it, under that check),
    // so the InlineArray's own bounds check could never fail.

    /// Record [first, first+frames).
    @inline(__always)
    public mutating func record(_ first: UInt64, frames: UInt64) {
        if coversEverything { return }
        let last = first &+ frames
        // Newest first: runs of consecutive edits extend the most recent range.
        // Index arithmetic wraps: i stays in -1..<count, count below capacity
        // when it grows (each checked step was a trap test).
        var i = count &- 1
        while i >= 0 {
            let s = start[unchecked: i], e = end[unchecked: i]
            if first <= e && last >= s {
                let newStart = min(s, first), newEnd = max(e, last)
                pages &+= (newEnd - newStart) - (e - s)
                start[unchecked: i] = newStart
                end[unchecked: i] = newEnd
                return
            }
            i &-= 1
        }
        guard count < Self.capacity else {
            coversEverything = true
            return
        }
        start[unchecked: count] = first
        end[unchecked: count] = last
        count &+= 1
        pages &+= frames
    }

    /// Whether a recorded range overlaps [first, first+frames).
    public func overlaps(_ first: UInt64, frames: UInt64) -> Bool {
        var ranges = self
        return ranges.overlapsInPlace(first, frames: frames)
    }

    /// The i-th range as (first frame, frames).
    public subscript(i: Int) -> (first: UInt64, frames: UInt64) {
        var ranges = self
        return ranges.rangeInPlace(i)
    }

    // The two readers for ranges held in place (a batch's): mutating only so that
    // the board reads the slots where they are. Reading an InlineArray slot of a
    // value (a non-mutating method's `self`) copied the whole array to the stack
    // first, once per slot read, on every map and per range at commit. Loops
    // here are index loops: a range's iterator is a call per step on the board.

    /// `overlaps`, in place. Inline: it is on every map's path, and `beginMap` is
    /// its one caller on the board.
    @_transparent mutating func overlapsInPlace(_ first: UInt64, frames: UInt64) -> Bool {
        if coversEverything { return true }
        let last = first &+ frames
        var i = 0
        while i < count {
            if start[unchecked: i] < last && end[unchecked: i] > first { return true }
            i &+= 1
        }
        return false
    }

    /// The i-th range (`subscript`), in place.
    @inline(__always) mutating func rangeInPlace(_ i: Int) -> (first: UInt64, frames: UInt64) {
        precondition(i >= 0 && i < count, "InvalidationRanges index out of range")
        let s = start[unchecked: i]
        return (s, end[unchecked: i] - s)
    }

    /// Record every range of `other` (or everything, if it overflowed), and empty
    /// `other`. It is inout so that its slots are read in place (see `rangeInPlace`).
    public mutating func formUnion(emptying other: inout InvalidationRanges) {
        if other.coversEverything {
            coversEverything = true
        } else {
            var i = 0
            while i < other.count {
                let (first, frames) = other.rangeInPlace(i)
                record(first, frames: frames)
                i &+= 1
            }
        }
        other.removeAll()
    }

    /// Record that everything may be cached.
    public mutating func recordEverything() {
        coversEverything = true
    }

    public mutating func removeAll() {
        count = 0
        coversEverything = false
        pages = 0
    }
}
