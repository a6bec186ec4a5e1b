import XCTest
import AArch64
import Translation
import HostFakes
@testable import SMMUv3

/// Break-before-make and seed 000 on the IOMMU side: the stage-1 mirror's
/// table edits, watched by `IOMMUBreakBeforeMakeChecker` while a P2M drives
/// it through random maps, replacements, type changes and unmaps (block
/// splits included) with CMD_SYNCs lost at random; and the checker's own
/// rules, each shown to fire on a hand-made violation.
final class Stage1MirrorBreakBeforeMakeTests: XCTestCase {
    let edu = StreamID(0x10)

    /// A P2M whose observer and IOMMU hook are one mirror, every mirror table
    /// store, SMMU command and freed mirror page shown to `checker`.
    func makeWatchedP2M(_ h: inout HookHarness, checker: IOMMUBreakBeforeMakeChecker) throws -> MirrorP2M {
        var pool = h.mirrorPool(count: 64)
        pool.freeWatcher = { [unowned checker] in checker.freed($0) }
        let mirror = try TestMirror.make(handle: h.handle, asid: 1, inputBits: 39, pool: pool, allocator: &h.allocator)
        checker.watch(mirror.table, asid: 1)
        let p2m = try MirrorP2M(configuration: P2MConfiguration(vmid: 1, ipaBits: 39, paRange: .bits44, vmidWidth: .bits8),
                                memory: h.memory, pool: h.p2mPool(), tlb: CountingTLB(), iommu: mirror,
                                listener: HoldingListener(), observer: mirror)
        try h.handle.smmu.attach(edu, to: .stage1(mirror.domain), allocator: &h.allocator)
        return p2m
    }

    /// Random edits over a 4 MiB window (two 2 MiB blocks' worth), frames
    /// aligned for blocks or not, each committed; one commit in four loses
    /// its CMD_SYNC and is retried until it completes (as the page-state
    /// layer's `retryFlush` does). One operation in five loses the first
    /// CMD_SYNC inside it (the P2M's or the mirror's own break-before-make):
    /// the broken entry must then stay invalid (`P2MError.breakNotConfirmed`
    /// from the P2M, `entriesLeftInvalid` in the mirror), never be made while
    /// the SMMU may still hold the old one.
    func testRandomMirrorEditsKeepBreakBeforeMakeAndSeed000() throws {
        var rng = SplitMix64(seed: 0x0BB0_0346)
        var splits = 0, lostSyncs = 0, releases = 0, incomplete = 0, mirrorLeftInvalid = 0
        for _ in 0..<6 {
            var h = try HookHarness(.qemu72, configuration: SMMUConfiguration(pollLimit: 100))
            let checker = IOMMUBreakBeforeMakeChecker(memory: h.memory, fake: h.fake)
            var p2m = try makeWatchedP2M(&h, checker: checker)
            let releaser = CheckingReleaser { [unowned checker] in checker.released() }
            var batch = FlushBatch(releaser: releaser)
            for _ in 0..<80 {
                let base = 0x200 + (rng.next() % 2) * 0x200
                let gfn = GFN(base + (rng.next() % 2 == 0 ? 0 : rng.next() % 0x200))
                let count = rng.next() % 3 == 0 ? 0x200 - (gfn.raw - base) : 1 + rng.next() % 16
                let mfn = MFN(0x50000 + (rng.next() % 4) * 0x200 + (rng.next() % 2 == 0 ? gfn.raw - base : rng.next() % 7))
                let type: P2MType = [.ramRW, .ramRO, .mapForeignRW, .grantMapRO][Int(rng.next() % 4)]
                let loseSync = rng.next() % 4 == 0
                let loseSyncInside = rng.next() % 5 == 0
                let bbmBefore = h.handle.smmu.commandQueue.syncsIssued
                // The P2M's own wait, or (one in two) the mirror's after it.
                if loseSyncInside { h.fake.syncsBeforeStall = Int(rng.next() % 2) }
                do throws(P2MError) {
                    switch rng.next() % 4 {
                    case 0: try p2m.map(gfn, to: mfn, count: count, as: type, flushing: &batch, holding: lockHeld)
                    case 1: try p2m.map(gfn, to: mfn, count: count, as: type, policy: .replace, flushing: &batch, holding: lockHeld)
                    case 2: try p2m.changeType(gfn, count: count, from: .ramRW, to: .ramRO, flushing: &batch, holding: lockHeld)
                    default: try p2m.unmap(gfn, count: count, flushing: &batch, holding: lockHeld)
                    }
                } catch .breakNotConfirmed {
                    incomplete += 1
                } catch {
                    // Refused with nothing changed (occupied, wrong type): fine here.
                }
                if h.handle.smmu.commandQueue.syncsIssued != bbmBefore { splits += 1 }
                // The commit's CMD_SYNC is lost (a stalled SMMU), so the
                // references and table pages its flush covers must wait.
                if loseSync { h.fake.syncsBeforeStall = 0 }
                while true {
                    do {
                        try p2m.commit(&batch, holding: lockHeld)
                        break
                    } catch {
                        lostSyncs += 1
                        _ = h.handle.takeInvalidationFailure()
                        h.fake.syncsBeforeStall = nil
                        h.fake.consumptionStalled = false
                    }
                }
                // A commit with nothing to wait for leaves the loss armed:
                // disarm it, so syncs inside the next operation complete.
                h.fake.syncsBeforeStall = nil
                _ = h.handle.takeInvalidationFailure()
            }
            try p2m.unmap(GFN(0), count: 1 << 27, flushing: &batch, holding: lockHeld)
            try p2m.commit(&batch, holding: lockHeld)
            releases += releaser.log.releases
            mirrorLeftInvalid += p2m.observer.entriesLeftInvalid
            checker.assertClean()
            XCTAssertGreaterThan(checker.checkedStores, 100)
            XCTAssertGreaterThan(checker.completedInvalidations, 10)
            XCTAssertGreaterThan(checker.brokenEntriesSeen, 10)
        }
        print("mirror break-before-make: \(splits) operations with a sync inside, \(lostSyncs) lost commit syncs, "
              + "\(incomplete) operations left incomplete, \(mirrorLeftInvalid) mirror entries left invalid, \(releases) releases")
        XCTAssertGreaterThan(splits, 50, "edits inside an operation (break-before-make) must be exercised")
        XCTAssertGreaterThan(lostSyncs, 10)
        XCTAssertGreaterThan(incomplete, 3, "syncs lost inside operations must be exercised")
        XCTAssertGreaterThan(mirrorLeftInvalid, 0)
        XCTAssertGreaterThan(releases, 50)
    }

