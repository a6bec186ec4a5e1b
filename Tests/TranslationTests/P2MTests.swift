import XCTest
import AArch64
import HostFakes
@testable import Translation

final class P2MTests: XCTestCase {
    /// Everything an operation could change: table memory, pool, page count.
    struct Snapshot: Equatable {
        let words: [UInt64]
        let free: Int
        let inUse: Int
    }
    func snapshot(_ p2m: borrowing TestP2M, _ memory: FakeMemory) -> Snapshot {
        Snapshot(words: memory.words, free: p2m.pool.availableTablePages, inUse: p2m.tablePagesInUse)
    }

    // MARK: Blocks

    func testOneGiBAlignedMapWritesOneDescriptor() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        let before = rig.memory.stores
        try p2m.map(GFN(raw: 0x4_0000), to: MFN(raw: 0x80_0000), count: 1 << 18, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(rig.memory.stores - before, 1)
        XCTAssertEqual(p2m.tablePagesInUse, 2)  // the concatenated root only
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x4_0000)), P2MMapping(mfn: MFN(raw: 0x80_0000), type: .ramRW, order: .block1G))
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x4_1234)), P2MMapping(mfn: MFN(raw: 0x80_1234), type: .ramRW, order: .block1G))
        XCTAssertNil(p2m.lookup(GFN(raw: 0x3_FFFF)))
        XCTAssertNil(p2m.lookup(GFN(raw: 0x8_0000)))
        // A new mapping over nothing needs no invalidation.
        XCTAssertTrue(batch.isEmpty)
        p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
    }

    func testBlockSizeFollowsAlignmentOfGFNMFNAndCount() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        // gfn 2M-aligned but mfn only 4K-aligned: pages only.
        try p2m.map(GFN(raw: 0x200), to: MFN(raw: 0x1001), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x200))?.order, .page4K)
        // Both aligned, 513 pages: one 2 MiB block and one page.
        try p2m.map(GFN(raw: 0x400), to: MFN(raw: 0x2000), count: 513, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x400))?.order, .block2M)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x5FF))?.order, .block2M)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x600)), P2MMapping(mfn: MFN(raw: 0x2200), type: .ramRW, order: .page4K))
        // Unaligned start that reaches alignment: pages up to the boundary, then a block.
        try p2m.map(GFN(raw: 0x9FF), to: MFN(raw: 0x33FF), count: 513, as: .ramRO, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x9FF))?.order, .page4K)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0xA00)), P2MMapping(mfn: MFN(raw: 0x3400), type: .ramRO, order: .block2M))
        p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
    }

    func testFourKUnmapInsideTwoMiBBlockKeepsTheOther511() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x200), to: MFN(raw: 0x4000), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x2AB))?.order, .block2M)
        try p2m.unmap(GFN(raw: 0x305), count: 1, flushing: &batch, holding: lockHeld)
        XCTAssertNil(p2m.lookup(GFN(raw: 0x305)))
        for i in 0..<UInt64(512) where i != 0x105 {
            XCTAssertEqual(p2m.lookup(GFN(raw: 0x200 + i)), P2MMapping(mfn: MFN(raw: 0x4000 + i), type: .ramRW, order: .page4K))
        }
        // The split went through break-before-make: one immediate invalidation of the block.
        XCTAssertEqual(p2m.breakBeforeMakeInvalidations, 1)
        XCTAssertEqual(rig.log.events.prefix(2), [.tlbiRange(vmid: 1, page: 0x200, pages: 512), .tlbSync])
        XCTAssertTrue(batch.removedMappings)
        p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
        // Reachable stores: the block, its break, the link of the split table (filled unlinked).
        XCTAssertEqual(rig.checker.checkedStores, 3)
    }

    func testRunOfPagesWritesOneDescriptorPerPagePlusTables() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        let before = rig.memory.stores
        // mfn misaligned: 1024 pages over two leaf tables, one level-2 table.
        try p2m.map(GFN(raw: 0x8_0000), to: MFN(raw: 0x10_0001), count: 1024, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(rig.memory.stores - before, 1024 + 3)
        XCTAssertEqual(p2m.tablePagesInUse, 2 + 3)
        try p2m.unmap(GFN(raw: 0x8_0000), count: 1024, flushing: &batch, holding: lockHeld)
        // Unmapping whole leaf tables clears their parent entries and frees them.
        XCTAssertEqual(p2m.tablePagesInUse, 2)
        XCTAssertEqual(batch.unlinkedTablePages, 3)
        let stats = p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(stats.tablePagesFreed, 3)
        XCTAssertEqual(stats.rangeInvalidations, 0)
        XCTAssertEqual(stats.vmidInvalidations, 1)  // 1024 pages > threshold 512
        XCTAssertEqual(p2m.pool.availableTablePages, 256 - 2)
        rig.checker.assertClean()
    }

    // MARK: All-or-nothing and typed errors

    func testInsertOnlyConflictChangesNothing() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x1234), to: MFN(raw: 0x5000), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        let before = snapshot(p2m, rig.memory)
        XCTAssertThrowsError(try p2m.map(GFN(raw: 0x1000), to: MFN(raw: 0x9000), count: 0x400, as: .ramRW, flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .alreadyMapped(GFN(raw: 0x1234)))
        }
        // Insert-only over a 2 MiB block as well.
        try p2m.map(GFN(raw: 0x4_0000), to: MFN(raw: 0x8000), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        let before2 = snapshot(p2m, rig.memory)
        XCTAssertThrowsError(try p2m.map(GFN(raw: 0x4_0100), to: MFN(raw: 0x9000), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .alreadyMapped(GFN(raw: 0x4_0100)))
        }
        // Even when the block already maps exactly these frames.
        XCTAssertThrowsError(try p2m.map(GFN(raw: 0x4_0100), to: MFN(raw: 0x8100), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .alreadyMapped(GFN(raw: 0x4_0100)))
        }
        XCTAssertEqual(snapshot(p2m, rig.memory), before2)
        XCTAssertNotEqual(before, before2)
        // Replacing with the identical mapping is a no-op: no split, no write.
        let stores = rig.memory.stores
        try p2m.map(GFN(raw: 0x4_0100), to: MFN(raw: 0x8100), count: 1, as: .ramRW, policy: .replace, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(rig.memory.stores, stores)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x4_0100))?.order, .block2M)
        p2m.commit(&batch, holding: lockHeld)
    }

    func testPoolExhaustionChangesNothing() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M(poolPages: 6)  // root (2) + 4
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0), to: MFN(raw: 1), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)  // +2 tables
        let before = snapshot(p2m, rig.memory)
        // Three leaf tables in a new 1 GiB region need 1 + 3 pages; 2 remain.
        XCTAssertThrowsError(try p2m.map(GFN(raw: 0x4_0000), to: MFN(raw: 1), count: 1500, as: .ramRW, flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .tablePoolExhausted(needed: 4, available: 2))
        }
        XCTAssertEqual(snapshot(p2m, rig.memory), before)
        // Replacing part of a 1 GiB block needs two split tables; fails the same way.
        try p2m.map(GFN(raw: 0x8_0000), to: MFN(raw: 0x4_0000), count: 1 << 18, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0xC_0000), to: MFN(raw: 0x8_0000), count: 1 << 18, as: .ramRW, flushing: &batch, holding: lockHeld)
        let full = snapshot(p2m, rig.memory)
        var small = try Rig().makeP2M(poolPages: 3)
        var b2 = ramBatch()
        try small.map(GFN(raw: 0x4_0000), to: MFN(raw: 0x4_0000), count: 1 << 18, as: .ramRW, flushing: &b2, holding: lockHeld)
        XCTAssertThrowsError(try small.unmap(GFN(raw: 0x4_0005), count: 1, flushing: &b2, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .tablePoolExhausted(needed: 2, available: 1))
        }
        XCTAssertEqual(small.lookup(GFN(raw: 0x4_0005))?.order, .block1G)
        small.commit(&b2, holding: lockHeld)
        XCTAssertEqual(snapshot(p2m, rig.memory), full)
        p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
    }

    func testBadInputIsRefusedWithoutChange() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()  // 40-bit IPA and PA: 2^28 frames each
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x10), to: MFN(raw: 0x10), count: 4, as: .ramRW, flushing: &batch, holding: lockHeld)
        let before = snapshot(p2m, rig.memory)
        func check(_ expected: P2MError, line: UInt = #line, _ body: (inout TestP2M, inout FlushBatch<NoHeldReferences>) throws(P2MError) -> Void) {
            do {
                try body(&p2m, &batch)
                XCTFail("accepted", line: line)
            } catch {
                XCTAssertEqual(error, expected, line: line)
            }
            XCTAssertEqual(snapshot(p2m, rig.memory), before, line: line)
        }
        let limit: UInt64 = 1 << 28
        check(.zeroCount) { (p, b) throws(P2MError) in try p.map(GFN(raw: 0x100), to: MFN(raw: 1), count: 0, as: .ramRW, flushing: &b, holding: lockHeld) }
        check(.zeroCount) { (p, b) throws(P2MError) in try p.unmap(GFN(raw: 0x100), count: 0, flushing: &b, holding: lockHeld) }
        check(.rangeWraps(GFN(raw: UInt64.max - 1), count: 4)) { (p, b) throws(P2MError) in
            try p.unmap(GFN(raw: UInt64.max - 1), count: 4, flushing: &b, holding: lockHeld) }
        check(.gfnBeyondIPASpace(GFN(raw: limit), limit: GFN(raw: limit))) { (p, b) throws(P2MError) in
            try p.map(GFN(raw: limit), to: MFN(raw: 1), count: 1, as: .ramRW, flushing: &b, holding: lockHeld) }
        check(.gfnBeyondIPASpace(GFN(raw: limit), limit: GFN(raw: limit))) { (p, b) throws(P2MError) in
            try p.map(GFN(raw: limit - 2), to: MFN(raw: 1), count: 3, as: .ramRW, flushing: &b, holding: lockHeld) }
        check(.mfnBeyondPARange(MFN(raw: limit), limit: MFN(raw: limit))) { (p, b) throws(P2MError) in
            try p.map(GFN(raw: 0x100), to: MFN(raw: limit - 1), count: 2, as: .ramRW, flushing: &b, holding: lockHeld) }
        check(.mfnBeyondPARange(MFN(raw: UInt64.max), limit: MFN(raw: limit))) { (p, b) throws(P2MError) in
            try p.map(GFN(raw: 0x100), to: MFN(raw: UInt64.max), count: 2, as: .ramRW, flushing: &b, holding: lockHeld) }
        check(.misaligned(GFN(raw: 0x201), MFN(raw: 0x400), order: .block2M)) { (p, b) throws(P2MError) in
            try p.map(GFN(raw: 0x201), to: MFN(raw: 0x400), order: .block2M, as: .ramRW, flushing: &b, holding: lockHeld) }
        check(.misaligned(GFN(raw: 0x200), MFN(raw: 0x401), order: .block2M)) { (p, b) throws(P2MError) in
            try p.map(GFN(raw: 0x200), to: MFN(raw: 0x401), order: .block2M, as: .ramRW, flushing: &b, holding: lockHeld) }
        check(.cannotMapInvalidType) { (p, b) throws(P2MError) in
            try p.map(GFN(raw: 0x100), to: MFN(raw: 1), count: 1, as: .invalid, flushing: &b, holding: lockHeld) }
        check(.alreadyMapped(GFN(raw: 0x12))) { (p, b) throws(P2MError) in
            try p.map(GFN(raw: 0x12), to: MFN(raw: 1), count: 1, as: .ramRW, flushing: &b, holding: lockHeld) }
        check(.unsupportedTypeTransition(from: .ramRW, to: .mmioDirectDevice)) { (p, b) throws(P2MError) in
            try p.changeType(GFN(raw: 0x10), count: 4, from: .ramRW, to: .mmioDirectDevice, flushing: &b, holding: lockHeld) }
        check(.unsupportedTypeTransition(from: .grantMapRO, to: .grantMapRW)) { (p, b) throws(P2MError) in
            try p.changeType(GFN(raw: 0x10), count: 4, from: .grantMapRO, to: .grantMapRW, flushing: &b, holding: lockHeld) }
        check(.gfnBeyondIPASpace(GFN(raw: limit), limit: GFN(raw: limit))) { (p, b) throws(P2MError) in
            try p.changeType(GFN(raw: limit - 1), count: 2, from: .ramRW, to: .ramRO, flushing: &b, holding: lockHeld) }
        XCTAssertTrue(batch.isEmpty)
        p2m.commit(&batch, holding: lockHeld)
    }

    // MARK: Replace and break-before-make

    func testReplaceBreaksBeforeMakingAndReportsRemovedPages() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        try p2m.map(GFN(raw: 0x1000), to: MFN(raw: 0x7000), count: 16, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        rig.log.events.removeAll()
        // Replace pages 4..<12 with other frames, and the same frames for 0..<4 (no removal for those).
        try p2m.map(GFN(raw: 0x1004), to: MFN(raw: 0x9004), count: 8, as: .ramRW, policy: .replace, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x1000), to: MFN(raw: 0x7000), count: 4, as: .ramRO, policy: .replace, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(removals.runs.count, 1)
        XCTAssertEqual(removals.runs.first?.gfn, 0x1004)
        XCTAssertEqual(removals.runs.first?.mfn, 0x7004)
        XCTAssertEqual(removals.runs.first?.count, 8)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x1005)), P2MMapping(mfn: MFN(raw: 0x9005), type: .ramRW, order: .page4K))
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x1002)), P2MMapping(mfn: MFN(raw: 0x7002), type: .ramRO, order: .page4K))
        // Each replacement broke its run and invalidated it at once, on the CPU and the IOMMU.
        XCTAssertEqual(rig.log.events, [
            .tlbiRange(vmid: 1, page: 0x1004, pages: 8), .iommuRange(vmid: 1, page: 0x1004, pages: 8), .tlbSync, .iommuSync,
            .tlbiRange(vmid: 1, page: 0x1000, pages: 4), .iommuRange(vmid: 1, page: 0x1000, pages: 4), .tlbSync, .iommuSync,
        ])
        try p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
        for (gfn, m) in mirror.pages { XCTAssertEqual(p2m.lookup(GFN(raw: gfn))?.mfn, MFN(raw: m.mfn)) }
    }

    func testReplacingTableWithBlockRemovesSubtree() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        try p2m.map(GFN(raw: 0x200), to: MFN(raw: 0x1001), count: 3, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.tablePagesInUse, 4)
        try p2m.map(GFN(raw: 0x200), to: MFN(raw: 0x2000), count: 512, as: .ramRW, policy: .replace, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x201))?.order, .block2M)
        XCTAssertEqual(p2m.tablePagesInUse, 3)
        XCTAssertEqual(removals.runs.map { $0.count }, [3])
        XCTAssertEqual(batch.heldReferences, 3)
        XCTAssertEqual(batch.releaser.held.count, 1)
        let stats = try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(stats.referencesReleased, 3)
        XCTAssertEqual(stats.tablePagesFreed, 1)
        rig.checker.assertClean()
    }

    func testChangeTypeSplitsPartlyCoveredBlock() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log))
        try p2m.map(GFN(raw: 0x400), to: MFN(raw: 0x6000), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.changeType(GFN(raw: 0x500), count: 0x10, from: .ramRW, to: .ramRO, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x505)), P2MMapping(mfn: MFN(raw: 0x6105), type: .ramRO, order: .page4K))
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x4FF)), P2MMapping(mfn: MFN(raw: 0x60FF), type: .ramRW, order: .page4K))
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x510)), P2MMapping(mfn: MFN(raw: 0x6110), type: .ramRW, order: .page4K))
        XCTAssertEqual(mirror.events.last, .typeChanged(GFN(raw: 0x500), MFN(raw: 0x6100), count: 0x10, from: .ramRW, to: .ramRO,
                                                     access: .all))
        XCTAssertTrue(removals.runs.isEmpty)
        // Entries of another type are left alone; a whole block changes in place.
        try p2m.map(GFN(raw: 0x600), to: MFN(raw: 0x8000), count: 512, as: .grantMapRW, flushing: &batch, holding: lockHeld)
        let stores = rig.memory.stores
        try p2m.changeType(GFN(raw: 0x400), count: 0x400, from: .grantMapRW, to: .grantMapRO, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(rig.memory.stores - stores, 1)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x700)), P2MMapping(mfn: MFN(raw: 0x8100), type: .grantMapRO, order: .block2M))
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x420))?.type, .ramRW)
        // The write-protect must reach the TLBs at commit.
        XCTAssertTrue(batch.needsInvalidation)
        try p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
    }

    // MARK: Flush ordering (seed 000, XSA-346)

    func testReferencesAndTablesAreReleasedOnlyAfterBothInvalidationsCompleted() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        try p2m.map(GFN(raw: 0x3000), to: MFN(raw: 0x5_0000), count: 2, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x3000), count: 2, flushing: &batch, holding: lockHeld)
        // Edits issued nothing; the batch holds the references and the emptied tables.
        XCTAssertEqual(rig.log.events, [])
        XCTAssertTrue(batch.removedMappings)
        XCTAssertEqual(batch.heldReferences, 2)
        XCTAssertEqual(batch.unlinkedTablePages, 2)
        XCTAssertEqual(batch.releaser.released.count, 0)
        let stats = try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(rig.log.events.prefix(5), [
            .tlbiRange(vmid: 1, page: 0x3000, pages: 2), .iommuRange(vmid: 1, page: 0x3000, pages: 2),
            .tlbSync, .iommuSync, .release,
        ])
        XCTAssertEqual(rig.log.events.count, 7)  // then the two table pages are freed
        XCTAssertEqual(stats.tlbiOperations, 1)
        XCTAssertEqual(stats.referencesReleased, 2)
        XCTAssertEqual(stats.tablePagesFreed, 2)
        XCTAssertEqual(batch.releaser.released.first?.0, MFN(raw: 0x5_0000))
        XCTAssertTrue(batch.isEmpty)
        XCTAssertFalse(batch.removedMappings)
        rig.checker.assertClean()
    }

    func testRangesMergeAndOverflowToWholeVMID() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x100), count: 64, as: .ramRW, flushing: &batch, holding: lockHeld)
        for g in stride(from: UInt64(0x100), to: 0x110, by: 1) { try p2m.unmap(GFN(raw: g), count: 1, flushing: &batch, holding: lockHeld) }
        XCTAssertEqual(batch.ranges.count, 1)
        var stats = p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(stats.rangeInvalidations, 1)
        XCTAssertEqual(stats.pagesInvalidated, 16)
        for g in stride(from: UInt64(0x110), to: 0x140, by: 4) { try p2m.unmap(GFN(raw: g), count: 1, flushing: &batch, holding: lockHeld) }
        XCTAssertTrue(batch.invalidatesWholeVMID)  // 12 disjoint ranges > capacity 8
        stats = p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(stats.vmidInvalidations, 1)
        XCTAssertEqual(stats.rangeInvalidations, 0)
        rig.checker.assertClean()
    }

    func testObserverRefusalChangesNothing() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log))
        try p2m.map(GFN(raw: 0x10), to: MFN(raw: 0x10), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        mirror.refuse = true
        let words = rig.memory.words
        XCTAssertThrowsError(try p2m.map(GFN(raw: 0x4_0000), to: MFN(raw: 0x10), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .observerRefused(GFN(raw: 0x4_0000), count: 1))
        }
        XCTAssertThrowsError(try p2m.unmap(GFN(raw: 0x10), count: 1, flushing: &batch, holding: lockHeld))
        XCTAssertEqual(rig.memory.words, words)
        XCTAssertEqual(mirror.events.count, 1)
        try p2m.commit(&batch, holding: lockHeld)
    }

    // MARK: Geometry

    func testConcatenatedRootsAndOtherIPASizes() throws {
        for (ipa, pa) in [(40, PhysicalAddressRange.bits40), (32, .bits40), (48, .bits48), (36, .bits36)] {
            let rig = Rig()
            var p2m = try rig.makeP2M(ipaBits: ipa, paRange: pa)
            var batch = ramBatch()
            let top = GFN(raw: (1 << UInt64(ipa - 12)) - 1)
            try p2m.map(GFN(raw: 0), to: MFN(raw: 5), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
            try p2m.map(top, to: MFN(raw: 7), count: 1, as: .mmioDirectDevice, flushing: &batch, holding: lockHeld)
            XCTAssertEqual(p2m.lookup(top), P2MMapping(mfn: MFN(raw: 7), type: .mmioDirectDevice, order: .page4K), "\(ipa)")
            XCTAssertEqual(p2m.lookup(GFN(raw: 0))?.mfn, MFN(raw: 5))
            XCTAssertEqual(p2m.vttbr.root, p2m.root.address)
            XCTAssertEqual(p2m.vttbr.vmid, 1)
            XCTAssertThrowsError(try p2m.map(GFN(raw: top.raw + 1), to: MFN(raw: 7), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld))
            try p2m.unmap(GFN(raw: 0), count: top.raw + 1, flushing: &batch, holding: lockHeld)
            p2m.commit(&batch, holding: lockHeld)
            XCTAssertEqual(p2m.tablePagesInUse, p2m.vtcr.rootTables)
            XCTAssertEqual(p2m.pool.availableTablePages, 256 - p2m.vtcr.rootTables)
            rig.checker.assertClean()
        }
    }

    func testConfigurationErrorsAreTyped() {
        let memory = FakeMemory(frames: 4)
        func expect(_ expected: P2MError, _ config: P2MConfiguration, poolPages: Int? = nil, line: UInt = #line) {
            do {
                _ = try TestP2M(configuration: config, memory: memory, pool: FakePool(memory: memory, pages: poolPages), tlb: RecordingTLB())
                XCTFail("accepted", line: line)
            } catch {
                XCTAssertEqual(error, expected, line: line)
            }
        }
        expect(.configuration(.vmidTooWide(vmid: 300, width: .bits8)),
               P2MConfiguration(vmid: 300, ipaBits: 40, paRange: .bits40, vmidWidth: .bits8))
        expect(.configuration(.ipaExceedsPhysicalRange(ipaBits: 44, paBits: 40)),
               P2MConfiguration(vmid: 1, ipaBits: 44, paRange: .bits40, vmidWidth: .bits8))
        expect(.tablePoolExhausted(needed: 2, available: 1),
               P2MConfiguration(vmid: 1, ipaBits: 40, paRange: .bits40, vmidWidth: .bits8), poolPages: 1)
    }

    // MARK: Teardown

    func testRelinquishIsBoundedResumableAndReturnsEveryPage() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        try p2m.map(GFN(raw: 0x0), to: MFN(raw: 0x1001), count: 700, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x4_0000), to: MFN(raw: 0x4_0000), count: 1 << 18, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0xF_FE00), to: MFN(raw: 0x3000), count: 3, as: .mapForeignRO, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        var steps = 0
        while p2m.relinquish(budget: 100, flushing: &batch, holding: lockHeld) == .more {
            steps += 1
            XCTAssertLessThan(steps, 1000)
        }
        XCTAssertGreaterThan(steps, 5)
        XCTAssertTrue(p2m.isRelinquished)
        XCTAssertEqual(p2m.tablePagesInUse, 0)
        XCTAssertEqual(removals.pages.count, 700 + (1 << 18) + 3)
        XCTAssertEqual(batch.heldReferences, 3)
        rig.checker.roots = 0..<0  // VTTBR_EL2 no longer names the root of a dead domain
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(p2m.pool.availableTablePages, 256)
        XCTAssertThrowsError(try p2m.map(GFN(raw: 0), to: MFN(raw: 1), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .relinquished)
        }
        XCTAssertEqual(p2m.relinquish(budget: 1, flushing: &batch, holding: lockHeld), .done)
        XCTAssertTrue(mirror.pages.isEmpty)
        rig.checker.assertClean()
    }
}

