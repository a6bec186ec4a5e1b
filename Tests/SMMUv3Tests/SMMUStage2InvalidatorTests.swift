import XCTest
import AArch64
import Translation
import HostFakes
@testable import SMMUv3

enum SharedEnvironment: SMMUTestEnvironment {
    typealias IOMMU = SMMUStage2Invalidator<FakeSMMU, FakeMemory, RecordingCache>
    typealias Listener = HoldingListener
}
typealias SharedP2M = P2M<SharedEnvironment>

/// Stage 2 sharing the P2M (QEMU 10): the P2M's flush becomes TLBI_S2_IPA + one CMD_SYNC.
final class SMMUStage2InvalidatorTests: XCTestCase {
    let edu = StreamID(0x10)

    func testSharedP2MTranslatesAndUnmapFaultsAfterOneSync() throws {
        var h = try HookHarness(.qemu10)
        var p2m = try SharedP2M(configuration: P2MConfiguration(vmid: 3, ipaBits: 39, paRange: .bits44, vmidWidth: .bits16),
                                memory: h.memory, pool: h.p2mPool(), tlb: CountingTLB(),
                                iommu: SMMUStage2Invalidator(handle: h.handle), listener: HoldingListener(),
                                observer: NoChangeObserver())
        let domain = Stage2Domain(vttbr: p2m.vttbr, vtcr: p2m.vtcr)
        XCTAssertEqual(domain.vmid, 3)
        XCTAssertEqual(domain.root, p2m.root.address)
        try h.handle.smmu.attach(edu, to: .stage2(domain), allocator: &h.allocator)

        let fake = h.fake
        var batch = FlushBatch(releaser: CheckingReleaser { XCTAssertNil(fake.stage2TLB[3]?[0x100]) })
        try p2m.map(GFN(0x100), to: MFN(0x50000), count: 4, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(0x200), to: MFN(0x9050), count: 1, as: .mmioDirectDevice, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_1010, write: true, value: 9).0, .ok(PhysAddr(0x5000_1010)))
        XCTAssertEqual(h.memory.load64(PhysAddr(0x5000_1010)), 9)

