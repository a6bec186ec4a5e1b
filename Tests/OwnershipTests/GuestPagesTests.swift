import XCTest
import AArch64
import Translation
import HostFakes
@testable import Ownership

final class GuestPagesTests: XCTestCase {
    let d1 = DomainID(1), d2 = DomainID(2)
    let page = PageSize.bytes4K

    /// Seed 004, towards guests: a DMA-shared frame can be neither donated nor
    /// lent to a guest, and a donated frame cannot be shared for DMA.
    func testDMASharedFramesNeverReachAGuest() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        let f = bank0
        try w.o.hostShareDMA(f.address, bytes: page, isRAM: true)
        expectRefusal(.EPERM(.dmaShared(f, shares: 1)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostDonateToGuest(f, to: self.d1, at: GFN(raw: 1))
        }
        expectRefusal(.EPERM(.dmaShared(f, shares: 1)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareWithGuest(f, with: self.d1, at: GFN(raw: 1))
        }
        try w.o.hostUnshareDMA(f.address, bytes: page)
        try w.o.hostDonateToGuest(f, to: d1, at: GFN(raw: 1))
        expectRefusal(.EPERM(.notOwner(f, owner: .guest(d1))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(f.address, bytes: self.page, isRAM: true)
        }
        // A frame lent to a guest is not DMA-shareable either.
        try w.o.hostShareWithGuest(bank0.adding(1), with: d1, at: GFN(raw: 2))
        expectRefusal(.EPERM(.borrowedBy(bank0.adding(1), .guest(d1))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(bank0.adding(1).address, bytes: self.page, isRAM: true)
        }
        try w.o.hostUnshareWithGuest(bank0.adding(1), with: d1, at: GFN(raw: 2))
        XCTAssertEqual(w.o.state(of: bank0.adding(1)), .hostOwned)
        XCTAssertNil(w.lookup(d1, GFN(raw: 2)))
    }

    func testDonateReclaimRoundTripFlushesBeforeReturn() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        try w.o.hostDonateToGuest(bank0, to: d1, at: GFN(raw: 7))
        XCTAssertEqual(w.o.state(of: bank0),
                       FrameState(owner: .guest(d1), hostState: .noPage, references: 1, isAllocated: true))
        XCTAssertEqual(w.lookup(d1, GFN(raw: 7))?.type, .ramRW)
        w.log.events = []
        try w.o.reclaim(d1, gfn: GFN(raw: 7))
        XCTAssertEqual(w.log.events.first, .tlbiRange(vmid: 2, page: 7, pages: 1))
        XCTAssertEqual(w.o.state(of: bank0), .hostOwned)
        XCTAssertNil(w.lookup(d1, GFN(raw: 7)))
    }

    /// Seed 000 when the IOMMU fails: a reclaimed frame whose flush the IOMMU
    /// did not confirm stays held (a device may still reach it); a second
    /// failure adds to what the domain owes; the first flush that completes
    /// returns both frames to the host.
    func testReclaimWhoseFlushFailedKeepsTheFrameUntilARetry() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        let f0 = bank0, f1 = bank0.adding(1)
        try w.o.hostDonateToGuest(f0, to: d1, at: GFN(raw: 7))
        try w.o.hostDonateToGuest(f1, to: d1, at: GFN(raw: 8))
        let heldState = FrameState(owner: .guest(d1), hostState: .noPage, references: 1, isAllocated: false)

        w.log.failingIOMMUSyncs = 1
        try w.o.reclaim(d1, gfn: GFN(raw: 7))
        XCTAssertNil(w.lookup(d1, GFN(raw: 7)), "the unmap itself happened")
        XCTAssertEqual(w.o.state(of: f0), heldState, "not returned to the host: its flush was not confirmed")
        XCTAssertEqual(w.o.withDomain(d1) { (d: borrowing GuestDomain<TestP2M>) in d.lastFlushFailure },
                       .iommuNotSynchronized(.completionTimeout, heldReferences: 1, tablePages: 0))
        XCTAssertEqual(w.o.withDomain(d1) { (d: borrowing GuestDomain<TestP2M>) in d.owesFlush }, true)

        // A second failure: the owed flush is retried with the new one, and both stay held.
        w.log.failingIOMMUSyncs = 1
        try w.o.reclaim(d1, gfn: GFN(raw: 8))
        XCTAssertEqual(w.o.state(of: f0), heldState)
        XCTAssertEqual(w.o.state(of: f1), heldState)
        XCTAssertEqual(w.o.withDomain(d1) { (d: borrowing GuestDomain<TestP2M>) in d.referencesHeldForFlush }, 2)

        // The IOMMU recovered: one retry invalidates both GFNs again, then releases both.
        w.log.events = []
        XCTAssertTrue(try w.o.retryFlush(d1))
        XCTAssertTrue(w.log.events.contains(.iommuRange(vmid: 2, page: 7, pages: 2)))
        XCTAssertEqual(w.o.state(of: f0), .hostOwned)
        XCTAssertEqual(w.o.state(of: f1), .hostOwned)
        XCTAssertEqual(w.o.withDomain(d1) { (d: borrowing GuestDomain<TestP2M>) in d.owesFlush }, false)
        XCTAssertFalse(w.o.isPageLockHeld)
    }

    /// The owed flush also rides on the domain's next flush; an operation
    /// that needs none (a map into a hole) leaves it owed.
    func testNextFlushRetriesAnOwedFlush() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        try w.o.hostDonateToGuest(bank0, to: d1, at: GFN(raw: 7))
        w.log.failingIOMMUSyncs = 1
        try w.o.reclaim(d1, gfn: GFN(raw: 7))
        XCTAssertNotEqual(w.o.state(of: bank0), .hostOwned)
        try w.o.hostDonateToGuest(bank0.adding(2), to: d1, at: GFN(raw: 9))
        XCTAssertNotEqual(w.o.state(of: bank0), .hostOwned)
        XCTAssertEqual(w.o.withDomain(d1) { (d: borrowing GuestDomain<TestP2M>) in d.owesFlush }, true)
        try w.o.reclaim(d1, gfn: GFN(raw: 9))
        XCTAssertEqual(w.o.state(of: bank0), .hostOwned)
        XCTAssertEqual(w.o.state(of: bank0.adding(2)), .hostOwned)
        XCTAssertEqual(w.o.withDomain(d1) { (d: borrowing GuestDomain<TestP2M>) in d.owesFlush }, false)
    }

