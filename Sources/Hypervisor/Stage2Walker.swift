import AArch64
import ArchC

/// The CPU's own stage-2 walker as a test oracle: `AT S12E1R/W` translates an
/// IPA (EL1's stage 1 is off, so VA = IPA) through the live VTTBR_EL2/VTCR_EL2,
/// the way the hardware reads the tables the P2M wrote. (On QEMU, AT walks
/// the tables afresh; on hardware it may also answer from the TLB.)
struct Stage2Walker {
    /// HCR_EL2.VM [0] enables stage 2 for EL1&0; HCR_EL2.RW [31]: EL1 is AArch64.
    static let hcrVM: UInt64 = 1 << 0
    static let hcrRW: UInt64 = 1 << 31
    /// SCTLR_EL1 with its RES1 bits and M = 0: EL1 stage 1 off.
    static let sctlrEL1Off = UInt64(HV_SCTLR_EL1_RES1)

    private let savedHCR: UInt64
    private let savedVTCR: UInt64
    private let savedVTTBR: UInt64
    private let savedSCTLR: UInt64

    /// Installs the domain's stage 2 for EL1&0 (nothing runs at EL1 meanwhile).
    @_transparent
    init(vtcr: UInt64, vttbr: UInt64) {
        savedHCR = arch_read_hcr_el2()
        savedVTCR = arch_read_vtcr_el2()
        savedVTTBR = arch_read_vttbr_el2()
        savedSCTLR = arch_read_sctlr_el1()
        arch_write_sctlr_el1(Self.sctlrEL1Off)
        arch_write_vtcr_el2(vtcr)
        arch_write_vttbr_el2(vttbr)
        arch_write_hcr_el2(savedHCR | Self.hcrVM | Self.hcrRW)
        arch_isb()
    }

    func restore() {
        arch_write_hcr_el2(savedHCR)
        arch_write_vttbr_el2(savedVTTBR)
        arch_write_vtcr_el2(savedVTCR)
        arch_write_sctlr_el1(savedSCTLR)
        arch_isb()
    }

    @_transparent
    func read(_ ipa: IPA) -> AddressTranslationResult {
        AddressTranslationResult(par: arch_at_s12e1r(ipa.raw), input: ipa.raw)
    }
    @_transparent
    func write(_ ipa: IPA) -> AddressTranslationResult {
        AddressTranslationResult(par: arch_at_s12e1w(ipa.raw), input: ipa.raw)
    }
}
