import XCTest
import AArch64
@testable import Translation
import HostFakes
@testable import SMMUv3

/// Which of the mirror's unlinked tables may collect the frames of the next
/// ones (`PendingInvalidation`): only a table without a valid entry, as the
/// mirror's pool count says. A table unlinked whole keeps its entries, which the
/// SMMU may still walk through a cached path until the invalidation completes.
final class Stage1MirrorUnlinkTests: XCTestCase {
    func testOnlyAnEmptiedMirrorTableCollectsTheNextUnlinkedTables() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try Stage1MirrorTests.makeMirrorP2M(&h, stream: StreamID(0x10))
        let mirror = p2m.observer
        var batch = FlushBatch(releaser: CheckingReleaser {})
        // An output one page off 2 MiB alignment: 4 KiB leaves in the mirror too.
        let ram = MFN(0x50001)
        try p2m.map(GFN(0x3000), to: ram, count: 512, as: .ramRW, largestBlock: .page4K, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x1000), to: ram.adding(0x400), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x2000), to: ram.adding(0x600), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        let memory = h.memory, engine = mirror.table.engine
        let full = try XCTUnwrap(engine.leafPath(0x3000, count: 1, memory: memory)).leafTable
        let first = try XCTUnwrap(engine.leafPath(0x1000, count: 1, memory: memory)).leafTable
        let second = try XCTUnwrap(engine.leafPath(0x2000, count: 1, memory: memory)).leafTable
        let free = mirror.pool.availableTablePages
        try p2m.unmap(GFN(0x3000), count: 512, flushing: &batch, holding: lockHeld)
        try p2m.unmap(GFN(0x1000), count: 1, flushing: &batch, holding: lockHeld)
        try p2m.unmap(GFN(0x2000), count: 1, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(mirror.unlinkedTablePages, 4, "three leaf tables and the level-2 table they emptied")
        let kept = (0..<512).filter { memory.load64(full.address.adding(UInt64($0) * 8)) & 1 == 1 }
        XCTAssertEqual(kept.count, 511, "the full table keeps its entries but the link's")
        XCTAssertEqual(memory.load64(first.address.adding(8)) >> 12, second.raw,
                       "the emptied table collects the next table unlinked")
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(mirror.unlinkedTablePages, 0)
        XCTAssertEqual(mirror.pool.availableTablePages, free + 4)
    }
}
