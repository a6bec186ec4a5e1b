import XCTest
import AArch64

/// DCZID_EL0.DZP (bit 4) and DCZID_EL0.BS (bits [3:0], log2 of the `DC ZVA`
/// block in 4-byte words), decoded from raw register values.
final class DataCacheZeroIDTests: XCTestCase {
    /// Cortex-A57, A72 and QEMU's `max` report 0x4: permitted, 16 words = 64 bytes.
    func testSixtyFourByteBlocks() {
        let id = DataCacheZeroID(raw: 0x4)
        XCTAssertFalse(id.prohibited)
        XCTAssertEqual(id.blockBytes, 64)
        XCTAssertEqual(id.zeroingStep(forAligned: 4096), 64)
    }

    func testBlockSizeRows() {
        let rows: [(UInt64, UInt64)] = [
            (0x0, 4), (0x1, 8), (0x2, 16), (0x3, 32), (0x5, 128), (0x9, 2048), (0xA, 4096), (0xF, 128 << 10),
            // Only bits [3:0] count; DZP (bit 4) does not change the size.
            (0x14, 64), (0xFFFF_FFFF_FFFF_FFE5, 128),
        ]
        for (raw, bytes) in rows {
            XCTAssertEqual(DataCacheZeroID(raw: raw).blockBytes, bytes, "raw \(String(raw, radix: 16))")
        }
    }

    func testDZPIsBitFourAlone() {
        XCTAssertTrue(DataCacheZeroID(raw: 0x10).prohibited)
        XCTAssertTrue(DataCacheZeroID(raw: 0x14).prohibited)
        XCTAssertFalse(DataCacheZeroID(raw: 0x0F).prohibited)
        XCTAssertFalse(DataCacheZeroID(raw: 0xFFFF_FFFF_FFFF_FFEF).prohibited)
        XCTAssertTrue(DataCacheZeroID(raw: 0xFFFF_FFFF_FFFF_FFFF).prohibited)
    }

    /// Stores instead when prohibited, or when a block is larger than the
    /// range (a page-sized block still zeroes exactly the page).
    func testZeroingStepFallsBackToStores() {
        XCTAssertNil(DataCacheZeroID(raw: 0x14).zeroingStep(forAligned: 4096))
        XCTAssertEqual(DataCacheZeroID(raw: 0xA).zeroingStep(forAligned: 4096), 4096)
        XCTAssertNil(DataCacheZeroID(raw: 0xB).zeroingStep(forAligned: 4096))
        XCTAssertNil(DataCacheZeroID(raw: 0xF).zeroingStep(forAligned: 4096))
        XCTAssertEqual(DataCacheZeroID(raw: 0x0).zeroingStep(forAligned: 4096), 4)
        XCTAssertNil(DataCacheZeroID(raw: 0x4).zeroingStep(forAligned: 32))
    }
}