    // MARK: The checker's rules, each on a hand-made violation

    /// A watched root with one level-3 table linked at IOVA 0 (39-bit
    /// stage 1: levels 1 to 3), and the checker.
    func rig() throws -> (HookHarness, IOMMUBreakBeforeMakeChecker, level3: PhysAddr) {
        let h = try HookHarness(.qemu72)
        let checker = IOMMUBreakBeforeMakeChecker(memory: h.memory, fake: h.fake)
        let geometry = try TableGeometry(stage1InputBits: 39, outputBits: 44)
        let root = MFN(0x70000), l2 = MFN(0x70001), l3 = MFN(0x70002)
        checker.watch(TranslationTable<Stage1Descriptor>(geometry: geometry, root: root), asid: 1)
        h.memory.store64(l2.address, l3.address.raw | 3)
        h.memory.store64(root.address, l2.address.raw | 3)
        return (h, checker, l3.address)
    }

    static let page: UInt64 = 0x4000_0000 | 1 << 10 | 3  // page descriptor: AF, valid, page
    static let otherPage: UInt64 = 0x4000_1000 | 1 << 10 | 3

    func testCheckerFlagsValidToValidReplacement() throws {
        let (h, checker, l3) = try rig()
        h.memory.store64(l3, Self.page)
        h.memory.store64(l3, Self.otherPage)
        XCTAssertEqual(checker.violations.count, 1)
        XCTAssertTrue(checker.violations[0].hasPrefix("valid-to-valid replacement"), "\(checker.violations)")
    }

    func testCheckerNeedsInvalidationAndSyncBeforeMake() throws {
        for (invalidate, sync) in [(false, false), (true, false), (false, true), (true, true)] {
            let (h, checker, l3) = try rig()
            h.memory.store64(l3, Self.page)
            h.memory.store64(l3, 0)
            if invalidate { try h.handle.smmu.push(.tlbiNHVA(asid: 1, va: IOVA(0))) }
            if sync { try h.handle.smmu.sync() }
            h.memory.store64(l3, Self.otherPage)
            XCTAssertEqual(checker.violations.isEmpty, invalidate && sync, "TLBI \(invalidate) sync \(sync): \(checker.violations)")
        }
        // Another ASID's invalidation does not count.
        let (h, checker, l3) = try rig()
        h.memory.store64(l3, Self.page)
        h.memory.store64(l3, 0)
        try h.handle.smmu.push(.tlbiNHVA(asid: 2, va: IOVA(0)))
        try h.handle.smmu.sync()
        h.memory.store64(l3, Self.otherPage)
        XCTAssertEqual(checker.violations, ["make without completed IOTLB invalidation at IOVA frame 0x0 level 3"])
    }

    func testCheckerRefusesFreeingOrReleasingBeforeTheSync() throws {
        let (h, checker, l3) = try rig()
        h.memory.store64(l3, Self.page)
        // Unlink the level-3 table: its walk-cache entry stays until a
        // non-leaf invalidation and a sync.
        h.memory.store64(PhysAddr(0x7000_1000), 0)
        checker.released()
        try h.handle.smmu.push(.tlbiNHVA(asid: 1, va: IOVA(0), leaf: true))
        try h.handle.smmu.sync()
        checker.freed(MFN(0x70002))
        XCTAssertEqual(checker.violations, ["references released with 1 IOMMU entries not invalidated",
                                            "table page 0x70002 freed with 1 IOMMU entries not invalidated"])
        try h.handle.smmu.push(.tlbiNHVA(asid: 1, va: IOVA(0)))
        try h.handle.smmu.sync()
        checker.freed(MFN(0x70002))
        checker.released()
        XCTAssertEqual(checker.violations.count, 2, "a non-leaf TLBI and a sync complete the break")
        checker.freed(MFN(0x70001))
        XCTAssertEqual(checker.violations.last, "table page 0x70001 freed while still linked")
    }
}
