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
    /// the SMMU may still hold the old one. Every other round runs on an SMMU
    /// that does not snoop the CPU's caches: every TLBI must then find in RAM
    /// what the CPU wrote for its range (`FakeSMMU.walkAtInvalidation`).
    func testRandomMirrorEditsKeepBreakBeforeMakeAndSeed000() throws {
        var rng = SplitMix64(seed: 0x0BB0_0346)
        var splits = 0, lostSyncs = 0, releases = 0, incomplete = 0, mirrorLeftInvalid = 0
        for round in 0..<6 {
            var h = try HookHarness(round % 2 == 0 ? .qemu72 : .qemu72NonCoherent,
                                    configuration: SMMUConfiguration(pollLimit: 100))
            let checker = IOMMUBreakBeforeMakeChecker(memory: h.memory, fake: h.fake)
            var p2m = try makeWatchedP2M(&h, checker: checker)
            // The SMMU fetches the domain's configuration (and walks it from then on).
            XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_0000, write: false).0, .fault(.translation))
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
            XCTAssertEqual(h.fake.staleWalksAtInvalidation, [])
            XCTAssertGreaterThan(h.fake.invalidationWalks, 50)
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

    // MARK: Non-coherent SMMU: the break reaches PoC before its invalidation

    /// Each kind of break-before-make the mirror's table engine makes: a block
    /// split (`breakBlock`), a block replaced by a block with another output, a
    /// run of pages replaced in a linked table (`applyLeafRun`), and a full
    /// table merged back into a block (`mergeIfUniform`). Each starts from a
    /// 2 MiB block at IOVA 0x20_0000 and 16 pages at 0x40_0000.
    typealias Edit = (inout MirrorP2M, inout FlushBatch<CheckingReleaser>) throws -> Void
    static var breakBeforeMakes: [(name: String, edit: Edit)] { [
        ("block split", { p2m, batch in
            try p2m.unmap(GFN(0x201), count: 1, flushing: &batch, holding: lockHeld)
        }),
        ("block replaced by another block", { p2m, batch in
            try p2m.map(GFN(0x200), to: MFN(0x50600), count: 512, as: .ramRW, policy: .replace, flushing: &batch,
                        holding: lockHeld)
        }),
        ("pages replaced in a table", { p2m, batch in
            try p2m.map(GFN(0x405), to: MFN(0x58000), count: 2, as: .ramRW, policy: .replace, flushing: &batch,
                        holding: lockHeld)
        }),
        ("table merged into a block", { p2m, batch in
            try p2m.map(GFN(0x410), to: MFN(0x50410), count: 0x1F0, as: .ramRW, flushing: &batch, holding: lockHeld)
        }),
    ] }

    /// A non-coherent SMMU reads the mirror from RAM and may walk it at any
    /// time: when it consumes the TLBI of a break-before-make, RAM must already
    /// hold the broken entry, or it can refill its TLB with the old translation
    /// just invalidated (`FakeSMMU.walkAtInvalidation`). The mirror cleans the
    /// break before invalidating (`Stage1Mirror.invalidateNow`); a coherent SMMU
    /// snoops the CPU's caches, cleans nothing and trips nothing.
    func testBreakIsCleanedToPoCBeforeItsInvalidation() throws {
        for (profile, coherent) in [(FakeSMMU.Profile.qemu72NonCoherent, false), (.qemu72, true)] {
            for (name, edit) in Self.breakBeforeMakes {
                var h = try HookHarness(profile)
                let checker = IOMMUBreakBeforeMakeChecker(memory: h.memory, fake: h.fake)
                var p2m = try makeWatchedP2M(&h, checker: checker)
                var batch = FlushBatch(releaser: CheckingReleaser {})
                try p2m.map(GFN(0x200), to: MFN(0x50200), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
                try p2m.map(GFN(0x400), to: MFN(0x50400), count: 16, as: .ramRW, flushing: &batch, holding: lockHeld)
                try p2m.commit(&batch, holding: lockHeld)
                // The SMMU holds the domain's configuration and translations.
                XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_5000, write: false).0, .ok(PhysAddr(0x5020_5000)))
                XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x40_5000, write: false).0, .ok(PhysAddr(0x5040_5000)))
                let walks = h.fake.invalidationWalks, broken = checker.brokenEntriesSeen
                let cleans = h.handle.smmu.cache.log.operations.count { if case .clean = $0 { true } else { false } }

                try edit(&p2m, &batch)
                try p2m.commit(&batch, holding: lockHeld)

                let context = "\(name), coherent \(coherent)"
                XCTAssertGreaterThan(checker.brokenEntriesSeen, broken, "\(context): the mirror broke an entry")
                XCTAssertGreaterThan(h.fake.invalidationWalks, walks, "\(context): the SMMU walked at the TLBIs")
                XCTAssertEqual(h.fake.staleWalksAtInvalidation, [], context)
                XCTAssertEqual(p2m.observer.entriesLeftInvalid, 0, context)
                checker.assertClean()
                let cleansNow = h.handle.smmu.cache.log.operations.count { if case .clean = $0 { true } else { false } }
                if coherent {
                    XCTAssertEqual(cleansNow, cleans, "\(context): a coherent SMMU needs no clean")
                } else {
                    XCTAssertGreaterThan(cleansNow, cleans, context)
                }
                XCTAssertEqual(h.memory.staleDeviceReads, [], context)
            }
        }
    }

    /// The check itself: a descriptor broken by the CPU and not cleaned is what
    /// a non-coherent SMMU still finds in RAM when it consumes the TLBI; once
    /// cleaned, it finds the break. A coherent SMMU finds the break either way.
    func testSMMUWalksRAMWhenItConsumesAnInvalidation() throws {
        for coherent in [false, true] {
            var h = try HookHarness(coherent ? .qemu72 : .qemu72NonCoherent)
            let mirror = try TestMirror.make(handle: h.handle, asid: 1, inputBits: 39, pool: h.mirrorPool(count: 8),
                                             allocator: &h.allocator)
            try h.handle.smmu.attach(edu, to: .stage1(mirror.domain), allocator: &h.allocator)
            // A level-2 block at IOVA 0x20_0000 under a level-2 table, both cleaned.
            let l2 = try XCTUnwrap(mirror.pool.allocateTablePage())
            let block: UInt64 = 0x5020_0000 | 1 << 10 | 1
            h.memory.store64(l2.address.adding(8), block)
            h.memory.store64(mirror.table.root.address, l2.address.raw | 3)
            h.handle.smmu.cache.clean(l2.address, bytes: 4096)
            h.handle.smmu.cache.clean(mirror.table.root.address, bytes: 8)
            XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_1000, write: false).0, .ok(PhysAddr(0x5020_1000)))

            h.memory.store64(l2.address.adding(8), 0)  // break, not cleaned
            try h.handle.smmu.push(.tlbiNHVA(asid: 2, va: IOVA(0x20_0000)))
            try h.handle.smmu.sync()
            XCTAssertEqual(h.fake.staleWalksAtInvalidation, [], "another ASID's TLBI walks nothing of this one")
            try h.handle.smmu.push(.tlbiNHVA(asid: 1, va: IOVA(0x40_0000)))
            try h.handle.smmu.sync()
            XCTAssertEqual(h.fake.staleWalksAtInvalidation, [], "the TLBI's range does not reach the break")
            try h.handle.smmu.push(.tlbiNHVA(asid: 1, va: IOVA(0x20_1000)))
            try h.handle.smmu.sync()
            XCTAssertEqual(h.fake.staleWalksAtInvalidation,
                           coherent ? [] : ["TLBI_NH_VA ASID 1 input frames 0x201..<0x202: a walk still finds valid "
                                            + "0x50200401 at level 2, IOVA frame 0x200, where the CPU wrote 0x0 and "
                                            + "did not clean it to PoC"])
            h.handle.smmu.cache.clean(l2.address.adding(8), bytes: 8)
            h.handle.smmu.cache.synchronize()
            try h.handle.smmu.push(.tlbiNHASID(asid: 1))
            try h.handle.smmu.sync()
            XCTAssertEqual(h.fake.staleWalksAtInvalidation.count, coherent ? 0 : 1, "cleaned: the SMMU finds the break")
            XCTAssertEqual(h.fake.invalidationWalks, 3)
        }
    }

    /// FakeMemory's RAM view: a CPU store or a zeroed frame stays out of RAM
    /// until its line is cleaned; a device store lands in RAM (and in the
    /// CPU's view, which the model keeps coherent for the CPU).
    func testRAMHoldsWhatTheCPUHasNotCleaned() {
        let memory = FakeMemory()
        var cache = RecordingCache(memory: memory)
        let a = PhysAddr(0x5000_0008), b = PhysAddr(0x5000_0010), frame = MFN(0x50001)
        memory.store64(a, 1)
        XCTAssertEqual(memory.dramLoad(a), 0)
        cache.clean(a, bytes: 8)
        XCTAssertEqual(memory.dramLoad(a), 1)
        memory.store64(a, 2)
        memory.store64(b, 3)  // same line: RAM keeps the line as it was before the first store
        XCTAssertEqual([memory.dramLoad(a), memory.dramLoad(b)], [1, 0])
        memory.deviceStore(b, 4)
        XCTAssertEqual([memory.dramLoad(a), memory.dramLoad(b), memory.peek(b)], [1, 4, 4])
        cache.clean(b, bytes: 8)
        XCTAssertEqual([memory.dramLoad(a), memory.dramLoad(b)], [2, 4])

        memory.store64(frame.address.adding(0x800), 5)
        cache.clean(frame.address, bytes: 4096)
        memory.zeroFrame(frame)
        XCTAssertEqual([memory.peek(frame.address.adding(0x800)), memory.dramLoad(frame.address.adding(0x800))], [0, 5])
        cache.clean(frame.address.adding(0x800), bytes: 64)
        XCTAssertEqual(memory.dramLoad(frame.address.adding(0x800)), 0)
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
