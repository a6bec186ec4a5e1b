/// The EL2 registers and instructions a CPU uses to set up a lower EL's
/// translation regime before it enters it (board: MSR, TLBI, DSB, ISB; host
/// tests: a recorder).
public protocol LowerELEntryRegisters {
    mutating func writeVTCR(_ value: VTCR)
    mutating func writeVTTBR(_ value: VTTBR)
    mutating func writeHCR(_ value: UInt64)
    /// ISB.
    mutating func synchronizeContext()
    /// TLBI ALLE1: every EL1&0 stage-1 and stage-2 entry of every VMID on this PE.
    mutating func invalidateAllEL1TLBs()
    /// DSB NSH: this PE's TLB maintenance has completed.
    mutating func completeLocalTLBMaintenance()
}

/// How a CPU's regime for a lower EL is set up before its first entry (the
/// boot CPU's first guest or host, and each CPU started by CPU_ON).
///
/// TLB contents are UNKNOWN after reset and after whatever ran before the
/// hypervisor (firmware, a bootloader, an earlier hypervisor image, a CPU that
/// was powered down): entries tagged with the VMID about to be used, or
/// EL1&0 stage-1 entries combined with them, may be there. So once the regime
/// registers are written, every EL1&0 entry of every VMID on this PE is
/// invalidated (TLBI ALLE1; Arm ARM "TLB maintenance requirements and the TLB
/// maintenance instructions", "Invalidation of TLB entries at reset"),
/// completed by DSB NSH (local to this PE) and followed by an ISB, the last
/// step before the ERET that enters the lower EL.
public enum LowerELEntry {
    public static func prepare<R: LowerELEntryRegisters>(_ registers: inout R, vtcr: VTCR, vttbr: VTTBR,
                                                         hcr: UInt64) {
        registers.writeVTCR(vtcr)
        registers.writeVTTBR(vttbr)
        registers.writeHCR(hcr)
        registers.synchronizeContext()
        registers.invalidateAllEL1TLBs()
        registers.completeLocalTLBMaintenance()
        registers.synchronizeContext()
    }
}