final class P2MMergeTests: XCTestCase {
    func testFullyPopulatedUniformTablesMergeIntoBlocks() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        // 512 single pages, in an order that fills entry 511 before the last hole.
        for i in UInt64(0)..<512 where i != 7 {
            try p2m.map(GFN(raw: 0x4_0200 + i), to: MFN(raw: 0x9_0200 + i), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        }
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x4_0200))?.order, .page4K)
        XCTAssertEqual(p2m.tablePagesInUse, 4)
        try p2m.map(GFN(raw: 0x4_0207), to: MFN(raw: 0x9_0207), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x4_0300)), P2MMapping(mfn: MFN(raw: 0x9_0300), type: .ramRW, order: .block2M))
        XCTAssertEqual(p2m.tablePagesInUse, 3)
        XCTAssertEqual(batch.unlinkedTablePages, 1)
        XCTAssertEqual(p2m.breakBeforeMakeInvalidations, 1)
        // A different type or a discontiguous output does not merge.
        for i in UInt64(0)..<512 {
            try p2m.map(GFN(raw: 0x4_0400 + i), to: MFN(raw: 0x9_0400 + (i == 9 ? 0x1000 : i)), count: 1,
                        as: .ramRW, flushing: &batch, holding: lockHeld)
        }
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x4_0400))?.order, .page4K)
        // 2 MiB blocks filling a whole level-2 table cascade into one 1 GiB block.
        for i in UInt64(0)..<512 where i != 1 && i != 2 {
            try p2m.map(GFN(raw: 0x8_0000 + i * 512), to: MFN(raw: 0x4_0000 + i * 512), count: 512, as: .ramRO,
                        flushing: &batch, holding: lockHeld)
        }
        try p2m.map(GFN(raw: 0x8_0200), to: MFN(raw: 0x4_0200), count: 1024, as: .ramRO, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x8_1234)), P2MMapping(mfn: MFN(raw: 0x4_1234), type: .ramRO, order: .block1G))
        XCTAssertTrue(removals.runs.isEmpty, "a merge removes no mapping")
        try p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
        // Pages only, on request: no merge.
        try p2m.unmap(GFN(raw: 0x8_0000), count: 1 << 18, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x8_0000), to: MFN(raw: 0x4_0000), count: 512, as: .ramRW, largestBlock: .page4K,
                    flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x8_0000))?.order, .page4K)
        try p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
    }
}

