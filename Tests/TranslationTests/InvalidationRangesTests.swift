import XCTest
@testable import Translation

final class InvalidationRangesTests: XCTestCase {
    func testMergingOverlapAndAdjacency() {
        var r = InvalidationRanges()
        XCTAssertTrue(r.isEmpty)
        r.record(10, frames: 5)     // [10, 15)
        r.record(15, frames: 5)     // adjacent: [10, 20)
        r.record(12, frames: 2)     // inside
        r.record(5, frames: 6)      // overlaps the start: [5, 20)
        XCTAssertEqual(r.count, 1)
        XCTAssertEqual(r[0].first, 5)
        XCTAssertEqual(r[0].frames, 15)
        XCTAssertEqual(r.pages, 15)
        r.record(100, frames: 1)
        XCTAssertEqual(r.count, 2)
        XCTAssertEqual(r.pages, 16)
        XCTAssertTrue(r.overlaps(19, frames: 1))
        XCTAssertFalse(r.overlaps(20, frames: 80))
        XCTAssertTrue(r.overlaps(20, frames: 81))
        r.removeAll()
        XCTAssertTrue(r.isEmpty)
        XCTAssertEqual(r.pages, 0)
    }

    func testOverflowCoversEverything() {
        var r = InvalidationRanges()
        for i in 0..<UInt64(InvalidationRanges.capacity) { r.record(i * 10, frames: 1) }
        XCTAssertFalse(r.coversEverything)
        r.record(1000, frames: 1)
        XCTAssertTrue(r.coversEverything)
        XCTAssertTrue(r.overlaps(123_456, frames: 1))
        XCTAssertFalse(r.isEmpty)
    }
}
