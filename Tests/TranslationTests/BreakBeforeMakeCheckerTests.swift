import XCTest
import AArch64
import HostFakes
@testable import Translation

/// The checker must be able to fail: hand-made sequences that break the rules.
final class BreakBeforeMakeCheckerTests: XCTestCase {
    func makeTable() throws -> (Rig, RecordingTLB, PhysAddr) {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x200), to: MFN(raw: 0x4000), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        p2m.commit(&batch, holding: lockHeld)
        // The level-2 entry holding the block at gfn 0x200.
        let l1 = p2m.table.entryAddress(p2m.root, 1, 0x200)
        let l2 = MFN(raw: (rig.memory.load64(l1) & Stage2Descriptor.outputAddressMask) >> 12)
        return (rig, p2m.tlb, p2m.table.entryAddress(l2, 2, 0x200))
    }

    func testDirectValidToValidReplacementIsCaught() throws {
        let (rig, _, entry) = try makeTable()
        let d = rig.memory.load64(entry)
        rig.memory.store64(entry, d + 0x20_0000)  // another output, same size
        XCTAssertEqual(rig.checker.violations.count, 1)
        // Permission-only changes are allowed without a break.
        let (rig2, _, entry2) = try makeTable()
        rig2.memory.store64(entry2, rig2.memory.load64(entry2) & ~(UInt64(0b10) << 6))
        XCTAssertEqual(rig2.checker.violations, [])
    }

    func testMakeWithoutInvalidationOrWithoutSyncIsCaught() throws {
        for variant in 0..<3 {
            var (rig, tlb, entry) = try makeTable()
            let d = rig.memory.load64(entry)
            rig.memory.store64(entry, 0)
            if variant >= 1 { tlb.invalidateStage2(VTTBR(raw: 1 << 48), ipa: GFN(raw: 0x200).address, pages: 512) }
            if variant >= 2 { tlb.synchronize() }
            rig.memory.store64(entry, d + 0x20_0000)
            XCTAssertEqual(rig.checker.violations.count, variant == 2 ? 0 : 1, "variant \(variant)")
        }
    }

    func testPartialInvalidationOfABlockIsCaught() throws {
        var (rig, tlb, entry) = try makeTable()
        let d = rig.memory.load64(entry)
        rig.memory.store64(entry, 0)
        tlb.invalidateStage2(VTTBR(raw: 1 << 48), ipa: GFN(raw: 0x200).address, pages: 511)
        tlb.synchronize()
        rig.memory.store64(entry, d & 0xFFF | 0x1000_0000)
        XCTAssertEqual(rig.checker.violations.count, 1)
    }

    func testFreeBeforeInvalidationIsCaught() throws {
        let (rig, _, entry) = try makeTable()
        rig.memory.store64(entry, 0)
        rig.checker.freed(0x8_0100)
        rig.checker.released()
        XCTAssertEqual(rig.checker.violations.count, 2)
    }

    /// The IOMMU side (an IOMMU walking the P2M): the CPU's TLBI and DSB are
    /// not enough, and an IOMMU wait that failed confirms nothing.
    func testIOMMUSideNeedsItsOwnCompletedInvalidation() throws {
        for variant in 0..<4 {
            var (rig, tlb, entry) = try makeTable()
            rig.checker.watchesIOMMU = true
            var iommu = RecordingIOMMU(log: rig.log, watcher: rig.checker)
            let d = rig.memory.load64(entry)
            rig.memory.store64(entry, 0)
            tlb.invalidateStage2(VTTBR(raw: 1 << 48), ipa: GFN(raw: 0x200).address, pages: 512)
            tlb.synchronize()
            if variant >= 1 { iommu.invalidate(vmid: 1, GFN(raw: 0x200), count: 512) }
            if variant == 2 { rig.log.failingIOMMUSyncs = 1 }
            if variant >= 2 { _ = try? iommu.synchronize() }
            rig.checker.released()
            rig.checker.freed(0x8_0100)
            rig.memory.store64(entry, d + 0x20_0000)
            XCTAssertEqual(rig.checker.violations, variant == 3 ? [] : [
                "references released with 1 entries not invalidated in the IOMMU",
                "table page 0x80100 freed with 1 entries not invalidated in the IOMMU",
                "make without completed IOMMU invalidation at gfn 0x200 level 2",
            ], "variant \(variant)")
        }
    }

    /// A leaf may map a frame that is one of the P2M's own table pages (nothing
    /// forbids it): written into a table still being prepared, it is not a link,
    /// so the table page stays reachable through its real parent, the stores into
    /// it are still checked, and locating it ends (it once recursed forever).
    func testALeafOntoATablePageIsNotTakenForALink() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x400), to: MFN(raw: 0x9_0400), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        let l1 = p2m.table.entryAddress(p2m.root, 1, 0x400)
        let level2 = (rig.memory.load64(l1) & Stage2Descriptor.outputAddressMask) >> 12
        XCTAssertEqual(rig.checker.locate(frame: level2)?.level, 2)
        // A new leaf table whose one entry maps the level-2 table's frame.
        try p2m.map(GFN(raw: 0x800), to: MFN(raw: level2), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(rig.checker.locate(frame: level2)?.level, 2, "still reached through its table descriptor")
        let checked = rig.checker.checkedStores
        try p2m.map(GFN(raw: 0xC00), to: MFN(raw: 0x9_0C00), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        XCTAssertGreaterThan(rig.checker.checkedStores, checked, "the link into the level-2 table is checked")
        p2m.commit(&batch, holding: lockHeld)
        rig.checker.assertClean()
        // Remembered parents that form a cycle are no path from the root.
        let (a, b): (UInt64, UInt64) = (0x7_0000, 0x7_0001)
        rig.checker.parentEntry[a] = b << 12 | 8
        rig.checker.parentEntry[b] = a << 12 | 16
        XCTAssertNil(rig.checker.locate(frame: a))
    }
}
