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

    /// The P2M's session tells the pending list which unlinked tables are empty
    /// (their pool count): a leaf table an unmap emptied collects the frames of
    /// the tables unlinked after it, while a leaf table unlinked whole, its
    /// entries still valid for a walker that cached the path to it, keeps every
    /// entry but the one its link takes until the commit frees it.
    func testOnlyAnEmptiedTableCollectsTheNextUnlinkedTables() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x3000), to: MFN(raw: 0x9_3000), count: 512, as: .ramRW, largestBlock: .page4K,
                    flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x1000), to: MFN(raw: 0x9_1000), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x2000), to: MFN(raw: 0x9_2000), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        let memory = p2m.memory
        let full = try XCTUnwrap(p2m.table.leafPath(0x3000, count: 1, memory: memory)).leafTable
        let first = try XCTUnwrap(p2m.table.leafPath(0x1000, count: 1, memory: memory)).leafTable
        let second = try XCTUnwrap(p2m.table.leafPath(0x2000, count: 1, memory: memory)).leafTable
        let free = p2m.pool.availableTablePages
        // The full table leaves first, with no collecting page yet: its link takes
        // one entry and it does not collect.
        try p2m.unmap(GFN(raw: 0x3000), count: 512, flushing: &batch, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x1000), count: 1, flushing: &batch, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x2000), count: 1, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(batch.unlinkedTablePages, 4, "three leaf tables and the level-2 table they emptied")
        let kept = (0..<512).filter { Stage2Descriptor.isValid(raw: memory.load64(full.address.adding(UInt64($0) * 8))) }
        XCTAssertEqual(kept.count, 511, "the full table keeps its entries but the link's")
        XCTAssertEqual(memory.load64(first.address.adding(8)) >> 12, second.raw,
                       "the emptied table collects the next table unlinked")
        let stats = try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(stats.tablePagesFreed, 4)
        XCTAssertEqual(p2m.pool.availableTablePages, free + 4)
        rig.checker.assertClean()
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