        let mark = h.fake.consumedCommands.count
        try p2m.unmap(GFN(0x100), count: 4, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.commands(since: mark),
                       [.tlbiS2IPA(vmid: 3, ipa: IPA(0x10_0000), range: TLBIRange(num: 0, scale: 2)), .sync()])
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_1010, write: false).0, .fault(.translation))
        var events: [SMMUEvent] = []
        _ = h.handle.smmu.drainEvents { events.append($0) }
        XCTAssertEqual(events.map(\.kind), [.translation])
        XCTAssertEqual(events.first?.ipa, IPA(0x10_1000))
        XCTAssertNil(h.handle.invalidationFailure)
    }

    func testRejectedTLBIFallsBackToWholeVMID() throws {
        let h = try HookHarness(.qemu10)
        var inv = SMMUStage2Invalidator(handle: h.handle)
        // A malformed range TLBI (NUM = SCALE = TTL = 0 with TG = 4K is Reserved): rejected, then VMALL.
        try h.handle.smmu.push(.tlbiS2IPA(vmid: 3, ipa: IPA(0), range: TLBIRange(num: 0, scale: 0)))
        let mark = h.fake.consumedCommands.count
        inv.invalidate(vmid: 3, GFN(0x100), count: 1)
        try inv.synchronize()
        XCTAssertEqual(h.commands(since: mark),
                       [.sync(), .tlbiS2IPA(vmid: 3, ipa: IPA(0x10_0000)), .sync(), .tlbiS12VMAll(vmid: 3), .sync()])
        XCTAssertEqual(h.handle.recoveredInvalidations, 1)
        XCTAssertNil(h.handle.invalidationFailure)
    }

    /// A rejection in a batch with no scope to fall back to (no invalidation
    /// queued through the invalidator yet): TLBI_NSNH_ALL, then a second sync.
    func testRejectedCommandWithoutScopeFallsBackToNSNHAll() throws {
        let h = try HookHarness(.qemu10)
        var inv = SMMUStage2Invalidator(handle: h.handle)
        try h.handle.smmu.push(.tlbiS2IPA(vmid: 3, ipa: IPA(0), range: TLBIRange(num: 0, scale: 0)))
        let mark = h.fake.consumedCommands.count
        try inv.synchronize()
        // The rejected TLBI's slot runs as CMD_SYNC, then the batch's sync, the fallback, a second sync.
        XCTAssertEqual(h.commands(since: mark), [.sync(), .sync(), .tlbiNSNHAll(), .sync()])
        XCTAssertEqual(h.handle.recoveredInvalidations, 1)
        XCTAssertNil(h.handle.invalidationFailure)
    }

    func testLostSyncIsRecordedNotHung() throws {
        let h = try HookHarness(.qemu10, configuration: SMMUConfiguration(pollLimit: 100))
        var inv = SMMUStage2Invalidator(handle: h.handle)
        h.fake.consumptionStalled = true
        inv.invalidate(vmid: 3, GFN(0x100), count: 1)
        do {
            try inv.synchronize()
            XCTFail("a lost CMD_SYNC must not confirm completion")
        } catch {
            XCTAssertEqual(error, .completionTimeout)
        }
        guard case .syncTimeout? = h.handle.takeInvalidationFailure() else { return XCTFail("expected a timeout") }
        XCTAssertNil(h.handle.invalidationFailure)
    }

    /// A command queue error the driver cannot recover from (the SMMU refuses
    /// the TLBIs and the whole-VMID fallback too): the P2M's commit fails and
    /// releases nothing; once the SMMU takes TLBIs again the retry releases.
    func testRejectedInvalidationsReleaseNothingUntilRetry() throws {
        var h = try HookHarness(.qemu10)
        var p2m = try SharedP2M(configuration: P2MConfiguration(vmid: 3, ipaBits: 39, paRange: .bits44, vmidWidth: .bits16),
                                memory: h.memory, pool: h.p2mPool(), tlb: CountingTLB(),
                                iommu: SMMUStage2Invalidator(handle: h.handle), listener: HoldingListener(),
                                observer: NoChangeObserver())
        try h.handle.smmu.attach(edu, to: .stage2(Stage2Domain(vttbr: p2m.vttbr, vtcr: p2m.vtcr)), allocator: &h.allocator)
        let fake = h.fake
        let releaser = CheckingReleaser { XCTAssertNil(fake.stage2TLB[3]?[0x100]) }
        var batch = FlushBatch(releaser: releaser)
        try p2m.map(GFN(0x100), to: MFN(0x50000), count: 4, as: .mapForeignRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0000, write: false).0, .ok(PhysAddr(0x5000_0000)))
        try p2m.unmap(GFN(0x100), count: 4, flushing: &batch, holding: lockHeld)

        h.fake.rejectInvalidations = true
        do {
            try p2m.commit(&batch, holding: lockHeld)
            XCTFail("refused invalidations must fail the commit")
        } catch {
            XCTAssertEqual(error, .iommuNotSynchronized(.invalidationRejected, heldReferences: 4, tablePages: 2))
        }
        guard case .commandRejected? = h.handle.takeInvalidationFailure() else { return XCTFail("expected a rejection") }
        XCTAssertEqual(releaser.log.releases, 0)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0000, write: false).0, .ok(PhysAddr(0x5000_0000)),
                       "the SMMU still translates: releasing now would be XSA-346")

        h.fake.rejectInvalidations = false
        let mark = h.fake.consumedCommands.count
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.commands(since: mark),
                       [.tlbiS2IPA(vmid: 3, ipa: IPA(0x10_0000), range: TLBIRange(num: 0, scale: 2)), .sync()])
        XCTAssertEqual(releaser.log.releases, 1)
        XCTAssertEqual(h.fake.dma(stream: 0x10, iova: 0x10_0000, write: false).0, .fault(.translation))
    }

    func testStage2RefusedOnNonCoherentSMMU() throws {
        var h = try Harness(FakeSMMU.Profile.qemu10.without(1 << 4, idr: 0))
        let (domain, _) = h.stage2Domain(vmid: 1)
        XCTAssertThrowsError(try h.smmu.attach(edu, to: .stage2(domain), allocator: &h.allocator)) {
            XCTAssertEqual($0 as? AttachError, .stage2NeedsCoherentSMMU)
        }
    }
}
