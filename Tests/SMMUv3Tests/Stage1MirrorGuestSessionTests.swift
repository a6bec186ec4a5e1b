import XCTest
import AArch64
import Translation
import HostFakes
@testable import SMMUv3

typealias TestMirrorSink = MirrorSink<FakeSMMU, FakeMemory, RecordingCache, TestTablePool>

/// The board's arrangement: the mirror commits through the P2M's own session
/// type (`P2MGuestSession`), its sink riding as the environment's `SessionGuest`.
enum GuestMirrorEnvironment: SMMUTestEnvironment {
    typealias IOMMU = TestMirror
    typealias Listener = HoldingListener
    typealias Observer = GuestRoutedMirror
    typealias SessionGuest = TestMirrorSink
}
typealias GuestMirrorP2M = P2M<GuestMirrorEnvironment>

enum GuestCommit: Stage1MirrorCommit {
    static func commitMap(_ engine: TableEngine, _ plan: consuming MapPlan, memory: FakeMemory,
                          sink: inout TestMirrorSink) {
        P2MGuestSession<GuestMirrorEnvironment, CheckingReleaser>.commitMapFromRoot(engine, plan, memory: memory,
                                                                                    guest: &sink)
    }
    static func commitUnmap(_ engine: TableEngine, _ plan: consuming RangePlan, memory: FakeMemory,
                            sink: inout TestMirrorSink) {
        P2MGuestSession<GuestMirrorEnvironment, CheckingReleaser>.commitUnmapFromRoot(engine, plan, memory: memory,
                                                                                      guest: &sink)
    }
}

/// The P2M's observer: the mirror, committing through `GuestCommit`.
struct GuestRoutedMirror: P2MChangeObserver {
    let mirror: TestMirror
    func prepare(_ change: P2MPlannedChange) -> Bool { mirror.prepare(change) }
    func apply(_ change: P2MChange) { mirror.apply(change, commit: GuestCommit.self) }
}

/// The mirror's edits through a guest P2M session: every report the engine
/// makes (pages, valid-entry counts, invalidations, break-before-make, the clean
/// before a link) reaches the mirror, never the P2M whose session type it is.
final class Stage1MirrorGuestSessionTests: XCTestCase {
    func makeP2M(_ h: inout HookHarness) throws -> GuestMirrorP2M {
        let mirror = try TestMirror.make(handle: h.handle, asid: 1, inputBits: 39, pool: h.mirrorPool(),
                                         allocator: &h.allocator)
        let p2m = try GuestMirrorP2M(
            configuration: P2MConfiguration(vmid: 1, ipaBits: 39, paRange: .bits44, vmidWidth: .bits8),
            memory: h.memory, pool: h.p2mPool(), tlb: CountingTLB(), iommu: mirror, listener: HoldingListener(),
            observer: GuestRoutedMirror(mirror: mirror))
        try h.handle.smmu.attach(StreamID(0x10), to: .stage1(mirror.domain), allocator: &h.allocator)
        return p2m
    }

    func testMapSplitAndUnmapReachTheMirrorOnly() throws {
        var h = try HookHarness(.qemu72)
        var p2m = try makeP2M(&h)
        let mirror = p2m.observer.mirror
        var batch = FlushBatch(releaser: CheckingReleaser {})
        let mirrorFree = mirror.pool.availableTablePages
        try p2m.map(GFN(0x200), to: MFN(0x50200), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x100), to: MFN(0x50000), count: 3, as: .ramRO, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(mirror.table.lookup(0x201, memory: h.memory)?.level, 2)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_1000, write: false).0, .ok(PhysAddr(0x5020_1000)))
        XCTAssertEqual(mirror.lookup(IOVA(0x10_2000))?.writable, false)
        // The 4 KiB pages needed a level-3 table (one level-2 table serves both).
        XCTAssertEqual(mirror.pool.availableTablePages, mirrorFree - 2)
        XCTAssertEqual(mirror.tablePagesInUse, 3)
        XCTAssertEqual(p2m.tablePagesInUse, 3, "the P2M counts its own: root (level 1), a level-2 and a level-3 table")

        let syncs = h.handle.smmu.commandQueue.syncsIssued
        let p2mFree = p2m.pool.availableTablePages
        try p2m.unmap(GFN(0x201), count: 1, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(h.handle.smmu.commandQueue.syncsIssued, syncs + 2, "the P2M's split, then the mirror's")
        XCTAssertEqual(mirror.pool.availableTablePages, mirrorFree - 3, "the mirror's split table from its own pool")
        XCTAssertEqual(p2m.pool.availableTablePages, p2mFree - 1)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(mirror.table.lookup(0x202, memory: h.memory)?.level, 3)
        XCTAssertNil(mirror.lookup(IOVA(0x20_1000)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_1000, write: false).0, .fault(.translation))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_2000, write: false).0, .ok(PhysAddr(0x5020_2000)))

        // Unmapping everything empties and unlinks the mirror's tables, freed at the flush.
        try p2m.unmap(GFN(0x100), count: 0x300, flushing: &batch, holding: lockHeld)
        XCTAssertEqual(mirror.unlinkedTablePages, 3)
        XCTAssertEqual(mirror.tablePagesInUse, 1)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(mirror.unlinkedTablePages, 0)
        XCTAssertEqual(mirror.pool.availableTablePages, mirrorFree)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_2000, write: false).0, .fault(.translation))
    }

    /// Also the break before it: the split's TLBI finds the broken block in RAM
    /// (`FakeSMMU.walkAtInvalidation`), through the guest session's commit too.
    func testNonCoherentSplitTableIsCleanedBeforeItsLink() throws {
        var h = try HookHarness(.qemu72NonCoherent)
        var p2m = try makeP2M(&h)
        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x200), to: MFN(0x50200), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_1000, write: true).0, .ok(PhysAddr(0x5020_1000)))
        let walks = h.fake.invalidationWalks
        try p2m.unmap(GFN(0x201), count: 1, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertGreaterThan(h.fake.invalidationWalks, walks)
        XCTAssertEqual(h.fake.staleWalksAtInvalidation, [])
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x21_0000, write: true).0, .ok(PhysAddr(0x5021_0000)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x3F_F000, write: true).0, .ok(PhysAddr(0x503F_F000)))
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_1000, write: true).0, .fault(.translation))
        XCTAssertEqual(h.memory.staleDeviceReads, [])
    }

    func testLostSyncInTheMirrorsSplitLeavesItsEntryInvalid() throws {
        var h = try HookHarness(.qemu72, configuration: SMMUConfiguration(pollLimit: 100))
        var p2m = try makeP2M(&h)
        let mirror = p2m.observer.mirror
        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x200), to: MFN(0x50200), count: 512, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        h.fake.syncsBeforeStall = 1
        try p2m.map(GFN(0x205), to: MFN(0x60000), count: 1, as: .ramRW, policy: .replace, flushing: &batch,
                    holding: lockHeld)
        XCTAssertEqual(mirror.entriesLeftInvalid, 1)
        XCTAssertNil(mirror.lookup(IOVA(0x20_6000)), "the mirror's broken block is not made")
        XCTAssertEqual(p2m.lookup(GFN(0x206))?.mfn, MFN(0x50206), "the P2M's own edit is complete")
        XCTAssertTrue(mirror.hasPendingInvalidations)
        XCTAssertThrowsError(try p2m.commit(&batch, holding: lockHeld))
        h.fake.consumptionStalled = false
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertFalse(mirror.hasPendingInvalidations)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x20_6000, write: false).0, .fault(.translation))
    }
}
