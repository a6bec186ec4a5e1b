/// The EL2 control registers under which an unmodified OS kernel runs at EL1 as
/// the deprivileged host (pKVM's model): stage 2 on, firmware calls trapped,
/// and otherwise nothing the kernel could tell apart from being entered at EL1
/// by firmware. Field positions from the Arm ARM register descriptions
/// (HCR_EL2, CPTR_EL2 with E2H = 0, CNTHCTL_EL2 with E2H = 0, MDCR_EL2,
/// ICC_SRE_EL2); what EL1 may rely on from Linux's arm64 boot protocol
/// (Documentation/arch/arm64/booting.rst, "entered at EL1").
///
/// A pure function of the CPU's ID registers, so every CPU the host runs on
/// gets the same values and the bits are pinned by host tests.
public struct HostEL2Registers: Equatable, Sendable {
    public let hcr: UInt64
    public let cptr: UInt64
    public let cnthctl: UInt64
    public let cntvoff: UInt64
    public let mdcr: UInt64
    public let hstr: UInt64
    /// ICC_SRE_EL2, or nil where the CPU has no GICv3 system-register interface
    /// (the register does not exist there and writing it is UNDEFINED).
    public let iccSRE: UInt64?
    /// SCTLR_EL1 at entry: MMU and caches off, RES1 bits set (booting.rst).
    public let sctlrEL1: UInt64
    /// SPSR_EL2 for the eret into the kernel: EL1h with D, A, I, F masked.
    public let spsr: UInt64

    // HCR_EL2.
    public static let hcrVM: UInt64 = 1 << 0        // stage 2 on
    public static let hcrSWIO: UInt64 = 1 << 1      // set/way invalidate becomes clean+invalidate
    public static let hcrTSC: UInt64 = 1 << 19      // SMC from EL1 traps to EL2 (firmware calls are ours)
    public static let hcrRW: UInt64 = 1 << 31       // EL1 is AArch64
    public static let hcrAPK: UInt64 = 1 << 40      // pointer-authentication key registers not trapped
    public static let hcrAPI: UInt64 = 1 << 41      // pointer-authentication instructions not trapped
    // CPTR_EL2 (E2H = 0): RES1 bits 13, 9 and 7:0; bit 8 (TZ) and 12 (TSM) are
    // RES1 as well where SVE and SME are absent. TFP (10), TTA (20), TAM (30)
    // and TCPAC (31) stay clear: the host owns FP/SIMD, trace and AMU.
    static let cptrRES1: UInt64 = 1 << 13 | 1 << 9 | 0xFF
    static let cptrTZ: UInt64 = 1 << 8
    static let cptrTSM: UInt64 = 1 << 12
    // CNTHCTL_EL2 (E2H = 0): EL1PCTEN, EL1PCEN, the physical counter and timer at EL1.
    static let cnthctlEL1PhysicalAccess: UInt64 = 0b11
    // MDCR_EL2.HPMN [4:0]: every event counter belongs to EL1 (PMCR_EL0.N [15:11]).
    static let pmcrNShift: UInt64 = 11
    static let pmcrNMask: UInt64 = 0x1F
    // ICC_SRE_EL2: SRE, DFB, DIB, Enable (EL1 may use the system-register interface).
    static let iccSREAll: UInt64 = 0xF
    static let spsrEL1hMasked: UInt64 = 0x3C5

    // ID register fields.
    static func field(_ register: UInt64, _ shift: UInt64) -> UInt64 { register >> shift & 0xF }
    static let pfr0GICShift: UInt64 = 24
    static let pfr0SVEShift: UInt64 = 32
    static let pfr1SMEShift: UInt64 = 24
    static let dfr0PMUVerShift: UInt64 = 8
    static let pmuVerImplementationDefined: UInt64 = 0xF
    /// ID_AA64ISAR1_EL1 APA [7:4], API [11:8], GPA [27:24], GPI [31:28];
    /// ID_AA64ISAR2_EL1 GPA3 [11:8], APA3 [15:12]. Any nonzero field means FEAT_PAuth.
    static let isar1PAuthFields: UInt64 = 0xFF00_0FF0
    static let isar2PAuthFields: UInt64 = 0xFF00

    public init(idAA64PFR0: UInt64, idAA64PFR1: UInt64, idAA64ISAR1: UInt64, idAA64ISAR2: UInt64,
                idAA64DFR0: UInt64, pmcr: UInt64, sctlrEL1RES1: UInt64) {
        var hcr = Self.hcrVM | Self.hcrSWIO | Self.hcrTSC | Self.hcrRW
        if Self.hasPointerAuthentication(isar1: idAA64ISAR1, isar2: idAA64ISAR2) { hcr |= Self.hcrAPK | Self.hcrAPI }
        self.hcr = hcr
        var cptr = Self.cptrRES1
        if Self.field(idAA64PFR0, Self.pfr0SVEShift) == 0 { cptr |= Self.cptrTZ }
        if Self.field(idAA64PFR1, Self.pfr1SMEShift) == 0 { cptr |= Self.cptrTSM }
        self.cptr = cptr
        cnthctl = Self.cnthctlEL1PhysicalAccess
        cntvoff = 0
        mdcr = Self.hasPMU(dfr0: idAA64DFR0) ? pmcr >> Self.pmcrNShift & Self.pmcrNMask : 0
        hstr = 0
        iccSRE = Self.field(idAA64PFR0, Self.pfr0GICShift) != 0 ? Self.iccSREAll : nil
        sctlrEL1 = sctlrEL1RES1
        spsr = Self.spsrEL1hMasked
    }

    /// PMCR_EL0 exists (and may be read) only with an architected PMU.
    public static func hasPMU(dfr0: UInt64) -> Bool {
        let version = field(dfr0, dfr0PMUVerShift)
        return version != 0 && version != pmuVerImplementationDefined
    }

    static func hasPointerAuthentication(isar1: UInt64, isar2: UInt64) -> Bool {
        isar1 & isar1PAuthFields != 0 || isar2 & isar2PAuthFields != 0
    }
}
