import XCTest
import AArch64
import Translation
import HostFakes
@testable import SMMUv3

/// The hardware every SMMU test's P2M runs on; the hooks differ per test.
protocol SMMUTestEnvironment: P2MEnvironment where Memory == FakeMemory, Pool == TestTablePool, TLB == CountingTLB {}

enum MirrorEnvironment: SMMUTestEnvironment {
    typealias IOMMU = TestMirror
    typealias Listener = HoldingListener
    typealias Observer = TestMirror
}
typealias MirrorP2M = P2M<MirrorEnvironment>

/// The stage-1 mirror fed by a real P2M (QEMU 7.2: no stage 2).
final class Stage1MirrorTests: XCTestCase {
    let edu = StreamID(0x10)
    let ram = MFN(0x50000)

    /// A P2M whose observer and IOMMU hook are one mirror (`p2m.observer`), with edu attached to it.
    func makeP2M(_ h: inout HookHarness, mirrorPages: Int = 64, msiDoorbells: [MFN] = []) throws -> MirrorP2M {
        try Self.makeMirrorP2M(&h, stream: edu, mirrorPages: mirrorPages, msiDoorbells: msiDoorbells)
    }

    /// `makeP2M` for other test classes: `stream` is attached to the mirror.
    static func makeMirrorP2M(_ h: inout HookHarness, stream: StreamID, mirrorPages: Int = 64,
                              msiDoorbells: [MFN] = []) throws -> MirrorP2M {
        let mirror = try TestMirror.make(handle: h.handle, asid: 1, inputBits: 39, pool: h.mirrorPool(count: mirrorPages),
                                    msiDoorbells: msiDoorbells, allocator: &h.allocator)
        let p2m = try MirrorP2M(configuration: P2MConfiguration(vmid: 1, ipaBits: 39, paRange: .bits44, vmidWidth: .bits8),
                                memory: h.memory, pool: h.p2mPool(), tlb: CountingTLB(), iommu: mirror,
                                listener: HoldingListener(), observer: mirror)
        try h.handle.smmu.attach(stream, to: .stage1(mirror.domain), allocator: &h.allocator)
        return p2m
    }

