/// Choices the platform makes for one SMMU.
public struct SMMUConfiguration: Equatable, Sendable {
    /// The DTB node has `dma-coherent`. With IDR0.COHACC this makes the SMMU
    /// coherent; otherwise every table, descriptor and queue entry is cleaned
    /// to PoC before the SMMU may read it.
    public var dmaCoherent: Bool
    /// StreamID bits to cover (PCI requester IDs: 16), capped by IDR1.SIDSIZE.
    public var maximumStreamIDBits: Int
    /// Above this many StreamID bits, use a two-level table if the SMMU has one.
    public var linearStreamTableMaximumBits: Int
    /// Queue sizes (log2 entries), capped by IDR1.CMDQS/EVTQS.
    public var commandQueueLog2Entries: UInt32
    /// QEMU records one event per 4 bytes of a faulting DMA (trap 13): be generous.
    public var eventQueueLog2Entries: UInt32
    /// Register reads before a wait gives up with a typed timeout.
    public var pollLimit: Int
    /// Force a mode (e.g. stage 1 on an SMMU that also has stage 2); nil picks
    /// stage 2 where the SMMU has it.
    public var mode: TranslationMode?

    public init(dmaCoherent: Bool = true, maximumStreamIDBits: Int = 16, linearStreamTableMaximumBits: Int = 8,
                commandQueueLog2Entries: UInt32 = 8, eventQueueLog2Entries: UInt32 = 11,
                pollLimit: Int = 1 << 20, mode: TranslationMode? = nil) {
        self.dmaCoherent = dmaCoherent
        self.maximumStreamIDBits = maximumStreamIDBits
        self.linearStreamTableMaximumBits = linearStreamTableMaximumBits
        self.commandQueueLog2Entries = commandQueueLog2Entries
        self.eventQueueLog2Entries = eventQueueLog2Entries
        self.pollLimit = pollLimit
        self.mode = mode
    }
}
