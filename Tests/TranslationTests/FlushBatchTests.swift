import XCTest
import AArch64
@testable import Translation

final class FlushBatchTests: XCTestCase {
    func testHoldingAndRecording() {
        var batch = FlushBatch(releaser: FakeReleaser(log: nil))
        XCTAssertTrue(batch.isEmpty)
        batch.holdReference(MFN(raw: 7), count: 3)
        XCTAssertEqual(batch.heldReferences, 3)
        XCTAssertEqual(batch.releaser.held.count, 1)
        XCTAssertFalse(batch.isEmpty)
        batch.recordInvalidation(0x40, count: 2)
        XCTAssertTrue(batch.removedMappings)
        XCTAssertTrue(batch.needsInvalidation)
        XCTAssertEqual(batch.pendingPages, 2)
        // Settle by hand (a P2M's commit does this after the invalidation).
        batch.releaser.releaseHeld()
        batch.heldReferences = 0
        batch.ranges.removeAll()
        XCTAssertTrue(batch.isEmpty)
    }

    func testUnlinkedTablesAreThreadedThroughInvalidFirstWords() throws {
        let memory = FakeMemory(frames: 4)
        var batch = FlushBatch(releaser: NoHeldReferences())
        for f in memory.baseFrame..<memory.baseFrame + 3 {
            memory.store64(MFN(raw: f).address.adding(8), 0xFFF)  // a valid entry stays intact
            batch.recordUnlinkedTable(MFN(raw: f), memory: memory)
        }
        XCTAssertEqual(batch.unlinkedTablePages, 3)
        var frames: [UInt64] = []
        var next = batch.unlinkedHead
        while next != FlushBatch<NoHeldReferences>.endOfList {
            let link = memory.load64(MFN(raw: next).address)
            XCTAssertEqual(link & 1, 0, "a link must read as an invalid descriptor")
            XCTAssertEqual(memory.load64(MFN(raw: next).address.adding(8)), 0xFFF)
            frames.append(next)
            next = link == 0 ? FlushBatch<NoHeldReferences>.endOfList : link >> 12
        }
        XCTAssertEqual(frames, [memory.baseFrame + 2, memory.baseFrame + 1, memory.baseFrame])
        batch.unlinkedTablePages = 0
        batch.unlinkedHead = FlushBatch<NoHeldReferences>.endOfList
    }
}