/// Seed 000 (XSA-346): moving pages with a deferred flush must keep every page
/// reference until the flush covering its *old* GFN has completed, on the CPU and the IOMMU.
final class P2MXSA346Tests: XCTestCase {
    func testMovingPagesHoldsReferencesUntilTheFlushCompleted() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        // Page P at gfn 0x100; a foreign page Q at gfn 0x900 (the move's destination).
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x7_0000), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x900), to: MFN(raw: 0x7_1000), count: 1, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        rig.log.events.removeAll()

        // XENMAPSPACE_gmfn_range, one page: the caller keeps its reference to P in the
        // batch (the fixed xenmem_add_to_physmap's `pages[]`), unmaps P's old GFN and maps
        // P at the destination, displacing Q (whose reference the listener hands over).
        batch.holdReference(MFN(raw: 0x7_0000))
        try p2m.unmap(GFN(raw: 0x100), count: 1, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x900), to: MFN(raw: 0x7_0000), count: 1, as: .ramRW, policy: .replace, flushing: &batch, holding: lockHeld)
        XCTAssertTrue(batch.removedMappings, "the caller must not free anything itself before commit")
        XCTAssertEqual(batch.releaser.held.map { $0.0 }, [MFN(raw: 0x7_0000), MFN(raw: 0x7_1000)])
        XCTAssertFalse(rig.log.events.contains(.release))

        try p2m.commit(&batch, holding: lockHeld)
        let release = try XCTUnwrap(rig.log.events.firstIndex(of: .release))
        // The old GFN's invalidation went to the CPU and the IOMMU and completed first.
        let oldGFN = try XCTUnwrap(rig.log.events.firstIndex(of: .tlbiRange(vmid: 1, page: 0x100, pages: 1)))
        let oldGFNIOMMU = try XCTUnwrap(rig.log.events.firstIndex(of: .iommuRange(vmid: 1, page: 0x100, pages: 1)))
        let sync = try XCTUnwrap(rig.log.events.lastIndex(of: .tlbSync))
        let iommuSync = try XCTUnwrap(rig.log.events.lastIndex(of: .iommuSync))
        XCTAssertLessThan(oldGFN, sync)
        XCTAssertLessThan(oldGFNIOMMU, iommuSync)
        XCTAssertLessThan(sync, release)
        XCTAssertLessThan(iommuSync, release)
        XCTAssertEqual(batch.releaser.released.count, 2)
        rig.checker.assertClean()
    }
}

