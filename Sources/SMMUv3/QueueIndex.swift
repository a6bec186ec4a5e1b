/// A PROD or CONS value of a 2^log2Entries queue (IHI 0070 3.5.1): the index
/// is bits [log2Entries-1:0] and the wrap flag is bit log2Entries (not bit 31,
/// HARDWARE.md trap 12). Bits above it (CMDQ_CONS.ERR, OVFLG) are not part of
/// the position and are dropped here.
public struct QueueIndex: Equatable, Sendable {
    /// Index and wrap bit only.
    public private(set) var position: UInt32
    public let log2Entries: UInt32

    public init(_ registerValue: UInt32, log2Entries: UInt32) {
        precondition(log2Entries <= 19, "queues have at most 2^19 entries")
        self.log2Entries = log2Entries
        position = registerValue & Self.positionMask(log2Entries)
    }

    // Masking shifts: init keeps log2Entries <= 19, so `<<`'s over-shift
    // handling is dead code here.
    static func positionMask(_ log2Entries: UInt32) -> UInt32 { (2 &<< log2Entries) &- 1 }

    public var entries: UInt32 { 1 &<< log2Entries }
    public var index: UInt32 { position & (entries - 1) }
    public var wrap: Bool { position & entries != 0 }

    /// One entry on, toggling the wrap bit when the index wraps to 0.
    public func advanced(by n: UInt32 = 1) -> QueueIndex {
        QueueIndex(position &+ n, log2Entries: log2Entries)
    }

    /// Entries between `cons` and `self` (the producer).
    public func used(since cons: QueueIndex) -> UInt32 {
        (position &- cons.position) & Self.positionMask(log2Entries)
    }
    public func isEmpty(consumer cons: QueueIndex) -> Bool { position == cons.position }
    /// Same index, different wrap.
    public func isFull(consumer cons: QueueIndex) -> Bool {
        position ^ cons.position == entries  // positions hold index and wrap only
    }
    public func free(consumer cons: QueueIndex) -> UInt32 { entries - used(since: cons) }
}
