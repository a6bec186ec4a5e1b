import XCTest
import AArch64

final class MAIRTests: XCTestCase {
    func testStandardAssignment() {
        // Attr0 = 0xFF (WB RW-allocate), Attr1 = 0x44 (NC), Attr2 = 0x04 (nGnRE), Attr3 = 0x00 (nGnRnE).
        XCTAssertEqual(MAIR.standard.raw, 0x0000_0000_0004_44FF)
        XCTAssertEqual(MAIR.standard[MAIR.indexNormalWriteBack], 0xFF)
        XCTAssertEqual(MAIR.standard[MAIR.indexNormalNonCacheable], 0x44)
        XCTAssertEqual(MAIR.standard[MAIR.indexDeviceNGnRE], 0x04)
        XCTAssertEqual(MAIR.standard[MAIR.indexDeviceNGnRnE], 0x00)
    }

    func testSubscriptTouchesOneByte() {
        var m = MAIR(raw: 0)
        m[7] = 0xFF
        XCTAssertEqual(m.raw, 0xFF00_0000_0000_0000)
        m[7] = 0x44
        m[0] = 0x04
        XCTAssertEqual(m.raw, 0x4400_0000_0000_0004)
    }
}