/// A memory whose store-ordering barrier is counted: the engine must call the
/// conformer's own implementation (a protocol requirement, not an extension method).
final class BarrierCountingMemory: PhysicalMemory {
    let inner: FakeMemory
    var barriers = 0
    init(_ inner: FakeMemory) { self.inner = inner }
    func load64(_ address: PhysAddr) -> UInt64 { inner.load64(address) }
    func store64(_ address: PhysAddr, _ value: UInt64) { inner.store64(address, value) }
    func zeroFrame(_ frame: MFN) { inner.zeroFrame(frame) }
    func orderStoresForWalkers() { barriers += 1 }
}

final class P2MBarrierTests: XCTestCase {
    func testNewTablesArePublishedAfterABarrier() throws {
        let fake = FakeMemory(frames: 16)
        let memory = BarrierCountingMemory(fake)
        enum Counting: P2MEnvironment {
            typealias Memory = BarrierCountingMemory
            typealias Pool = FakePool
            typealias TLB = RecordingTLB
        }
        var p2m = try P2M<Counting>(configuration: P2MConfiguration(vmid: 1, ipaBits: 40, paRange: .bits40, vmidWidth: .bits8),
                                    memory: memory, pool: FakePool(memory: fake), tlb: RecordingTLB())
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x10), to: MFN(raw: 0x10), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(memory.barriers, 2)  // a level-2 and a level-3 table, each filled before linking
        p2m.commit(&batch, holding: lockHeld)
    }
}

