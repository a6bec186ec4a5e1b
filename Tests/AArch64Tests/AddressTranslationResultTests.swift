import XCTest
import AArch64

/// PAR_EL1 (64-bit format) decoded: F [0], FST [6:1], S [9] on failure; PA [55:12] on success.
final class AddressTranslationResultTests: XCTestCase {
    func testSuccessKeepsThePAAndTheInputOffset() {
        let rows: [(par: UInt64, input: UInt64, pa: UInt64)] = [
            // ATTR 0xFF (Normal WB), SH inner (0b11 << 7), NS: none of them is address.
            (0xFF00_0000_4012_3F80, 0x8000_0238, 0x4012_3238),
            (0x0000_0000_4012_3000, 0xFFF, 0x4012_3FFF),
            // PA[55:52] (FEAT_D128) and PA[51:48] are address bits.
            (0x00F0_0000_0000_1000, 0, 0x00F0_0000_0000_1000),
            (0x000F_0000_0000_1000, 0x10, 0x000F_0000_0000_1010),
        ]
        for row in rows {
            XCTAssertEqual(AddressTranslationResult(par: row.par, input: row.input), .translated(PhysAddr(row.pa)),
                           "par \(String(row.par, radix: 16))")
        }
    }

    func testFaultsNameTheStageAndTheStatus() {
        let rows: [(UInt64, AddressTranslationResult)] = [
            // S = 1, FST = 0b000111: stage-2 translation fault, level 3. Bit 11 is RES1.
            (1 << 11 | 1 << 9 | 0b000111 << 1 | 1, .stage2Fault(.translation(level: 3))),
            (1 << 9 | 0b001111 << 1 | 1, .stage2Fault(.permission(level: 3))),
            // PTW (bit 8) set: still the stage-2 fault of the walk.
            (1 << 9 | 1 << 8 | 0b000101 << 1 | 1, .stage2Fault(.translation(level: 1))),
            // S = 0: stage 1.
            (0b000110 << 1 | 1, .stage1Fault(.translation(level: 2))),
            (0b010000 << 1 | 1, .stage1Fault(.other(0x10))),
            // Address bits in a failed result mean nothing.
            (0x0000_0000_4012_3000 | 1 << 9 | 0b000100 << 1 | 1, .stage2Fault(.translation(level: 0))),
        ]
        for (par, expected) in rows {
            XCTAssertEqual(AddressTranslationResult(par: par, input: 0x123), expected, "par \(String(par, radix: 16))")
        }
    }
}
