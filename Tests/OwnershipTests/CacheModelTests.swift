import XCTest
import AArch64
import Translation
import HostFakes
@testable import Ownership

typealias ModelOwnership = PageOwnership<WriteBackCacheMaintenance, TestP2M>

/// The ownership layer against a write-back cache model (`WriteBackCache`): the
/// hypervisor and the host write through the cache, while a guest with its
/// caches off and a non-coherent device read and write memory. A missing clean
/// or invalidate to the point of coherency shows up as stale data here.
final class CacheModelTests: XCTestCase {
    let guest = DomainID(1)
    let secret: UInt64 = 0x5EC2_E7DA_7A00_0001

    struct ModelWorld: ~Copyable {
        let cache = WriteBackCache()
        let tables = SparseRAM()
        let log = EventLog()
        var o: ModelOwnership

        init() {
            o = try! PageOwnership(banks: testBanks, cache: cache.maintenance)
        }

        mutating func addGuest(_ config: DomainConfig) {
            let memory = SparseMemory(ram: tables)
            let pool = FreeListPool(memory: memory, first: MFN(raw: 0x10_0000), count: 16)
            let p2m = try! TestP2M(configuration: P2MConfiguration(vmid: config.id.raw + 1, ipaBits: 39,
                                                                   paRange: .bits40, vmidWidth: .bits8),
                                   memory: memory, pool: pool, tlb: RecordingTLB(log: log),
                                   iommu: RecordingIOMMU(log: log), listener: o.entryListener,
                                   observer: NoChangeObserver())
            try! o.createDomain(config, p2m: p2m)
        }
    }

    /// The host fills a frame and donates it to a guest that runs with its
    /// caches off: the guest reads memory, so the frame must have been cleaned
    /// to PoC before it was mapped.
    func testADonatedFrameReachesMemoryBeforeTheGuestSeesIt() throws {
        var w = ModelWorld()
        w.addGuest(DomainConfig(id: guest))
        let f = bank0.adding(3)
        w.cache.cpu.store64(f.address.adding(0x18), secret)
        XCTAssertEqual(w.cache.memory.load64(f.address.adding(0x18)), 0, "the model leaked a dirty line")
        try w.o.hostDonateToGuest(f, to: guest, at: GFN(raw: 0x40))
        XCTAssertEqual(w.cache.memory.load64(f.address.adding(0x18)), secret, "the guest reads stale memory")
        XCTAssertFalse(w.cache.holdsLines(of: f), "a line of the frame stays cached (later eviction overwrites the guest)")
        XCTAssertEqual(w.cache.incompleteMaintenance, 0, "maintenance not completed by a DSB")
    }

    /// The same for a frame the host lends (hostShareWithGuest).
    func testALentFrameIsCleanedBeforeTheGuestSeesIt() throws {
        var w = ModelWorld()
        w.addGuest(DomainConfig(id: guest))
        let f = bank1.adding(1)
        w.cache.cpu.store64(f.address, secret)
        try w.o.hostShareWithGuest(f, with: guest, at: GFN(raw: 0x41))
        XCTAssertEqual(w.cache.memory.load64(f.address), secret)
    }

    /// A xenheap frame the hypervisor filled (shared_info) becomes the guest's.
    func testAHypervisorFilledXenheapFrameIsCleanedWhenSharedWithTheGuest() throws {
        var w = ModelWorld()
        w.addGuest(DomainConfig(id: guest))
        let f = bank0.adding(5)
        try w.o.allocateXenheapPage(f)
        w.cache.cpu.zeroFrame(f)
        w.cache.cpu.store64(f.address.adding(8), secret)
        try w.o.shareXenPageWithGuest(f, with: guest, readOnly: false)
        XCTAssertEqual(w.cache.memory.load64(f.address.adding(8)), secret)
    }

    /// With FEAT_S2FWB in use (HCR_EL2.FWB) the guest's accesses are write-back
    /// and coherent with the host's: no maintenance at all.
    func testWithStage2ForcedWriteBackNoCleanIsIssued() throws {
        var w = ModelWorld()
        w.o.guestFrameCoherence = GuestFrameCoherence(hcr: GuestFrameCoherence.hcrFWB)
        w.addGuest(DomainConfig(id: guest))
        w.cache.cpu.store64(bank0.address, secret)
        try w.o.hostDonateToGuest(bank0, to: guest, at: GFN(raw: 0x40))
        XCTAssertEqual(w.o.cache.cleanAndInvalidates + w.o.cache.cleans, 0)
        XCTAssertEqual(w.o.cache.synchronizations, 0)
        XCTAssertTrue(w.cache.isDirty(bank0.address))
    }