/// DESIGN.md rule 1 / seed 000 when the IOMMU side fails: an invalidation the
/// IOMMU did not confirm releases nothing, and a later commit retries it.
final class P2MIOMMUFailureTests: XCTestCase {
    func testCommitKeepsEverythingUntilTheIOMMUConfirms() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        // 16 foreign pages in leaf and level-2 tables of their own: unmapping them
        // holds 16 references and unlinks both emptied tables.
        try p2m.map(GFN(raw: 0x1000), to: MFN(raw: 0x7001), count: 16, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        let freeBefore = p2m.pool.availableTablePages
        try p2m.unmap(GFN(raw: 0x1000), count: 16, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(batch.heldReferences, 16)
        XCTAssertEqual(batch.unlinkedTablePages, 2)
        rig.log.events.removeAll()
        rig.log.failingIOMMUSyncs = 1
        do {
            try p2m.commit(&batch, holding: lockHeld)
            XCTFail("a lost IOMMU completion must fail the commit")
        } catch {
            XCTAssertEqual(error, .iommuNotSynchronized(.completionTimeout, heldReferences: 16, tablePages: 2))
        }
        XCTAssertFalse(rig.log.events.contains(.release), "no reference released")
        XCTAssertFalse(rig.log.events.contains { if case .free = $0 { true } else { false } }, "no table page freed")
        XCTAssertEqual(batch.releaser.released.count, 0)
        XCTAssertEqual(batch.heldReferences, 16)
        XCTAssertEqual(batch.unlinkedTablePages, 2)
        XCTAssertEqual(batch.pendingPages, 16, "the range stays owed for the retry")
        XCTAssertEqual(p2m.pool.availableTablePages, freeBefore)

        // The IOMMU recovered: the retry invalidates the same range again, then releases.
        rig.log.events.removeAll()
        let stats = try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(rig.log.events.prefix(4), [.tlbiRange(vmid: 1, page: 0x1000, pages: 16),
                                                 .iommuRange(vmid: 1, page: 0x1000, pages: 16), .tlbSync, .iommuSync])
        XCTAssertEqual(rig.log.events[4], .release)
        XCTAssertEqual(stats.referencesReleased, 16)
        XCTAssertEqual(stats.tablePagesFreed, 2)
        XCTAssertTrue(batch.isEmpty)
        XCTAssertEqual(p2m.pool.availableTablePages, freeBefore + 2)
        rig.checker.assertClean()
    }

    func testUnconfirmedBreakBeforeMakeStaysOwedInTheBatch() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        try p2m.map(GFN(raw: 0x200), to: MFN(raw: 0x4200), count: 512, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        // Unmapping one page splits the block: break-before-make, whose IOMMU wait
        // fails. The IOMMU may still hold the block, so no table may replace it.
        let tablePages = p2m.tablePagesInUse
        rig.log.failingIOMMUSyncs = 1
        XCTAssertThrowsError(try p2m.unmap(GFN(raw: 0x205), count: 1, flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .breakNotConfirmed(.completionTimeout, GFN(raw: 0x200), count: 512))
        }
        XCTAssertEqual(p2m.breakBeforeMakeInvalidations, 1)
        rig.checker.assertClean()
        // The break stands: the whole block is invalid (a fault, never a stale
        // translation), reported removed once, and dropped by the mirror.
        XCTAssertNil(p2m.lookup(GFN(raw: 0x205)))
        XCTAssertNil(p2m.lookup(GFN(raw: 0x206)))
        XCTAssertNil(p2m.lookup(GFN(raw: 0x200)))
        XCTAssertEqual(removals.runs.count, 1)
        XCTAssertEqual(removals.runs.first?.gfn, 0x200)
        XCTAssertEqual(removals.runs.first?.mfn, 0x4200)
        XCTAssertEqual(removals.runs.first?.count, 512)
        XCTAssertEqual(mirror.events.last, .unmapped(GFN(raw: 0x200), count: 512))
        XCTAssertTrue(mirror.pages.isEmpty)
        XCTAssertEqual(p2m.tablePagesInUse, tablePages - 1, "no split table linked; the emptied table unlinked")
        XCTAssertTrue(batch.ranges.overlaps(0x200, frames: 512), "the whole broken block is owed")
        XCTAssertGreaterThanOrEqual(batch.pendingPages, 512)
        XCTAssertEqual(batch.heldReferences, 512, "every foreign reference of the block held")
        let stats = try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(stats.referencesReleased, 512)
        XCTAssertGreaterThanOrEqual(stats.pagesInvalidated, 512)
        // The operation can be done again once the IOMMU answers.
        try p2m.map(GFN(raw: 0x200), to: MFN(raw: 0x4200), count: 5, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x206), to: MFN(raw: 0x4206), count: 506, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertNil(p2m.lookup(GFN(raw: 0x205)))
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x206))?.mfn, MFN(raw: 0x4206))
        // Break-before-make held on the CPU and on the IOMMU throughout.
        rig.checker.assertClean()
        XCTAssertGreaterThan(rig.checker.checkedStores, 0)
    }

    /// A replacing map over valid leaves with other outputs breaks the run and
    /// waits once; if the IOMMU does not confirm, no leaf of the run is made and
    /// every broken one is reported removed (those keeping their output too).
    func testUnconfirmedLeafReplacementLeavesTheRunInvalid() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        try p2m.map(GFN(raw: 0x300), to: MFN(raw: 0x5000), count: 1, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x301), to: MFN(raw: 0x6001), count: 3, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        // 0x300: same output, another type (RW -> RO); 0x301-0x303: new outputs; 0x304-0x305: holes.
        rig.log.failingIOMMUSyncs = 1
        XCTAssertThrowsError(try p2m.map(GFN(raw: 0x300), to: MFN(raw: 0x5000), count: 6, as: .mapForeignRO,
                                         policy: .replace, flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .breakNotConfirmed(.completionTimeout, GFN(raw: 0x300), count: 6))
        }
        for g in UInt64(0x300)..<0x306 { XCTAssertNil(p2m.lookup(GFN(raw: g))) }
        XCTAssertEqual(removals.pages, [0x300: 0x5000, 0x301: 0x6001, 0x302: 0x6002, 0x303: 0x6003])
        XCTAssertTrue(removals.runs.allSatisfy { $0.type == .mapForeignRW }, "reported with the old type")
        XCTAssertEqual(batch.heldReferences, 4)
        XCTAssertTrue(mirror.pages.isEmpty)
        rig.checker.assertClean()
        try p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
    }

    /// A merge (a uniform table replaced by the block it equals) changes no
    /// translation: if its invalidation is not confirmed the table is put back
    /// as it was, and the map that filled it has completed.
    func testUnconfirmedMergeKeepsTheTable() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        try p2m.map(GFN(raw: 0x400), to: MFN(raw: 0x8000), count: 511, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        rig.log.failingIOMMUSyncs = 1
        try p2m.map(GFN(raw: 0x5FF), to: MFN(raw: 0x81FF), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.breakBeforeMakeInvalidations, 1, "the merge was tried")
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x5FF)), P2MMapping(mfn: MFN(raw: 0x81FF), type: .ramRW, order: .page4K))
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x400)), P2MMapping(mfn: MFN(raw: 0x8000), type: .ramRW, order: .page4K))
        XCTAssertEqual(mirror.events.last, .mapped(GFN(raw: 0x5FF), MFN(raw: 0x81FF), count: 1, type: .ramRW, access: .all))
        XCTAssertTrue(removals.runs.isEmpty)
        XCTAssertTrue(batch.ranges.overlaps(0x400, frames: 512), "the merge's invalidation is owed")
        try p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
    }

    func testMapOverAnUnconfirmedInvalidationIsRefusedWithoutChange() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log, checker: rig.checker))
        try p2m.map(GFN(raw: 0x300), to: MFN(raw: 0x5000), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x300), count: 1, flushing: &batch, holding: lockHeld)
        // Mapping there again must first complete the pending invalidation; the IOMMU fails it.
        rig.log.failingIOMMUSyncs = 1
        let words = rig.memory.words, events = mirror.events.count
        do {
            try p2m.map(GFN(raw: 0x300), to: MFN(raw: 0x6000), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
            XCTFail("expected a refusal")
        } catch {
            XCTAssertEqual(error, .iommuNotSynchronized(.completionTimeout))
        }
        XCTAssertTrue(rig.memory.words == words, "nothing written")
        XCTAssertEqual(mirror.events.count, events)
        XCTAssertNil(p2m.lookup(GFN(raw: 0x300)))
        XCTAssertEqual(batch.pendingPages, 1, "still owed")
        try p2m.map(GFN(raw: 0x300), to: MFN(raw: 0x6000), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(raw: 0x300))?.mfn, MFN(raw: 0x6000))
        rig.checker.assertClean()
    }
}

