import XCTest
@testable import SMMUv3

/// PROD/CONS arithmetic (IHI 0070 3.5.1): index [n-1:0], wrap bit n.
final class QueueIndexTests: XCTestCase {
    func testEmptyFullAndWrap() {
        let cons = QueueIndex(0, log2Entries: 2)
        var prod = cons
        XCTAssertTrue(prod.isEmpty(consumer: cons))
        XCTAssertEqual(prod.free(consumer: cons), 4)
        for _ in 0..<4 { prod = prod.advanced() }
        XCTAssertEqual(prod.position, 0b100)  // index 0, wrap set
        XCTAssertTrue(prod.wrap)
        XCTAssertEqual(prod.index, 0)
        XCTAssertTrue(prod.isFull(consumer: cons))
        XCTAssertFalse(prod.isEmpty(consumer: cons))
        XCTAssertEqual(prod.used(since: cons), 4)
        XCTAssertEqual(prod.free(consumer: cons), 0)
        // Four more: the wrap bit toggles back, the queue is empty relative to a consumer at 0.
        for _ in 0..<4 { prod = prod.advanced() }
        XCTAssertEqual(prod.position, 0)
        XCTAssertTrue(prod.isEmpty(consumer: cons))
    }

    func testUsedAcrossTheWrap() {
        let cons = QueueIndex(0b011, log2Entries: 2)   // index 3, wrap 0
        let prod = QueueIndex(0b101, log2Entries: 2)   // index 1, wrap 1
        XCTAssertEqual(prod.used(since: cons), 2)
        XCTAssertEqual(prod.free(consumer: cons), 2)
        XCTAssertFalse(prod.isFull(consumer: cons))
    }

    func testBitsAboveWrapAreNotPartOfThePosition() {
        // CMDQ_CONS.ERR [30:24] and OVFLG (bit 31) are dropped.
        let cons = QueueIndex(0x8100_0005, log2Entries: 4)
        XCTAssertEqual(cons.position, 5)
        XCTAssertEqual(QueueIndex(0x8000_0000, log2Entries: 4).position, 0)
    }
}
