import XCTest
import AArch64

final class PageOrderTests: XCTestCase {
    func testOrdersMatchTheGranule() {
        XCTAssertEqual(PageOrder.page4K.pages, 1)
        XCTAssertEqual(PageOrder.block2M.pages, 512)
        XCTAssertEqual(PageOrder.block1G.pages, 262_144)
        XCTAssertEqual(PageOrder.block2M.bytes, 2 << 20)
        XCTAssertEqual(PageOrder.block1G.bytes, 1 << 30)
        XCTAssertEqual(PageOrder(leafLevel: 3), .page4K)
        XCTAssertEqual(PageOrder(leafLevel: 2), .block2M)
        XCTAssertEqual(PageOrder(leafLevel: 1), .block1G)
        XCTAssertTrue(PageOrder.block2M.isAligned(0x200))
        XCTAssertFalse(PageOrder.block2M.isAligned(0x201))
        XCTAssertTrue(PageOrder.page4K < PageOrder.block2M)
    }

    func testLevelGeometry() {
        XCTAssertEqual(TableLevel.shift(0), 39)
        XCTAssertEqual(TableLevel.shift(1), 30)
        XCTAssertEqual(TableLevel.shift(2), 21)
        XCTAssertEqual(TableLevel.shift(3), 12)
        XCTAssertEqual(TableLevel.pagesPerEntry(1), 262_144)
        XCTAssertEqual(TableLevel.entriesPerTable, 512)
    }
}