/// What the change observer is told: the planned change before any write, the
/// effective access with every change.
final class P2MChangeStreamTests: XCTestCase {
    func testPrepareIsToldThePlannedChange() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log))
        try p2m.map(GFN(raw: 0x40000), to: MFN(raw: 0x100000), count: 0x40000, as: .ramRW, access: .readWrite,
                    policy: .replace, flushing: &batch, holding: lockHeld)
        try p2m.changeType(GFN(raw: 0x40000), count: 16, from: .ramRW, to: .ramRO, access: .read, flushing: &batch, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x40000), count: 16, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(mirror.planned, [
            .map(GFN(raw: 0x40000), MFN(raw: 0x100000), count: 0x40000, type: .ramRW, access: .readWrite, replacing: true),
            .changeType(GFN(raw: 0x40000), count: 16, from: .ramRW, to: .ramRO, access: .read),
            .unmap(GFN(raw: 0x40000), count: 16),
        ])
        XCTAssertEqual(mirror.planned[1].range.gfn, GFN(raw: 0x40000))
        XCTAssertEqual(mirror.planned[1].range.count, 16)
        try p2m.commit(&batch, holding: lockHeld)
    }

    func testTypeChangeCarriesTheAccessRestriction() throws {
        let rig = Rig()
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror)
        var batch = FlushBatch(releaser: FakeReleaser(log: rig.log))
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x5000), count: 4, as: .ramRW, access: .read, flushing: &batch, holding: lockHeld)
        try p2m.changeType(GFN(raw: 0x100), count: 4, from: .ramRW, to: .ramRO, access: .read, flushing: &batch, holding: lockHeld)
        try p2m.changeType(GFN(raw: 0x100), count: 4, from: .ramRO, to: .ramRW, access: .read, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(mirror.events.last,
                       .typeChanged(GFN(raw: 0x100), MFN(raw: 0x5000), count: 4, from: .ramRO, to: .ramRW, access: .read))
        try p2m.commit(&batch, holding: lockHeld)
    }
}

