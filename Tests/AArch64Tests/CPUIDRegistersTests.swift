import XCTest
import AArch64

/// ID_AA64MMFR0_EL1.PARange [3:0], ID_AA64MMFR1_EL1.VMIDBits [7:4] and
/// ID_AA64ISAR0_EL1.TLB [59:56], each decoded from a raw register value.
final class CPUIDRegistersTests: XCTestCase {
    /// Cortex-A57's reset values (Cortex-A57 TRM, "AArch64 register summary"):
    /// 44-bit PA, 8-bit VMID, no TLBI range or outer-shareable forms.
    func testCortexA57() {
        let cpu = CPUIDRegisters(mmfr0: 0x0000_0000_0000_1124, mmfr1: 0, isar0: 0x0000_0000_0001_1120)
        XCTAssertEqual(cpu.physicalAddressRange, .bits44)
        XCTAssertEqual(cpu.vmidWidth, .bits8)
        XCTAssertFalse(cpu.hasTLBIRange)
    }

    func testPARangeRowsIncludingEncodingsAboveTheLastNamed() {
        let rows: [(UInt64, PhysicalAddressRange)] = [
            (0x0, .bits32), (0x1, .bits36), (0x2, .bits40), (0x3, .bits42), (0x4, .bits44), (0x5, .bits48),
            (0x6, .bits52),
            // 0b0111 (56 bits, FEAT_D128) and anything later: at least 52, never fewer.
            (0x7, .bits52), (0xF, .bits52),
            // Only bits [3:0] count.
            (0xFFFF_FFFF_FFFF_FFF0, .bits32), (0x0000_0000_0011_2125, .bits48),
        ]
        for (mmfr0, expected) in rows {
            XCTAssertEqual(CPUIDRegisters(mmfr0: mmfr0, mmfr1: 0, isar0: 0).physicalAddressRange, expected,
                           "mmfr0 \(String(mmfr0, radix: 16))")
        }
    }

    func testVMIDBitsRows() {
        let rows: [(UInt64, VMIDWidth)] = [
            (0x00, .bits8), (0x20, .bits16), (0x10, .bits8),
            // Only bits [7:4] count.
            (0xFFFF_FFFF_FFFF_FF0F, .bits8), (0x0000_0000_1111_1121, .bits16),
        ]
        for (mmfr1, expected) in rows {
            XCTAssertEqual(CPUIDRegisters(mmfr0: 0, mmfr1: mmfr1, isar0: 0).vmidWidth, expected,
                           "mmfr1 \(String(mmfr1, radix: 16))")
        }
    }

    func testTLBFieldRows() {
        let rows: [(UInt64, Bool)] = [
            (0b0000 << 56, false), (0b0001 << 56, false), (0b0010 << 56, true), (0b0011 << 56, true),
            // Only bits [59:56] count: bit 60 and bit 55 set alone say nothing.
            (1 << 60 | 1 << 55 | 0x1_1120, false), (0xF0FF_FFFF_FFFF_FFFF, false),
        ]
        for (isar0, expected) in rows {
            XCTAssertEqual(CPUIDRegisters(mmfr0: 0, mmfr1: 0, isar0: isar0).hasTLBIRange, expected,
                           "isar0 \(String(isar0, radix: 16))")
        }
    }
}