    /// A non-coherent guest domain: the one clean before the mapping serves both
    /// the guest's caches-off reads and its devices, and marks the frame.
    func testANonCoherentGuestGetsOneCleanAndTheMark() throws {
        var w = ModelWorld()
        w.addGuest(DomainConfig(id: guest, enforcesCacheCoherency: false))
        w.cache.cpu.store64(bank0.address, secret)
        try w.o.hostShareWithGuest(bank0, with: guest, at: GFN(raw: 0x40))
        XCTAssertEqual(w.o.cache.cleanAndInvalidates, 1)
        XCTAssertEqual(w.o.cache.synchronizations, 1)
        XCTAssertEqual(w.o.state(of: bank0)?.cacheFlushRequired, true)
        XCTAssertEqual(w.cache.memory.load64(bank0.address), secret)
    }

    /// Seed 003, both directions, through the model: a non-coherent device reads
    /// what the host wrote before sharing; after the unshare, the host reads
    /// what the device wrote, even though its CPU brought the line back into the
    /// cache (speculatively) while the device owned it.
    func testSeed003NonCoherentDMASeesMemoryBothWays() throws {
        var w = ModelWorld()
        let f = bank1.adding(2)
        try w.o.attachHostDMADomain(DMADomain(id: 9, enforcesCacheCoherency: false))
        w.cache.cpu.store64(f.address, secret)
        try w.o.hostShareDMA(f.address, bytes: PageSize.bytes4K, isRAM: true)
        XCTAssertEqual(w.cache.memory.load64(f.address), secret, "the device read stale memory")
        // The CPU may fill the line at any time through its cacheable mapping.
        w.cache.speculativeFill(f.address.adding(0x40))
        w.cache.memory.store64(f.address.adding(0x40), 0xD0_0D)   // the device's DMA write
        try w.o.hostUnshareDMA(f.address, bytes: PageSize.bytes4K)
        XCTAssertEqual(w.cache.cpu.load64(f.address.adding(0x40)), 0xD0_0D, "the host read a stale line")
    }

    /// Attaching a non-coherent domain replays the frames already shared: each
    /// is cleaned before the new domain can reach it.
    func testAttachingANonCoherentDomainCleansWhatItCanNowReach() throws {
        var w = ModelWorld()
        try w.o.attachHostDMADomain(DMADomain(id: 1, enforcesCacheCoherency: true))
        try w.o.hostShareDMA(bank0.address, bytes: 2 * PageSize.bytes4K, isRAM: true)
        w.cache.cpu.store64(bank0.adding(1).address.adding(0x80), secret)
        XCTAssertEqual(w.cache.memory.load64(bank0.adding(1).address.adding(0x80)), 0)
        try w.o.attachHostDMADomain(DMADomain(id: 2, enforcesCacheCoherency: false))
        XCTAssertEqual(w.cache.memory.load64(bank0.adding(1).address.adding(0x80)), secret)
    }
}

/// The model itself: dirty lines stay out of memory until a clean completes at
/// the DSB; a clean keeps the line, clean+invalidate drops it.
final class WriteBackCacheTests: XCTestCase {
    func testMaintenanceCompletesAtTheBarrier() {
        let cache = WriteBackCache()
        var m = cache.maintenance
        let a = PhysAddr(raw: 0x4000_0040)
        cache.cpu.store64(a, 7)
        XCTAssertEqual(cache.memory.load64(a), 0)
        m.clean(a, bytes: 8)
        XCTAssertEqual(cache.memory.load64(a), 0, "a clean is not complete before its DSB")
        m.synchronize()
        XCTAssertEqual(cache.memory.load64(a), 7)
        XCTAssertFalse(cache.isDirty(a))
        // A clean line stays: a device write under it is not seen by the CPU...
        cache.memory.store64(a, 9)
        XCTAssertEqual(cache.cpu.load64(a), 7)
        // ...until it is invalidated.
        m.cleanAndInvalidate(a, bytes: 1)
        m.synchronize()
        XCTAssertEqual(cache.cpu.load64(a), 9)
        XCTAssertEqual(cache.writeBacks, 1)
    }

    func testRangesCoverEveryLineTheyTouch() {
        let cache = WriteBackCache()
        var m = cache.maintenance
        let base = PhysAddr(raw: 0x4000_0000)
        for i in 0..<UInt64(8) { cache.cpu.store64(base.adding(i * 64 + 56), i + 1) }
        m.clean(base.adding(60), bytes: 64 * 6)   // from line 0 to the start of line 6
        m.synchronize()
        for i in 0..<UInt64(8) {
            XCTAssertEqual(cache.memory.load64(base.adding(i * 64 + 56)), i <= 6 ? i + 1 : 0, "line \(i)")
        }
    }
}
