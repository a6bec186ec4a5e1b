import AArch64

/// A synchronous exception the hypervisor makes the host take at EL1, as the
/// hardware would have taken it there (Arm ARM D1.3.1, "Exception entry"; the
/// pseudocode `AArch64.TakeException`).
///
/// The board applies it in this order: ESR_EL1 = `esr`, FAR_EL1 = `far`,
/// ELR_EL1 = `returnAddress`, SPSR_EL1 = `savedPSTATE`, then returns from its
/// own exception with ELR_EL2 = `handlerAddress(vbarEL1:)` and SPSR_EL2 =
/// `newPSTATE`. The host's general registers are not touched.
public struct ExceptionInjection: Equatable, Sendable {
    /// The syndrome the host's handler reads from ESR_EL1.
    public let esr: UInt64
    /// FAR_EL1: the faulting virtual address (the exit's FAR_EL2), 0 for an
    /// undefined instruction, whose FAR is UNKNOWN.
    public let far: UInt64
    /// Offset of the synchronous vector in VBAR_EL1's table.
    public let vectorOffset: UInt64
    /// ELR_EL1: the exit's ELR_EL2, the instruction that faulted.
    public let returnAddress: UInt64
    /// SPSR_EL1: the exit's SPSR_EL2, the host's PSTATE at the fault.
    public let savedPSTATE: UInt64
    /// PSTATE on entry to the host's handler: EL1h, D, A, I and F masked, PAN
    /// and SSBS per SCTLR_EL1, DIT kept.
    public let newPSTATE: UInt64

    /// What is injected.
    public enum Kind: Equatable, Sendable {
        /// A synchronous external abort on a data access (DFSC 0b010000); WnR
        /// says whether it was a write.
        case dataAbort(write: Bool)
        /// A synchronous external abort on an instruction fetch (IFSC 0b010000).
        case instructionAbort
        /// An undefined instruction (EC 0x00).
        case undefinedInstruction
    }

    /// Exception classes (ESR_ELx.EC) and vector offsets (Arm ARM D1.3.2, table
    /// "Vector offsets from vector table base address").
    public static let ecUnknown: UInt64 = 0x00
    public static let ecInstructionAbortLowerEL: UInt64 = 0x20
    public static let ecInstructionAbortSameEL: UInt64 = 0x21
    public static let ecDataAbortLowerEL: UInt64 = 0x24
    public static let ecDataAbortSameEL: UInt64 = 0x25
    public static let currentELWithSP0: UInt64 = 0x000
    public static let currentELWithSPx: UInt64 = 0x200
    public static let lowerELAArch64: UInt64 = 0x400
    public static let lowerELAArch32: UInt64 = 0x600
    /// FSC for a synchronous external abort, not on a table walk.
    public static let synchronousExternalAbort: UInt64 = 0b01_0000

    static let vbarAlignmentMask: UInt64 = 0x7FF

    // PSTATE / SPSR_ELx fields (Arm ARM C5.2.18, SPSR_EL2).
    static let modeMask: UInt64 = 0b1_1111
    static let aarch32Bit: UInt64 = 1 << 4
    static let modeEL1t: UInt64 = 0b0100
    static let modeEL1h: UInt64 = 0b0101
    static let exceptionLevelShift: UInt64 = 2
    static let exceptionLevelMask: UInt64 = 0b11
    static let daifMask: UInt64 = 0b1111 << 6
    static let ssbsBit: UInt64 = 1 << 12
    static let panBit: UInt64 = 1 << 22
    static let ditBit: UInt64 = 1 << 24
    // SCTLR_EL1 fields.
    static let sctlrSPANBit: UInt64 = 1 << 23
    static let sctlrDSSBSBit: UInt64 = 1 << 44

    /// Builds the injection for an exit the host caused.
    ///
    /// - Parameters:
    ///   - spsr: SPSR_EL2 at the exit; its mode says whether the host was at
    ///     EL1 (the "same EL" class and the current-EL vector) or at EL0.
    ///   - elr: ELR_EL2 at the exit.
    ///   - far: FAR_EL2 at the exit (ignored for an undefined instruction).
    ///   - sctlrEL1: the host's SCTLR_EL1 (SPAN and DSSBS decide PAN and SSBS).
    public init(_ kind: Kind, spsr: UInt64, elr: UInt64, far: UInt64, sctlrEL1: UInt64) {
        let fromAArch32 = spsr & Self.aarch32Bit != 0
        let fromEL1 = !fromAArch32 && (spsr >> Self.exceptionLevelShift) & Self.exceptionLevelMask == 1
        if fromEL1 {
            vectorOffset = spsr & Self.modeMask == Self.modeEL1t ? Self.currentELWithSP0 : Self.currentELWithSPx
        } else {
            vectorOffset = fromAArch32 ? Self.lowerELAArch32 : Self.lowerELAArch64
        }
        // IL is RES1 for these classes (Arm ARM D23.2.41, "IL"); the bits are ExceptionSyndrome's.
        let external = UInt8(Self.synchronousExternalAbort)
        switch kind {
        case .dataAbort(let write):
            let ec = fromEL1 ? Self.ecDataAbortSameEL : Self.ecDataAbortLowerEL
            esr = ExceptionSyndrome(injecting: UInt8(ec), faultStatus: external, write: write).raw
            self.far = far
        case .instructionAbort:
            let ec = fromEL1 ? Self.ecInstructionAbortSameEL : Self.ecInstructionAbortLowerEL
            esr = ExceptionSyndrome(injecting: UInt8(ec), faultStatus: external).raw
            self.far = far
        case .undefinedInstruction:
            esr = ExceptionSyndrome(injecting: UInt8(Self.ecUnknown)).raw
            self.far = 0
        }
        returnAddress = elr
        savedPSTATE = spsr
        // AArch64.TakeException: PAN is set when SCTLR_EL1.SPAN is 0 and kept
        // otherwise (bit 22 in both SPSR layouts); SSBS takes SCTLR_EL1.DSSBS;
        // UAO, SS, IL and BTYPE are cleared; DIT is kept (bit 24 of an AArch64
        // SPSR; an AArch32 one has it elsewhere).
        var pstate = Self.modeEL1h | Self.daifMask
        if sctlrEL1 & Self.sctlrSPANBit == 0 || spsr & Self.panBit != 0 { pstate |= Self.panBit }
        if sctlrEL1 & Self.sctlrDSSBSBit != 0 { pstate |= Self.ssbsBit }
        if !fromAArch32 { pstate |= spsr & Self.ditBit }
        newPSTATE = pstate
    }

    /// Where the host's handler starts: VBAR_EL1 (bits [10:0] are RES0) plus the vector offset.
    public func handlerAddress(vbarEL1: UInt64) -> UInt64 {
        (vbarEL1 & ~Self.vbarAlignmentMask) &+ vectorOffset
    }
}
