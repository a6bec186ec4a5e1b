import XCTest
import AArch64
import HostFakes
@testable import Translation

/// What a commit issues on the CPU side besides invalidations: one barrier that
/// publishes new valid entries when no TLBI (which starts with its own DSB) is
/// owed, and the VTTBR_EL2 value its TLB maintenance runs under.
final class CommitBarrierTests: XCTestCase {
    /// Only invalid entries made valid (several maps, many entries, new tables):
    /// no TLBI is owed, and exactly one publish barrier is issued, at the commit.
    func testMapsIntoHolesArePublishedByOneBarrierPerCommit() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x7100), count: 7, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x4_0000), to: MFN(raw: 0x8000), count: 600, as: .ramRW, flushing: &batch,
                    holding: lockHeld)
        try p2m.map(GFN(raw: 0x900), to: MFN(raw: 0x7900), count: 1, as: .ramRO, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(rig.log.events.filter { $0 == .tlbPublish }, [], "published before the commit, per edit")
        XCTAssertTrue(batch.publishesNewEntries)
        let stats = p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(rig.log.events.filter { !isFree($0) }, [.tlbPublish])
        XCTAssertEqual(stats.publishBarriers, 1)
        XCTAssertEqual(stats.tlbiOperations, 0)
        XCTAssertFalse(batch.publishesNewEntries)
        // A second commit with nothing new issues nothing.
        rig.log.events = []
        XCTAssertEqual(p2m.commit(&batch, holding: lockHeld).publishBarriers, 0)
        XCTAssertEqual(rig.log.events, [])
    }

    /// When the commit owes a TLBI, that TLBI's leading DSB ISHST publishes the new
    /// entries too: no separate barrier.
    func testACommitThatInvalidatesIssuesNoSeparateBarrier() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x7100), count: 4, as: .ramRW, flushing: &batch, holding: lockHeld)
        p2m.commit(&batch, holding: lockHeld)
        rig.log.events = []
        // The map first: a map after the unmap, in the same root entry, would
        // complete the unmap's invalidation before writing (and then publish).
        try p2m.map(GFN(raw: 0x200), to: MFN(raw: 0x7200), count: 2, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x100), count: 2, flushing: &batch, holding: lockHeld)
        let stats = p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(stats.publishBarriers, 0)
        XCTAssertEqual(stats.rangeInvalidations, 1)
        XCTAssertFalse(rig.log.events.contains(.tlbPublish))
        XCTAssertEqual(rig.log.events.filter { !isFree($0) }, [.tlbiRange(vmid: 1, page: 0x100, pages: 2), .tlbSync])
    }

    /// A replacement does its break-before-make invalidation inside the map and
    /// writes the new entry after it: the commit owes no TLBI, so it publishes.
    func testAReplacementIsPublishedAtTheCommit() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x7100), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        p2m.commit(&batch, holding: lockHeld)
        rig.log.events = []
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x7200), count: 1, as: .ramRW, policy: .replace, flushing: &batch,
                    holding: lockHeld)
        p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(rig.log.events.filter { !isFree($0) },
                       [.tlbiRange(vmid: 1, page: 0x100, pages: 1), .tlbSync, .tlbPublish])
    }

    /// A map after an unmap in the same batch completes the unmap's invalidation
    /// first (break-before-make across operations), then writes: the commit
    /// owes no TLBI any more and publishes those entries.
    func testAMapAfterAnInvalidationInTheBatchIsPublished() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x7100), count: 4, as: .ramRW, flushing: &batch, holding: lockHeld)
        p2m.commit(&batch, holding: lockHeld)
        rig.log.events = []
        try p2m.unmap(GFN(raw: 0x100), count: 2, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x200), to: MFN(raw: 0x7200), count: 2, as: .ramRW, flushing: &batch, holding: lockHeld)
        let stats = p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(stats.publishBarriers, 1)
        XCTAssertEqual(rig.log.events.filter { !isFree($0) },
                       [.tlbiRange(vmid: 1, page: 0x100, pages: 2), .tlbSync, .tlbPublish])
    }

    /// Unmaps alone write no valid entry: their commit invalidates and publishes nothing extra.
    func testUnmapOnlyCommitHasNoPublishBarrier() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x7100), count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        p2m.commit(&batch, holding: lockHeld)
        rig.log.events = []
        try p2m.unmap(GFN(raw: 0x100), count: 1, flushing: &batch, holding: lockHeld)
        XCTAssertFalse(batch.publishesNewEntries)
        p2m.commit(&batch, holding: lockHeld)
        XCTAssertFalse(rig.log.events.contains(.tlbPublish))
    }

    /// `absorb` carries the obligation: the receiver's commit publishes what the
    /// other batch's edits made valid.
    func testAbsorbCarriesThePublishObligation() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M()
        var first = ramBatch(), second = ramBatch()
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x7100), count: 1, as: .ramRW, flushing: &second, holding: lockHeld)
        first.absorb(&second, memory: p2m.memory)
        XCTAssertFalse(second.publishesNewEntries)
        XCTAssertEqual(p2m.commit(&first, holding: lockHeld).publishBarriers, 1)
        XCTAssertEqual(p2m.commit(&second, holding: lockHeld).publishBarriers, 0)
    }

    /// Every CPU TLB invalidation, by range, whole VMID or break-before-make,
    /// runs under the domain's own VTTBR_EL2 value: its VMID and its stage-2
    /// root (BADDR, bits [47:1]), never a zero base.
    func testInvalidationsRunUnderTheDomainsVTTBR() throws {
        let rig = Rig()
        var p2m = try rig.makeP2M(threshold: 4)
        var batch = ramBatch()
        try p2m.map(GFN(raw: 0x100), to: MFN(raw: 0x7100), count: 16, as: .ramRW, flushing: &batch, holding: lockHeld)
        p2m.commit(&batch, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x100), count: 2, flushing: &batch, holding: lockHeld)   // by range
        p2m.commit(&batch, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x104), count: 8, flushing: &batch, holding: lockHeld)   // whole VMID
        p2m.commit(&batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x10F), to: MFN(raw: 0x9000), count: 1, as: .ramRW, policy: .replace,
                    flushing: &batch, holding: lockHeld)                                  // break-before-make
        p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(rig.log.maintenanceVTTBRs.count, 3)
        for v in rig.log.maintenanceVTTBRs {
            XCTAssertEqual(v, p2m.vttbr)
            XCTAssertEqual(v.vmid, 1)
            XCTAssertEqual(v.root, p2m.root.address)
            XCTAssertNotEqual(v.raw & 0x0000_FFFF_FFFF_FFFE, 0, "BADDR [47:1] is zero")
        }
    }
}

private func isFree(_ e: EventLog.Event) -> Bool {
    if case .free = e { return true }
    return false
}