/// The cached path to the last leaf table (`LeafPathCache`): one-page calls in the
/// same leaf table skip the walk, and nothing may reach a table through it once
/// that table has left the tree.
final class P2MLeafPathCacheTests: XCTestCase {
    /// A run of one-page maps and unmaps in one leaf table walks once: the calls
    /// after the first read no table descriptor.
    func testOnePageCallsInOneLeafTableWalkOnce() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        for i in UInt64(0)..<2 {
            try p2m.map(GFN(raw: 0x4_0000 + i), to: MFN(raw: 0x9_0000 + i), count: 1, as: .ramRW,
                        largestBlock: .page4K, flushing: &batch, holding: lockHeld)
        }
        let loads = rig.memory.loads
        for i in UInt64(2)..<100 {
            try p2m.map(GFN(raw: 0x4_0000 + i), to: MFN(raw: 0x9_0000 + i), count: 1, as: .ramRW,
                        largestBlock: .page4K, flushing: &batch, holding: lockHeld)
        }
        // Insert-only: one load per page, its own entry's check.
        XCTAssertEqual(rig.memory.loads - loads, 98)
        for i in UInt64(0)..<100 {
            XCTAssertEqual(p2m.lookup(GFN(raw: 0x4_0000 + i)), P2MMapping(mfn: MFN(raw: 0x9_0000 + i), type: .ramRW, order: .page4K))
        }
        let unmapLoads = rig.memory.loads
        for i in UInt64(0)..<99 { try p2m.unmap(GFN(raw: 0x4_0000 + i), count: 1, flushing: &batch, holding: lockHeld) }
        XCTAssertEqual(rig.memory.loads - unmapLoads, 99)  // one per page: the maps left the path cached
        p2m.commit(&batch, holding: lockHeld)
        auditValidEntryCounts(p2m.table, memory: rig.memory, pool: p2m.pool)
        rig.checker.assertClean()
    }

    /// An unmap that empties the cached leaf table unlinks it (and its parent);
    /// after the commit the pool hands both pages out again as another region's
    /// tables. A map back in the first leaf table's range must build new tables,
    /// not write through the cached path into what is now someone else's table.
    func testUnlinkingTheCachedLeafTableForgetsThePath() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        let a: UInt64 = 0x4_0000, b: UInt64 = 0x8_0000
        for i in UInt64(0)..<2 {
            try p2m.map(GFN(raw: a + i), to: MFN(raw: 0x9_0000 + i), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        }
        XCTAssertEqual(p2m.tablePagesInUse, 4)
        for i in UInt64(0)..<2 { try p2m.unmap(GFN(raw: a + i), count: 1, flushing: &batch, holding: lockHeld) }
        XCTAssertEqual(p2m.tablePagesInUse, 2)
        XCTAssertEqual(p2m.commit(&batch, holding: lockHeld).tablePagesFreed, 2)
        // The freed pages come back as region b's level-2 and leaf tables.
        try p2m.map(GFN(raw: b), to: MFN(raw: 0xA_0000), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: a + 2), to: MFN(raw: 0x9_0002), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(p2m.tablePagesInUse, 6)
        XCTAssertEqual(p2m.lookup(GFN(raw: a + 2)), P2MMapping(mfn: MFN(raw: 0x9_0002), type: .ramRW, order: .page4K))
        XCTAssertEqual(p2m.lookup(GFN(raw: b)), P2MMapping(mfn: MFN(raw: 0xA_0000), type: .ramRW, order: .page4K))
        XCTAssertNil(p2m.lookup(GFN(raw: b + 2)))
        XCTAssertNil(p2m.lookup(GFN(raw: b + 0x400)))
        auditValidEntryCounts(p2m.table, memory: rig.memory, pool: p2m.pool)
        p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
    }

    /// A move from one GFN range to another alternates one-page calls between two
    /// leaf tables: after one walk to each, both stay cached, so every later map,
    /// unmap and lookup in either reads only its own entry.
    func testCallsAlternatingBetweenTwoLeafTablesWalkOncePerTable() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        let a: UInt64 = 0x4_0000, b: UInt64 = 0x8_0000
        for i in UInt64(0)..<2 {
            try p2m.map(GFN(raw: a + i), to: MFN(raw: 0x9_0000 + i), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        }
        for i in UInt64(0)..<2 {
            try p2m.map(GFN(raw: b + i), to: MFN(raw: 0x9_1000 + i), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        }
        let loads = rig.memory.loads
        for i in UInt64(2)..<50 {
            // As a gmfn_range move: look both up, map the destination, unmap the source.
            XCTAssertEqual(p2m.lookup(GFN(raw: a + i - 1)),
                           P2MMapping(mfn: MFN(raw: 0x9_0000 + i - 1), type: .ramRW, order: .page4K))
            XCTAssertNil(p2m.lookup(GFN(raw: b + i)))
            try p2m.map(GFN(raw: b + i), to: MFN(raw: 0x9_1000 + i), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
            try p2m.unmap(GFN(raw: a + i - 1), count: 1, flushing: &batch, holding: lockHeld)
            try p2m.map(GFN(raw: a + i), to: MFN(raw: 0x9_0000 + i), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        }
        // Per step: two lookups, two insert-only checks, the unmapped entry; no walk.
        XCTAssertEqual(rig.memory.loads - loads, 48 * 5)
        for i in UInt64(2)..<50 {
            XCTAssertEqual(p2m.lookup(GFN(raw: b + i)), P2MMapping(mfn: MFN(raw: 0x9_1000 + i), type: .ramRW, order: .page4K))
            XCTAssertNil(p2m.lookup(GFN(raw: a + i - 1)))
        }
        p2m.commit(&batch, holding: lockHeld)
        auditValidEntryCounts(p2m.table, memory: rig.memory, pool: p2m.pool)
        rig.checker.assertClean()
    }

    /// Both cached paths are forgotten when a table leaves the tree: a leaf table
    /// unlinked by an edit that did not go through the cache (a whole-table unmap),
    /// either of the two cached ones, its pages reused by another region after the
    /// commit, must not be written or read through its old path.
    func testUnlinkingEitherCachedLeafTableForgetsItsPath() throws {
        let a: UInt64 = 0x4_0000, b: UInt64 = 0x8_0000, c: UInt64 = 0xC_0000
        for (victim, survivor) in [(a, b), (b, a)] {
            let rig = Rig()
            var p2m = try rig.makeP2M()
            var batch = ramBatch()
            // The second map in each leaf table walks to it and caches its path.
            for region in [a, b] {
                for i in UInt64(0)..<2 {
                    try p2m.map(GFN(raw: region + i), to: MFN(raw: 0x100_0000 + region + i), count: 1, as: .ramRW,
                                flushing: &batch, holding: lockHeld)
                }
            }
            XCTAssertEqual(p2m.tablePagesInUse, 6)
            // The victim's leaf table and its level-2 table leave the tree.
            try p2m.unmap(GFN(raw: victim), count: 512, flushing: &batch, holding: lockHeld)
            XCTAssertEqual(p2m.tablePagesInUse, 4)
            XCTAssertEqual(p2m.commit(&batch, holding: lockHeld).tablePagesFreed, 2)
            // The freed pages come back as region c's tables.
            try p2m.map(GFN(raw: c), to: MFN(raw: 0xB_0000), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
            XCTAssertNil(p2m.lookup(GFN(raw: victim)), "victim \(victim)")
            try p2m.map(GFN(raw: victim + 2), to: MFN(raw: 0x9_0002), count: 1, as: .ramRW, flushing: &batch,
                        holding: lockHeld)
            XCTAssertEqual(p2m.tablePagesInUse, 8, "victim \(victim)")
            XCTAssertEqual(p2m.lookup(GFN(raw: victim + 2)), P2MMapping(mfn: MFN(raw: 0x9_0002), type: .ramRW, order: .page4K))
            XCTAssertEqual(p2m.lookup(GFN(raw: c)), P2MMapping(mfn: MFN(raw: 0xB_0000), type: .ramRW, order: .page4K))
            XCTAssertEqual(p2m.lookup(GFN(raw: survivor + 1)),
                           P2MMapping(mfn: MFN(raw: 0x100_0000 + survivor + 1), type: .ramRW, order: .page4K))
            XCTAssertNil(p2m.lookup(GFN(raw: c + 2)))
            auditValidEntryCounts(p2m.table, memory: rig.memory, pool: p2m.pool)
            p2m.commit(&batch, holding: lockHeld)
            rig.checker.assertClean()
        }
    }
}
