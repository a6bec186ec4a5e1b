/// One stream with a translating STE and the domain it points at.
public struct SMMUAttachment: Equatable, Sendable {
    public var stream: StreamID
    public var domain: SMMUDomain
}

/// The streams an SMMU translates, sorted by StreamID, in a buffer of its own
/// that doubles when full. Not a Swift Array: every distinct Array element type
/// puts its own growth code (append, reallocation, uniqueness checks) in the
/// board image, and this is the only list of attachments there. Elements are
/// trivial values, so growing, inserting and removing are plain moves.
public struct SMMUAttachments: ~Copyable {
    var base: UnsafeMutablePointer<SMMUAttachment>?
    public private(set) var count = 0
    var capacity = 0

    init() {}

    deinit { base?.deallocate() }

    public var isEmpty: Bool { count == 0 }

    public subscript(index: Int) -> SMMUAttachment {
        precondition(index >= 0 && index < count, "attachment index out of range")
        return base.unsafelyUnwrapped[index]
    }

    /// Where `stream` is, or would go (the first slot not below it). Reads
    /// each slot's StreamID in place, not a copy of the whole attachment.
    public func slot(_ stream: StreamID) -> Int {
        var i = 0
        if let base { while i < count && base[i].stream < stream { i &+= 1 } }
        return i
    }

    /// The index of `stream`, nil if it has no attachment.
    public func index(of stream: StreamID) -> Int? {
        let i = slot(stream)
        return i < count && base.unsafelyUnwrapped[i].stream == stream ? i : nil
    }

    /// Whether a stream is attached to a stage-1 domain with `asid` (each
    /// slot's domain read in place, not copied out through the subscript).
    /// Transparent, as `set`: each has one caller (`makeStage1Domain`, `attach`).
    @_transparent func usesStage1ASID(_ asid: UInt16) -> Bool {
        guard let base else { return false }
        var i = 0
        while i < count {
            if case .stage1(let d) = base[i].domain, d.asid == asid { return true }
            i &+= 1
        }
        return false
    }

    static let stride = MemoryLayout<SMMUAttachment>.stride

    /// Record `attachment`, replacing the stream's previous one. The slots
    /// above the new one move up with one memmove (trivial values, no per-element
    /// moves); a full buffer is first copied into one twice its size.
    @_transparent mutating func set(_ attachment: SMMUAttachment) {
        let i = slot(attachment.stream)
        if i == count || base.unsafelyUnwrapped[i].stream != attachment.stream {
            if count == capacity {
                let grownCapacity = capacity == 0 ? 4 : capacity &* 2
                let grown = UnsafeMutablePointer<SMMUAttachment>.allocate(capacity: grownCapacity)
                if let base {
                    UnsafeMutableRawPointer(grown).copyMemory(from: base, byteCount: count &* Self.stride)
                    base.deallocate()
                }
                base = grown
                capacity = grownCapacity
            }
            let p = base.unsafelyUnwrapped + i
            UnsafeMutableRawPointer(p + 1).copyMemory(from: p, byteCount: (count &- i) &* Self.stride)
            count &+= 1
        }
        // A new slot, or the stream's old attachment (a trivial value: nothing
        // to release before overwriting it).
        (base.unsafelyUnwrapped + i).initialize(to: attachment)
    }

    /// Forget the attachment at `index` (from `index(of:)`): the slots above
    /// it move down with one memmove.
    mutating func remove(at index: Int) {
        precondition(index >= 0 && index < count, "attachment index out of range")
        let p = base.unsafelyUnwrapped + index
        UnsafeMutableRawPointer(p).copyMemory(from: p + 1, byteCount: (count &- index &- 1) &* Self.stride)
        count &-= 1
    }
}
