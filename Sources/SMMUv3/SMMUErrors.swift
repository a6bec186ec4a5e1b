import AArch64

/// Why bring-up stopped. Nothing is enabled when it throws; frames taken
/// before the failure are given back.
public enum BringUpError: Error, Equatable, Sendable {
    case refused(SMMUProbeError)
    case outOfMemory(frames: Int)
    /// CR0ACK did not reach `expected` within the poll budget.
    case cr0AckTimeout(expected: UInt32, last: UInt32)
    /// GBPA.UPDATE stayed set.
    case gbpaUpdateTimeout(last: UInt32)
    case irqCtrlAckTimeout(expected: UInt32, last: UInt32)
    case commandQueue(CommandQueueError)
}

/// Why an attach, detach or domain operation failed; the stream table and
/// the STE are unchanged (an L2 array allocated on the way is kept empty).
public enum AttachError: Error, Equatable, Sendable {
    case streamOutOfRange(StreamID, bits: Int)
    case outOfMemory(frames: Int)
    case stage1Unsupported
    case stage2Unsupported
    /// Stage 2 shares the P2M, whose table writes are not cleaned to PoC: a
    /// non-coherent SMMU would walk stale entries. Use a stage-1 mirror there.
    case stage2NeedsCoherentSMMU
    case asidOutOfRange(UInt16)
    case vmidOutOfRange(UInt16)
    /// Stage-1 input size outside what a CD can describe (T0SZ 16...39).
    case inputBitsOutOfRange(Int)
    case rootOutOfRange(PhysAddr)
    /// A stage-2 domain whose IPA size (64 - VTCR.T0SZ) the SMMU cannot take
    /// into stage 2 (`SMMUFeatures.stage2InputBits`: above its IAS, say).
    case stage2InputBitsOutOfRange(Int, supported: ClosedRange<Int>)
    case notAttached(StreamID)
    case domainInUse(asid: UInt16)
    case commandQueue(CommandQueueError)
}
