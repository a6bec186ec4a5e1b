import XCTest
import AArch64
import Translation
import HostFakes
@testable import SMMUv3

typealias TestHooks = SMMUDomainHooks<FakeSMMU, FakeMemory, RecordingCache, TestTablePool>
enum HookedEnvironment: SMMUTestEnvironment {
    typealias IOMMU = TestHooks
    typealias Listener = HoldingListener
    typealias Observer = TestHooks
}
typealias HookedP2M = P2M<HookedEnvironment>

/// The same code path on both kinds of SMMU, as the board image runs it.
final class SMMUDomainHooksTests: XCTestCase {
    func runScenario(_ profile: FakeSMMU.Profile, expecting mode: TranslationMode) throws {
        var h = try HookHarness(profile)
        let hooks = try TestHooks.make(handle: h.handle, asid: 1, ipaBits: 39, pool: h.mirrorPool(), allocator: &h.allocator)
        XCTAssertEqual(hooks.mode, mode)
        var p2m = try HookedP2M(configuration: P2MConfiguration(vmid: 2, ipaBits: 39, paRange: .bits44, vmidWidth: .bits8),
                                memory: h.memory, pool: h.p2mPool(), tlb: CountingTLB(), iommu: hooks,
                                listener: HoldingListener(), observer: hooks)
        let sid = StreamID(bus: 0, device: 1, function: 0)
        try h.handle.smmu.attach(sid, to: hooks.domain(vttbr: p2m.vttbr, vtcr: p2m.vtcr), allocator: &h.allocator)

        var batch = FlushBatch(releaser: CheckingReleaser {})
        try p2m.map(GFN(0x100), to: MFN(0x50000), count: 2, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(h.fake.dma(stream: sid.raw, iova: 0x10_1008, write: true, value: 3).0, .ok(PhysAddr(0x5000_1008)))
        let mark = h.fake.consumedCommands.count
        try p2m.unmap(GFN(0x101), count: 1, flushing: &batch, holding: lockHeld)
        try p2m.commit(&batch, holding: lockHeld)
        let expected: Command = mode == .stage1 ? .tlbiNHVA(asid: 1, va: IOVA(0x10_1000)) : .tlbiS2IPA(vmid: 2, ipa: IPA(0x10_1000))
        XCTAssertEqual(h.commands(since: mark), [expected, .sync()])
        XCTAssertEqual(h.fake.dma(stream: sid.raw, iova: 0x10_1008, write: false).0, .fault(.translation))
        var events: [SMMUEvent] = []
        _ = h.handle.smmu.drainEvents { events.append($0) }
        XCTAssertEqual(events.map(\.kind), [.translation])
        XCTAssertEqual(events.first?.stream, sid)
        XCTAssertEqual(events.first?.inputAddress, IOVA(0x10_1008))
        XCTAssertEqual(h.memory.staleDeviceReads, [])
    }

    func testQEMU72UsesTheStage1Mirror() throws { try runScenario(.qemu72, expecting: .stage1) }
    func testQEMU10SharesTheP2MThroughStage2() throws { try runScenario(.qemu10, expecting: .stage2) }
    func testNonCoherentSMMUWithStage2FallsBackToTheMirror() throws {
        try runScenario(FakeSMMU.Profile.qemu10.without(1 << 4, idr: 0), expecting: .stage1)
    }
}