    func testMirrorFollowsThePM2AndUnmapFaultsAfterOneSync() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h)
        let mirror = p2m.observer
        let fake = h.fake
        let releaser = CheckingReleaser {
            // At release time the SMMU must no longer translate the unmapped pages.
            XCTAssertNil(fake.stage1TLB[1]?[0x100])
            XCTAssertEqual(fake.consumedCommands.last, .sync())
        }
        var batch = FlushBatch(releaser: releaser)
        try p2m.map(GFN(0x100), to: ram, count: 16, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x200), to: MFN(0x9050), count: 1, as: .mmioDirectDevice, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x300), to: ram.adding(0x100), count: 1, as: .ramRO, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x400), to: ram.adding(0x200), count: 1, as: .grantMapRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)

        XCTAssertEqual(mirror.lookup(IOVA(0x10_5000))?.frame, ram.adding(5))
        XCTAssertNil(mirror.lookup(IOVA(0x20_0000)), "MMIO is not mirrored (this mirror has no MSI doorbell)")
        XCTAssertEqual(mirror.lookup(IOVA(0x30_0000))?.writable, false)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_5008, write: true, value: 77).0,
                       .ok(ram.adding(5).address.adding(8)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_0000, write: false).0, .fault(.translation))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x30_0000, write: true).0, .fault(.permission))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x40_0000, write: true).0, .ok(ram.adding(0x200).address))
        _ = h.fake.dma(stream: 0x10, iova: 0x10_0000, write: false)  // cache the translation

        let mark = h.fake.consumedCommands.count
        try p2m.unmap(GFN(0x100), count: 16, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        // One range TLBI (16 pages = NUM 0, SCALE 4) on the mirror's ASID and exactly one CMD_SYNC.
        XCTAssertEqual(h.commands(since: mark),
                       [.tlbiNHVA(asid: 1, va: IOVA(0x10_0000), range: TLBIRange(num: 0, scale: 4)), .sync()])
        XCTAssertEqual(releaser.log.releases, 1)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0000, write: false).0, .fault(.translation))
        var events: [SMMUEvent] = []
        _ = h.handle.smmu.drainEvents { events.append($0) }
        XCTAssertEqual(events.map(\.kind), [.translation, .permission, .translation])
        XCTAssertEqual(events.last?.inputAddress, IOVA(0x10_0000))
        XCTAssertNil(h.handle.invalidationFailure)
        XCTAssertEqual(h.fake.steViolations, [])
    }

    func testTypeChangeToReadOnlyIsMirroredAndInvalidated() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h)
        let mirror = p2m.observer
        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x100), to: ram, count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0000, write: true).0, .ok(ram.address))
        try p2m.changeType(GFN(0x100), count: 1, from: .ramRW, to: .ramRO, flushing: &batch, holding: lockHeld)
        let mark = h.fake.consumedCommands.count
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.commands(since: mark), [.tlbiNHVA(asid: 1, va: IOVA(0x10_0000)), .sync()])
        XCTAssertEqual(mirror.lookup(IOVA(0x10_0000))?.writable, false)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0000, write: true).0, .fault(.permission))
    }

    func testBlockSplitInTheMirrorBreaksBeforeMaking() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h)
        let mirror = p2m.observer
        var batch = FlushBatch(releaser: CheckingReleaser {})
        // 2 MiB aligned on both sides: a level-2 block in the P2M and in the mirror.
        try p2m.map(GFN(0x200), to: MFN(0x50200), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(mirror.table.lookup(0x201, memory: h.memory)?.level, 2)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_1000, write: false).0, .ok(PhysAddr(0x5020_1000)))
        let syncs = h.handle.smmu.commandQueue.syncsIssued
        try p2m.unmap(GFN(0x201), count: 1, flushing: &batch, holding: lockHeld)
        // Splitting the mirror's block was break-before-make: invalidated and synced at once.
        XCTAssertEqual(h.handle.smmu.commandQueue.syncsIssued, syncs + 2)  // the P2M's own split, then the mirror's
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(mirror.table.lookup(0x202, memory: h.memory)?.level, 3)
        XCTAssertNil(mirror.lookup(IOVA(0x20_1000)))
        XCTAssertEqual(mirror.lookup(IOVA(0x20_2000))?.frame, MFN(0x50202))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_1000, write: false).0, .fault(.translation))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_2000, write: false).0, .ok(PhysAddr(0x5020_2000)))
        XCTAssertEqual(mirror.unlinkedTablePages, 0)
    }

    func testLargeUnmapFallsBackToWholeASID() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h)
        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x1000), to: ram, count: 1024, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        let mark = h.fake.consumedCommands.count
        try p2m.unmap(GFN(0x1000), count: 1024, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.commands(since: mark), [.tlbiNHASID(asid: 1), .sync()])
    }

    func testMirrorRefusalLeavesTheP2MUnchanged() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h, mirrorPages: 1)
        let mirror = p2m.observer
        var batch = FlushBatch(releaser: CheckingReleaser {})
        XCTAssertThrowsError(try p2m.map(GFN(0x100), to: ram, count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .observerRefused(GFN(0x100), count: 1))
        }
        XCTAssertNil(p2m.lookup(GFN(0x100)))
        XCTAssertNil(mirror.lookup(IOVA(0x10_0000)))
        try p2m.commit(&batch, holding: lockHeld)
    }

    func testNonCoherentMirrorIsCleanedBeforeTheSMMUWalksIt() throws {
        var h = try HookHarness(.qemu72NonCoherent)
        var p2m = try makeP2M(&h)
        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x100), to: ram, count: 3, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x200), to: MFN(0x50200), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_2000, write: true).0, .ok(ram.adding(2).address))
        try p2m.unmap(GFN(0x201), count: 1, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_2000, write: true).0, .ok(PhysAddr(0x5020_2000)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_1000, write: true).0, .fault(.translation))
        XCTAssertEqual(h.memory.staleDeviceReads, [])
        XCTAssertEqual(h.fake.staleWalksAtInvalidation, [], "the split's break reached RAM before its TLBI")
    }

    /// A split fills a new table with the block's other pages, far outside the
    /// unmapped range: the mirror cleans that table whole before linking it, so
    /// the SMMU reads none of it stale (the lines the unmap itself wrote are
    /// cleaned after the commit).
    func testNonCoherentMirrorCleansASplitTableBeforeLinkingIt() throws {
        var h = try HookHarness(.qemu72NonCoherent)
        var p2m = try makeP2M(&h)
        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x200), to: MFN(0x50200), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        try p2m.unmap(GFN(0x201), count: 1, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x21_0000, write: true).0, .ok(PhysAddr(0x5021_0000)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x3F_F000, write: true).0, .ok(PhysAddr(0x503F_F000)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_1000, write: true).0, .fault(.translation))
        XCTAssertEqual(h.memory.staleDeviceReads, [])
        XCTAssertEqual(h.fake.staleWalksAtInvalidation, [], "the split's break reached RAM before its TLBI")
    }

    /// Seed 000 with a lost CMD_SYNC: the SMMU may still translate the unmapped
    /// IOVAs (its TLB is not invalidated), so the P2M's held references and both
    /// sides' unlinked table pages stay put until a retry completes.
    func testLostSyncReleasesNothingUntilTheSMMUConfirms() throws {
        var h = try HookHarness(.qemu72, configuration: SMMUConfiguration(pollLimit: 100))
        var p2m = try makeP2M(&h)
        let mirror = p2m.observer
        let fake = h.fake
        let releaser = CheckingReleaser { XCTAssertNil(fake.stage1TLB[1]?[0x100]) }
        var batch = FlushBatch(releaser: releaser)
        try p2m.map(GFN(0x100), to: ram, count: 16, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0008, write: false).0, .ok(ram.address.adding(8)))
        let mirrorFree = mirror.pool.availableTablePages, p2mFree = p2m.pool.availableTablePages
        try p2m.unmap(GFN(0x100), count: 16, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(mirror.unlinkedTablePages, 2)

        h.fake.consumptionStalled = true
        do {
            try p2m.commit(&batch, holding: lockHeld)
            XCTFail("a lost CMD_SYNC must fail the commit")
        } catch {
            XCTAssertEqual(error, .iommuNotSynchronized(.completionTimeout, heldReferences: 16, tablePages: 2))
        }
        guard case .syncTimeout? = h.handle.takeInvalidationFailure() else { return XCTFail("expected a timeout") }
        XCTAssertEqual(releaser.log.releases, 0, "no reference released")
        XCTAssertEqual(batch.heldReferences, 16)
        XCTAssertEqual(p2m.pool.availableTablePages, p2mFree, "no P2M table page freed")
        XCTAssertEqual(mirror.unlinkedTablePages, 2)
        XCTAssertEqual(mirror.pool.availableTablePages, mirrorFree, "no mirror table page freed")
        // Why: the SMMU still translates the old IOVA to the frame.
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0008, write: false).0, .ok(ram.address.adding(8)))

        // The SMMU recovered: the retry invalidates again, then releases everything.
        h.fake.consumptionStalled = false
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(releaser.log.releases, 1)
        XCTAssertTrue(batch.isEmpty)
        XCTAssertEqual(p2m.pool.availableTablePages, p2mFree + 2)
        XCTAssertEqual(mirror.unlinkedTablePages, 0)
        XCTAssertEqual(mirror.pool.availableTablePages, mirrorFree + 2)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0008, write: false).0, .fault(.translation))
        XCTAssertNil(h.handle.invalidationFailure)
    }

    /// The P2M's own break-before-make completed (so its batch records no
    /// range), but the mirror's, made afterwards while applying the change, lost
    /// its CMD_SYNC: the mirror leaves its block invalid (devices fault there
    /// rather than reach a translation the SMMU may still cache), and the commit
    /// must still wait for the mirror and release the replaced frame's reference
    /// only once that wait succeeds.
    func testMirrorBreakBeforeMakeLostSyncHoldsTheCommit() throws {
        var h = try HookHarness(.qemu72, configuration: SMMUConfiguration(pollLimit: 100))
        var p2m = try makeP2M(&h)
        let mirror = p2m.observer
        let releaser = CheckingReleaser {}
        var batch = FlushBatch(releaser: releaser)
        try p2m.map(GFN(0x200), to: MFN(0x50200), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        _ = h.fake.dma(stream: 0x10, iova: 0x20_5000, write: false)  // cached: IOVA 0x205 -> 0x50205
        // The P2M's split (break-before-make of the block; the new leaf is written
        // into the fresh table before it is linked) waits once and completes; the
        // mirror's split, next, does not.
        h.fake.syncsBeforeStall = 1
        try p2m.map(GFN(0x205), to: MFN(0x60000), count: 1, as: .ramRW, policy: .replace, flushing: &batch, holding: lockHeld)
        XCTAssertTrue(h.fake.consumptionStalled)
        XCTAssertEqual(mirror.entriesLeftInvalid, 1)
        XCTAssertNil(mirror.lookup(IOVA(0x20_6000)), "the mirror's broken block is not made")
        XCTAssertEqual(p2m.lookup(GFN(0x206))?.mfn, MFN(0x50206))
        XCTAssertFalse(batch.needsInvalidation, "the P2M's own invalidations completed")
        XCTAssertEqual(batch.heldReferences, 1)
        XCTAssertTrue(mirror.hasPendingInvalidations)
        XCTAssertThrowsError(try p2m.commit(&batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MFlushError, .iommuNotSynchronized(.completionTimeout, heldReferences: 1, tablePages: 0))
        }
        XCTAssertEqual(releaser.log.releases, 0, "released while the SMMU may still translate to the old frame")

        h.fake.consumptionStalled = false
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(releaser.log.releases, 1)
        XCTAssertFalse(mirror.hasPendingInvalidations)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_5000, write: false).0, .fault(.translation))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_6000, write: false).0, .fault(.translation))
        _ = h.handle.takeInvalidationFailure()
        // Mapping the range again brings the mirror back in step.
        try p2m.map(GFN(0x200), to: MFN(0x50200), count: 5, as: .ramRW, policy: .replace, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x205), to: MFN(0x60000), count: 1, as: .ramRW, policy: .replace, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x206), to: MFN(0x50206), count: 506, as: .ramRW, policy: .replace, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_5000, write: false).0, .ok(PhysAddr(0x6000_0000)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_6000, write: false).0, .ok(PhysAddr(0x5020_6000)))
    }

    /// A type change keeps the access restriction the P2M entry carries: a page
    /// the P2M maps read-only for everyone (access `.read`) never becomes a
    /// writable IOMMU mapping, whatever its type says.
    func testTypeChangeKeepsTheAccessRestriction() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h)
        let mirror = p2m.observer
        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x100), to: ram, count: 1, as: .ramRW, access: .read, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(mirror.lookup(IOVA(0x10_0000))?.writable, false)
        try p2m.changeType(GFN(0x100), count: 1, from: .ramRW, to: .ramRO, access: .read, flushing: &batch, holding: lockHeld)
        try p2m.changeType(GFN(0x100), count: 1, from: .ramRO, to: .ramRW, access: .read, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(p2m.lookup(GFN(0x100))?.type, .ramRW)
        XCTAssertEqual(mirror.lookup(IOVA(0x10_0000))?.writable, false)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0000, write: true).0, .fault(.permission))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0000, write: false).0, .ok(ram.address))
    }

    /// The mirror reserves what the planned change needs: a 1 GiB map is one
    /// level-1 block in the mirror too, so a pool of its root and one spare page
    /// is plenty (the page-granular worst case needed 513); a map the
    /// pool cannot hold still fails the whole P2M operation with nothing changed.
    func testOneGiBMapNeedsNoMirrorTablePagesAndExhaustionStillRefuses() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h, mirrorPages: 2)
        let mirror = p2m.observer
        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x40000), to: MFN(0x80000), count: 1 << 18, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(mirror.table.lookup(0x41234, memory: h.memory)?.level, 1)
        XCTAssertEqual(mirror.lookup(IOVA(0x4123_4000))?.frame, MFN(0x81234))
        XCTAssertEqual(mirror.tablePagesInUse, 1)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x4123_4008, write: true, value: 5).0, .ok(PhysAddr(0x8123_4008)))

        // 1024 pages to frames aligned to nothing: the mirror needs a level-2 and
        // three level-3 tables and has one page.
        let p2mFree = p2m.pool.availableTablePages, p2mInUse = p2m.tablePagesInUse
        let words = h.memory.words
        XCTAssertThrowsError(try p2m.map(GFN(0x80000), to: MFN(0x100001), count: 1024, as: .ramRW, flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .observerRefused(GFN(0x80000), count: 1024))
        }
        XCTAssertNil(p2m.lookup(GFN(0x80000)))
        XCTAssertNil(mirror.lookup(IOVA(0x8000_0000)))
        XCTAssertEqual(p2m.pool.availableTablePages, p2mFree)
        XCTAssertEqual(p2m.tablePagesInUse, p2mInUse)
        XCTAssertEqual(mirror.pool.availableTablePages, 1)
        XCTAssertTrue(h.memory.words == words, "nothing written")
        XCTAssertTrue(batch.isEmpty)
        try p2m.commit(&batch, holding: lockHeld)
    }

    /// The GICv2m frame's page on QEMU virt.
    let doorbell = MFN(0x8020)

    /// An MMIO window holding the doorbell, mapped at a different IPA: only
    /// the doorbell page reaches the mirror, at its IPA, as Device memory a
    /// device can write; the rest of the window and other MMIO stay
    /// unreachable, and unmapping the window takes the doorbell away.
    func testOnlyTheMSIDoorbellOfAnMMIOWindowIsMirroredAsDevice() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h, msiDoorbells: [doorbell])
        let mirror = p2m.observer
        var batch = FlushBatch(releaser: CheckingReleaser {})
        // GIC window 0x08000000..0x08100000 at IPA 0x07000000; the UART's page; RAM.
        try p2m.map(GFN(0x7000), to: MFN(0x8000), count: 0x100, as: .mmioDirectDevice, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x9000), to: MFN(0x9000), count: 1, as: .mmioDirectDevice, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x100), to: ram, count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)

        XCTAssertEqual(mirror.lookup(IOVA(0x0702_0000))?.frame, doorbell)
        XCTAssertEqual(mirror.lookup(IOVA(0x0702_0000))?.writable, true)
        let leaf = try XCTUnwrap(mirror.table.lookup(0x7020, memory: h.memory))
        XCTAssertEqual(leaf.level, 3)
        XCTAssertEqual(Stage1Descriptor(raw: leaf.descriptor).attributeIndex, MAIR.indexDeviceNGnRE)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x0702_0040, write: true, value: 33).0, .ok(PhysAddr(0x0802_0040)))
        for iova: UInt64 in [0x0701_F000, 0x0702_1000, 0x0700_0000, 0x070F_F000, 0x0802_0000, 0x0900_0000] {
            XCTAssertNil(mirror.lookup(IOVA(iova)), "\(iova)")
            XCTAssertEqual(h.fake.dma(stream: 0x10, iova: iova, write: true).0, .fault(.translation))
        }
        XCTAssertEqual(mirror.lookup(IOVA(0x10_0000))?.frame, ram)

        let mark = h.fake.consumedCommands.count
        try p2m.unmap(GFN(0x7000), count: 0x100, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertTrue(h.commands(since: mark).contains(.sync()))
        XCTAssertNil(mirror.lookup(IOVA(0x0702_0000)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x0702_0040, write: true).0, .fault(.translation))
    }

    /// The doorbell is not a way around the P2M: MMIO the domain may not
    /// write (or read), and the doorbell frame mapped as anything but MMIO,
    /// give devices no doorbell mapping.
    func testTheDoorbellNeedsReadWriteMMIOInTheP2M() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h, msiDoorbells: [doorbell])
        let mirror = p2m.observer
        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x7020), to: doorbell, count: 1, as: .mmioDirectDevice, access: .read, flushing: &batch,
                    holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertNil(mirror.lookup(IOVA(0x0702_0000)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x0702_0040, write: true).0, .fault(.translation))
        XCTAssertFalse(TestMirror.carriesDoorbell(.mmioDirectDevice, access: .write))
        XCTAssertTrue(TestMirror.carriesDoorbell(.mmioDirectNC, access: .readWrite))
        XCTAssertFalse(TestMirror.carriesDoorbell(.ramRW, access: .all), "RAM is mirrored as RAM, not as a doorbell")
        XCTAssertFalse(TestMirror.carriesDoorbell(.invalid, access: .all))
    }

    /// A doorbell needs a fresh table path (levels 2 and 3 under a level-1
    /// root); a mirror that cannot have it refuses the P2M's map with
    /// nothing changed, while MMIO without a doorbell needs nothing.
    func testDoorbellWithoutTablePagesRefusesAndChangesNothing() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h, mirrorPages: 2, msiDoorbells: [doorbell])
        let mirror = p2m.observer
        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x9000), to: MFN(0x9000), count: 16, as: .mmioDirectDevice, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertNil(mirror.lookup(IOVA(0x0900_0000)))
        XCTAssertEqual(mirror.tablePagesInUse, 1)

        let p2mFree = p2m.pool.availableTablePages, p2mInUse = p2m.tablePagesInUse
        let words = h.memory.words
        XCTAssertThrowsError(try p2m.map(GFN(0x8000), to: MFN(0x8000), count: 0x100, as: .mmioDirectDevice,
                                         flushing: &batch, holding: lockHeld)) {
            XCTAssertEqual($0 as? P2MError, .observerRefused(GFN(0x8000), count: 0x100))
        }
        XCTAssertNil(p2m.lookup(GFN(0x8020)))
        XCTAssertNil(mirror.lookup(IOVA(0x0802_0000)))
        XCTAssertEqual(p2m.pool.availableTablePages, p2mFree)
        XCTAssertEqual(p2m.tablePagesInUse, p2mInUse)
        XCTAssertEqual(mirror.pool.availableTablePages, 1)
        XCTAssertEqual(mirror.tablePagesInUse, 1)
        XCTAssertTrue(h.memory.words == words, "nothing written")
        XCTAssertTrue(batch.isEmpty)
        try p2m.commit(&batch, holding: lockHeld)
    }

    func testDoorbellAttributes() {
        // AttrIndx 2 (Device-nGnRE in MAIR.standard), AP=01 (RW, EL0), SH=OSH, nG, PXN, UXN.
        XCTAssertEqual(TestMirror.doorbellAttributes.bits, 2 << 2 | 0b01 << 6 | 2 << 8 | 1 << 11 | 1 << 53 | 1 << 54)
        XCTAssertEqual(MAIR.standard[MAIR.indexDeviceNGnRE], 0x04)
    }

    func testMirrorAttributes() {
        // AttrIndx 0 (Normal WB), AP=01 (RW, EL0) / 11 (RO), SH=ISH, nG, PXN, UXN.
        XCTAssertEqual(TestMirror.attributes(writable: true).bits, 0 << 2 | 0b01 << 6 | 3 << 8 | 1 << 11 | 1 << 53 | 1 << 54)
        XCTAssertEqual(TestMirror.attributes(writable: false).bits, 0b11 << 6 | 3 << 8 | 1 << 11 | 1 << 53 | 1 << 54)
    }
}
