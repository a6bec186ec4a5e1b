import XCTest
import AArch64

/// The host's EL2 control registers pinned bit by bit for the CPUs the QEMU
/// scenarios use (ID register values read on QEMU 7.2).
final class HostEL2RegistersTests: XCTestCase {
    static let sctlrRES1: UInt64 = 0x30D0_0800

    /// -cpu max with gic-version=3: GICv3 interface, SVE, no SME, PAuth with the
    /// IMPLEMENTATION DEFINED algorithm (API), PMUv3 with six counters (HPMN = N).
    func testCPUMaxWithPAuthSVEAndGICv3() {
        let pfr0: UInt64 = 0x0000_0001_0100_0011   // SVE [35:32] = 1, GIC [27:24] = 1, EL0/EL1 AArch64
        let isar1: UInt64 = 1 << 8               // API [11:8] = 1
        let r = HostEL2Registers(idAA64PFR0: pfr0, idAA64PFR1: 0, idAA64ISAR1: isar1, idAA64ISAR2: 0,
                                 idAA64DFR0: 0x0000_0000_0000_0500, pmcr: 6 << 11 | 0x41 << 24,
                                 sctlrEL1RES1: Self.sctlrRES1)
        // VM | SWIO | TSC | RW | APK | API
        XCTAssertEqual(r.hcr, 0x0000_0300_8008_0003)
        // RES1 13, 12 (no SME), 9, 7:0; TZ (8) clear: SVE is there; TFP clear.
        XCTAssertEqual(r.cptr, 0x32FF)
        XCTAssertEqual(r.cnthctl, 0b11)
        XCTAssertEqual(r.cntvoff, 0)
        XCTAssertEqual(r.mdcr, 6)
        XCTAssertEqual(r.hstr, 0)
        XCTAssertEqual(r.iccSRE, 0xF)
        XCTAssertEqual(r.sctlrEL1, 0x30D0_0800)
        XCTAssertEqual(r.spsr, 0x3C5)
    }

    /// -cpu cortex-a57 with GICv2: no PAuth bits, no SVE or SME (TZ and TSM
    /// RES1), no ICC_SRE_EL2 to write.
    func testCortexA57WithGICv2() {
        let r = HostEL2Registers(idAA64PFR0: 0x0000_0000_0000_2222, idAA64PFR1: 0, idAA64ISAR1: 0, idAA64ISAR2: 0,
                                 idAA64DFR0: 0x0000_0000_1030_5106, pmcr: 6 << 11, sctlrEL1RES1: Self.sctlrRES1)
        XCTAssertEqual(r.hcr, 0x8008_0003)
        XCTAssertEqual(r.cptr, 0x33FF)
        XCTAssertNil(r.iccSRE)
        XCTAssertEqual(r.mdcr, 6)
    }

    /// Each pointer-authentication field alone turns on APK and API.
    func testEveryPointerAuthenticationFieldCounts() {
        for (isar1, isar2): (UInt64, UInt64) in [(1 << 4, 0), (1 << 8, 0), (1 << 24, 0), (1 << 28, 0), (0, 1 << 8), (0, 1 << 12)] {
            let r = HostEL2Registers(idAA64PFR0: 0, idAA64PFR1: 0, idAA64ISAR1: isar1, idAA64ISAR2: isar2,
                                     idAA64DFR0: 0, pmcr: 0, sctlrEL1RES1: Self.sctlrRES1)
            XCTAssertEqual(r.hcr & (3 << 40), 3 << 40, "ISAR1 \(isar1) ISAR2 \(isar2)")
        }
        // Fields next to them (ISAR1 DPB [3:0], JSCVT [15:12]) do not.
        let none = HostEL2Registers(idAA64PFR0: 0, idAA64PFR1: 0, idAA64ISAR1: 0xF00F, idAA64ISAR2: 0xF,
                                    idAA64DFR0: 0, pmcr: 0, sctlrEL1RES1: Self.sctlrRES1)
        XCTAssertEqual(none.hcr & (3 << 40), 0)
    }

    /// SME present: TSM is a trap bit and stays clear; SVE absent: TZ is RES1.
    func testSMEAndSVEChooseTheirBits() {
        let r = HostEL2Registers(idAA64PFR0: 0, idAA64PFR1: 1 << 24, idAA64ISAR1: 0, idAA64ISAR2: 0,
                                 idAA64DFR0: 0, pmcr: 0, sctlrEL1RES1: Self.sctlrRES1)
        XCTAssertEqual(r.cptr, 0x23FF)
    }

    /// No PMU, or an IMPLEMENTATION DEFINED one: PMCR_EL0 must not be read and HPMN is 0.
    func testPMUPresence() {
        XCTAssertFalse(HostEL2Registers.hasPMU(dfr0: 0))
        XCTAssertFalse(HostEL2Registers.hasPMU(dfr0: 0xF00))
        XCTAssertTrue(HostEL2Registers.hasPMU(dfr0: 0x100))
        let r = HostEL2Registers(idAA64PFR0: 0, idAA64PFR1: 0, idAA64ISAR1: 0, idAA64ISAR2: 0,
                                 idAA64DFR0: 0xF00, pmcr: 0x1F << 11, sctlrEL1RES1: Self.sctlrRES1)
        XCTAssertEqual(r.mdcr, 0)
    }
}
