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
        // What a P2M's commit does once the invalidation has completed.
        let memory = FakeMemory(frames: 1)
        var pool = FakePool(memory: memory, pages: 0)
        batch.pending.rangesInvalidated()
        let released = batch.invalidationCompleted(freeingTo: &pool, memory: memory)
        XCTAssertEqual(released.references, 3)
        XCTAssertEqual(released.tablePages, 0)
        XCTAssertEqual(batch.releaser.released.count, 1)
        XCTAssertFalse(batch.removedMappings)
        XCTAssertTrue(batch.isEmpty)
    }

    /// Unlinked table pages wait in the batch and go back to the pool with the
    /// references, once the commit's invalidation completed.
    func testUnlinkedTablesWaitForTheCommit() {
        let memory = FakeMemory(frames: 4)
        var pool = FakePool(memory: memory)
        var batch = FlushBatch(releaser: NoHeldReferences())
        for _ in 0..<3 { batch.recordUnlinkedTable(pool.allocateTablePage()!, memory: memory) }
        batch.recordInvalidation(0x10, count: 1)
        XCTAssertEqual(batch.unlinkedTablePages, 3)
        XCTAssertEqual(pool.availableTablePages, 1)
        batch.pending.rangesInvalidated()
        XCTAssertEqual(batch.invalidationCompleted(freeingTo: &pool, memory: memory).tablePages, 3)
        XCTAssertEqual(pool.availableTablePages, 4)
        XCTAssertTrue(batch.isEmpty)
    }

    /// `absorb` moves every obligation: ranges, unlinked table pages and held
    /// references, so one commit of the receiver settles both batches.
    func testAbsorbTakesOverEverythingOwed() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var first = FlushBatch(releaser: FakeReleaser(log: rig.log))
        var second = FlushBatch(releaser: FakeReleaser(log: rig.log))
        try p2m.map(GFN(raw: 0x1000), to: MFN(raw: 0x7001), count: 4, as: .mapForeignRW, flushing: &first, holding: lockHeld)
        try p2m.map(GFN(raw: 0x9_0000), to: MFN(raw: 0x7101), count: 2, as: .mapForeignRO, flushing: &first, holding: lockHeld)
        try p2m.commit(&first, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x1000), count: 4, flushing: &first, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x9_0000), count: 2, flushing: &second, holding: lockHeld)
        let tables = first.unlinkedTablePages + second.unlinkedTablePages
        first.absorb(&second, memory: p2m.memory)
        XCTAssertTrue(second.isEmpty)
        XCTAssertEqual(first.heldReferences, 6)
        XCTAssertEqual(first.unlinkedTablePages, tables)
        XCTAssertEqual(first.pendingPages, 6)
        XCTAssertEqual(first.releaser.held.count, 2)
        let free = p2m.pool.availableTablePages
        let stats = try p2m.commit(&first, holding: lockHeld)
        XCTAssertEqual(stats.referencesReleased, 6)
        XCTAssertEqual(stats.tablePagesFreed, tables)
        XCTAssertEqual(p2m.pool.availableTablePages, free + tables)
        XCTAssertEqual(first.releaser.released.count, 2)
        try p2m.commit(&second, holding: lockHeld)
    }
}