    /// A frame the host lent to a guest comes back after the unmap, but while
    /// the IOMMU has not confirmed that unmap's flush it cannot be handed on.
    func testHostUnshareWhoseFlushFailedCannotBeHandedOn() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        w.addDomain(DomainConfig(id: d2))
        let f = bank0.adding(3)
        try w.o.hostShareWithGuest(f, with: d1, at: GFN(raw: 4))
        w.log.failingIOMMUSyncs = 1
        try w.o.hostUnshareWithGuest(f, with: d1, at: GFN(raw: 4))
        XCTAssertNil(w.lookup(d1, GFN(raw: 4)))
        XCTAssertEqual(w.o.state(of: f), FrameState(owner: .host, hostState: .owned, references: 1))
        expectRefusal(.EBUSY(.flushPending(f)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostDonateToGuest(f, to: self.d2, at: GFN(raw: 1))
        }
        XCTAssertTrue(try w.o.retryFlush(d1))
        XCTAssertEqual(w.o.state(of: f), .hostOwned)
        try w.o.hostDonateToGuest(f, to: d2, at: GFN(raw: 1))
    }

    func testGuestShareWithHostIsSharedBorrowed() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        try w.o.hostDonateToGuest(bank0, to: d1, at: GFN(raw: 7))
        try w.o.guestShareWithHost(d1, gfn: GFN(raw: 7))
        XCTAssertEqual(w.o.state(of: bank0)?.hostState, .sharedBorrowed)
        expectRefusal(.EPERM(.wrongHostState(bank0, .sharedBorrowed)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.reclaim(self.d1, gfn: GFN(raw: 7))
        }
        expectRefusal(.EPERM(.wrongHostState(bank0, .sharedBorrowed)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.guestShareWithHost(self.d1, gfn: GFN(raw: 7))
        }
        try w.o.guestUnshareWithHost(d1, gfn: GFN(raw: 7))
        XCTAssertEqual(w.o.state(of: bank0)?.hostState, .noPage)
    }

    func testRefusedGuestTransitionsChangeNothing() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        w.addDomain(DomainConfig(id: d2))
        try w.o.hostDonateToGuest(bank0, to: d1, at: GFN(raw: 7))
        expectRefusal(.EBUSY(.gfnOccupied(d1, GFN(raw: 7))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostDonateToGuest(bank0.adding(1), to: self.d1, at: GFN(raw: 7))
        }
        expectRefusal(.EPERM(.notOwner(bank0, owner: .guest(d1))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostDonateToGuest(bank0, to: self.d2, at: GFN(raw: 7))
        }
        expectRefusal(.ENOENT(.unmapped(d2, GFN(raw: 8))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .gmfnForeign(self.d2), idx: 8, gfn: GFN(raw: 9))
        }
        expectRefusal(.EPERM(.selfForeign(d1)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .gmfnForeign(self.d1), idx: 7, gfn: GFN(raw: 9))
        }
        expectRefusal(.ENOENT(.noSuchDomain(DomainID(5))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.reclaim(DomainID(5), gfn: GFN(raw: 7))
        }
        expectRefusal(.ENOENT(.unmapped(d1, GFN(raw: 1))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.reclaim(self.d1, gfn: GFN(raw: 1))
        }
    }

    /// Foreign mappings hold a reference until their removal is flushed.
    func testForeignMappingHoldsReferenceUntilRemovedAndFlushed() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        w.addDomain(DomainConfig(id: d2))
        try w.o.hostDonateToGuest(bank0, to: d2, at: GFN(raw: 8))
        _ = try w.o.addToPhysmap(d1, .gmfnForeign(d2), idx: 8, gfn: GFN(raw: 0x30))
        XCTAssertEqual(w.lookup(d1, GFN(raw: 0x30))?.type, .mapForeignRW)
        XCTAssertEqual(w.o.state(of: bank0)?.references, 2)
        try w.o.reclaim(d2, gfn: GFN(raw: 8))
        XCTAssertEqual(w.o.state(of: bank0)?.references, 1)
        w.log.events = []
        try w.o.removePhysmap(d1, gfn: GFN(raw: 0x30))
        XCTAssertEqual(w.log.events.first, .tlbiRange(vmid: 2, page: 0x30, pages: 1))
        XCTAssertEqual(w.o.state(of: bank0), .hostOwned)
    }

    func testDeviceMemoryMapsOutsideRAMOnly() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        _ = try w.o.addToPhysmap(d1, .devMMIO, idx: deviceFrame.raw, gfn: GFN(raw: 0x40))
        XCTAssertEqual(w.lookup(d1, GFN(raw: 0x40))?.type, .mmioDirectDevice)
        try w.o.removePhysmap(d1, gfn: GFN(raw: 0x40))
        XCTAssertNil(w.lookup(d1, GFN(raw: 0x40)))
    }

    /// Seed 003 towards guests: donating into a non-coherent domain cleans
    /// first, giving the frame back cleans again; coherent domains cost nothing;
    /// turning a domain non-coherent replays its frames. Stage 2 forces
    /// write-back here (FEAT_S2FWB), so only seed 003's cleans are counted: the
    /// guests' caches-off clean is CacheModelTests'.
    func testNonCoherentGuestCleansBeforeFirstMappingAndOnRelease() throws {
        var w = World()
        w.o.guestFrameCoherence = GuestFrameCoherence(hcr: GuestFrameCoherence.hcrFWB)
        w.addDomain(DomainConfig(id: d1, enforcesCacheCoherency: false))
        w.addDomain(DomainConfig(id: d2))
        try w.o.hostDonateToGuest(bank0, to: d1, at: GFN(raw: 1))
        XCTAssertEqual(w.o.cache.cleanedFrames, [bank0])
        XCTAssertEqual(w.o.state(of: bank0)?.cacheFlushRequired, true)
        try w.o.reclaim(d1, gfn: GFN(raw: 1))
        XCTAssertEqual(w.o.cache.cleanedFrames, [bank0, bank0])
        XCTAssertEqual(w.o.state(of: bank0), .hostOwned)

        try w.o.hostDonateToGuest(bank0.adding(1), to: d2, at: GFN(raw: 1))
        XCTAssertEqual(w.o.cache.cleanedFrames.count, 2)
        try w.o.setEnforcesCacheCoherency(d2, false)
        XCTAssertEqual(w.o.cache.cleanedFrames, [bank0, bank0, bank0.adding(1)])
        try w.o.setEnforcesCacheCoherency(d2, true)
        try w.o.reclaim(d2, gfn: GFN(raw: 1))
        XCTAssertEqual(w.o.cache.cleanedFrames, [bank0, bank0, bank0.adding(1), bank0.adding(1)],
                       "the lazy clean at release happens even after the domain became coherent again")
    }
}
