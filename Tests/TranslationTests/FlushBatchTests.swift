import XCTest
import AArch64
import HostFakes
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

    /// `absorb` moves every obligation: ranges, unlinked table pages and held
    /// references, so one commit of the receiver settles both batches.
    func testAbsorbTakesOverEverythingOwed() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var first = FlushBatch(releaser: FakeReleaser(log: rig.log))
        var second = FlushBatch(releaser: FakeReleaser(log: rig.log))
        try p2m.map(GFN(raw: 0x1000), to: MFN(raw: 0x7001), count: 4, as: .mapForeignRW, flushing: &first)
        try p2m.map(GFN(raw: 0x9_0000), to: MFN(raw: 0x7101), count: 2, as: .mapForeignRO, flushing: &first)
        try p2m.commit(&first)
        try p2m.unmap(GFN(raw: 0x1000), count: 4, flushing: &first)
        try p2m.unmap(GFN(raw: 0x9_0000), count: 2, flushing: &second)
        let tables = first.unlinkedTablePages + second.unlinkedTablePages
        first.absorb(&second, memory: p2m.memory)
        XCTAssertTrue(second.isEmpty)
        XCTAssertEqual(first.heldReferences, 6)
        XCTAssertEqual(first.unlinkedTablePages, tables)
        XCTAssertEqual(first.pendingPages, 6)
        XCTAssertEqual(first.releaser.held.count, 2)
        let free = p2m.pool.availableTablePages
        let stats = try p2m.commit(&first)
        XCTAssertEqual(stats.referencesReleased, 6)
        XCTAssertEqual(stats.tablePagesFreed, tables)
        XCTAssertEqual(p2m.pool.availableTablePages, free + tables)
        XCTAssertEqual(first.releaser.released.count, 2)
        try p2m.commit(&second)
    }
}
