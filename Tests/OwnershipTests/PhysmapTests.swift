import XCTest
import AArch64
import Translation
@testable import Ownership

final class PhysmapTests: XCTestCase {
    let d1 = DomainID(1)
    let sharedInfo = bank1
    let grantFrame = bank1.adding(1)
    let statusFrame = bank1.adding(2)

    func makeWorld() -> World {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        for f in [sharedInfo, grantFrame, statusFrame] { try! w.o.allocateXenheapPage(f) }
        try! w.o.installSharedInfo(sharedInfo, for: d1)
        try! w.o.installGrantFrame(grantFrame, for: d1, status: false)
        try! w.o.installGrantFrame(statusFrame, for: d1, status: true)
        return w
    }

    /// Seed 001's bug: a grant frame mapped at A, removed with remove_physmap,
    /// an unrelated page later populated at A, the grant frame mapped at B.
    /// With the GFN kept in a separate array, the second mapping "unmapped the
    /// old GFN" A and destroyed the unrelated mapping. Here the GFN lives in the
    /// frame and the removal cleared it: A is untouched.
    func testSeed001RemappedGrantFrameLeavesUnrelatedPageAtOldGFN() throws {
        var w = makeWorld()
        let a = GFN(raw: 0x100), b = GFN(raw: 0x200)
        XCTAssertEqual(try w.o.addToPhysmap(d1, .grantTable(index: 0, status: false), idx: 0, gfn: a), .complete)
        XCTAssertEqual(w.o.xenheapGFN(of: grantFrame), a)
        XCTAssertEqual(w.lookup(d1, a)?.mfn, grantFrame)

        try w.o.removePhysmap(d1, gfn: a)
        XCTAssertNil(w.o.xenheapGFN(of: grantFrame), "the P2M's removal listener clears the GFN")
        XCTAssertNil(w.lookup(d1, a))

        let unrelated = bank0.adding(3)
        try w.o.hostDonateToGuest(unrelated, to: d1, at: a)
        XCTAssertEqual(try w.o.addToPhysmap(d1, .grantTable(index: 0, status: false), idx: 0, gfn: b), .complete)
        XCTAssertEqual(w.lookup(d1, a)?.mfn, unrelated, "the unrelated page at the old GFN was touched")
        XCTAssertEqual(w.lookup(d1, a)?.type, .ramRW)
        XCTAssertEqual(w.lookup(d1, b)?.mfn, grantFrame)
        XCTAssertEqual(w.o.xenheapGFN(of: grantFrame), b)
        XCTAssertEqual(w.o.grantFrameGFN(d1, index: 0, status: false), b)
        XCTAssertNil(w.o.grantFrameGFN(d1, index: 0, status: true))
        XCTAssertNil(w.o.grantFrameGFN(d1, index: 1, status: false))
        XCTAssertEqual(w.o.state(of: unrelated)?.owner, .guest(d1))
    }

    /// Seed 001's review: mapping shared_info a second time is EBUSY, with no
    /// implicit unmap of the first mapping.
    func testSeed001SharedInfoMappedTwiceIsBusy() throws {
        var w = makeWorld()
        let c = GFN(raw: 0x300), d = GFN(raw: 0x301)
        _ = try w.o.addToPhysmap(d1, .sharedInfo, idx: 0, gfn: c)
        expectRefusal(.EBUSY(.xenheapAlreadyMapped(sharedInfo, at: c)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .sharedInfo, idx: 0, gfn: d)
        }
        XCTAssertEqual(w.lookup(d1, c)?.mfn, sharedInfo)
        XCTAssertNil(w.lookup(d1, d))
        // The same for a grant status frame.
        _ = try w.o.addToPhysmap(d1, .grantTable(index: 0, status: true), idx: 0, gfn: d)
        expectRefusal(.EBUSY(.xenheapAlreadyMapped(statusFrame, at: d)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .grantTable(index: 0, status: true), idx: 0, gfn: GFN(raw: 0x400))
        }
    }

    func testBadSpacesAreRefusedWithNothingChanged() throws {
        var w = makeWorld()
        expectRefusal(.EINVAL(.sharedInfoIndex(1)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .sharedInfo, idx: 1, gfn: GFN(raw: 5))
        }
        expectRefusal(.EINVAL(.grantFrameIndex(1, status: false)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .grantTable(index: 1, status: false), idx: 0, gfn: GFN(raw: 5))
        }
        expectRefusal(.EINVAL(.ramClaimedAsDevice(bank0.address)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .devMMIO, idx: bank0.raw, gfn: GFN(raw: 5))
        }
        expectRefusal(.ENOENT(.noSuchDomain(DomainID(9))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(DomainID(9), .sharedInfo, idx: 0, gfn: GFN(raw: 5))
        }
        expectRefusal(.ENOENT(.unmapped(d1, GFN(raw: 5))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.removePhysmap(self.d1, gfn: GFN(raw: 5))
        }
        expectRefusal(.EINVAL(.gfnOutOfRange(GFN(raw: 1 << 28))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .sharedInfo, idx: 0, gfn: GFN(raw: 1 << 28))
        }
        // Occupied destination: a xenheap frame is never mapped over something.
        try w.o.hostDonateToGuest(bank0, to: d1, at: GFN(raw: 6))
        expectRefusal(.EBUSY(.gfnOccupied(d1, GFN(raw: 6))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .sharedInfo, idx: 0, gfn: GFN(raw: 6))
        }
    }

    /// Whoever removes the entry (here the P2M's own teardown), the listener
    /// clears the GFN; and a xenheap frame allocated again starts invalid
    /// (PGT_TYPE_INFO_INITIALIZER).
    func testGFNClearedOnAnyRemovalAndInitialisedAtAllocation() throws {
        var w = makeWorld()
        _ = try w.o.addToPhysmap(d1, .sharedInfo, idx: 0, gfn: GFN(raw: 0x42))
        XCTAssertEqual(w.o.xenheapGFN(of: sharedInfo), GFN(raw: 0x42))
        var batch = w.o.newBatch()
        let domain = w.o.domains
        try domain[0].lock.withLock { (held: borrowing P2MLockHeld) throws(P2MFlushError) in
            while domain[0].p2m.relinquish(budget: 64, flushing: &batch, holding: held) == .more {}
            try domain[0].p2m.commit(&batch, holding: held)
        }
        XCTAssertNil(w.o.xenheapGFN(of: sharedInfo))

        // A frame carrying a GFN from an earlier life is reset when allocated.
        let f = bank0.adding(7)
        var stale = TypeInfo.initializer
        stale.xenheapGFN = GFN(raw: 0x99)
        XCTAssertTrue(w.o.frames.compareExchangeTypeInfo(at: w.o.frames.index(of: f)!, expected: .initializer, desired: stale))
        try w.o.allocateXenheapPage(f)
        XCTAssertEqual(w.o.typeInfo(of: f), .initializer)
    }

    func testShareXenPageTypesTheFrameAndKeepsItsGFNPortion() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        try w.o.allocateXenheapPage(bank0)
        try w.o.shareXenPageWithGuest(bank0, with: d1, readOnly: true)
        XCTAssertEqual(w.o.typeInfo(of: bank0)?.type, TypeInfo.PageType.none)
        XCTAssertEqual(w.o.typeInfo(of: bank0)?.typeCount, 1)
        XCTAssertNil(w.o.xenheapGFN(of: bank0))
        XCTAssertEqual(w.o.state(of: bank0),
                       FrameState(owner: .guest(d1), hostState: .noPage, references: 1, isAllocated: true, isXenheap: true))
        try w.o.allocateXenheapPage(bank0.adding(1))
        try w.o.installSharedInfo(bank0.adding(1), for: d1)
        expectRefusal(.EINVAL(.notXenheap(bank0.adding(2))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.installGrantFrame(bank0.adding(2), for: self.d1, status: false)
        }
        expectRefusal(.EEXIST(.sharedInfoInstalled(bank0.adding(1))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.installSharedInfo(bank0.adding(3), for: self.d1)
        }
    }

    /// The GFN is written only once the P2M entry exists: a P2M that cannot
    /// get a table page refuses, and the frame still has no GFN.
    func testGFNNotSetWhenTheP2MEntryCannotBeMade() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1), tablePages: 1)   // the root only
        try w.o.allocateXenheapPage(sharedInfo)
        try w.o.installSharedInfo(sharedInfo, for: d1)
        expectRefusal(.ENOMEM(.tablePages(GFN(raw: 0x42))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .sharedInfo, idx: 0, gfn: GFN(raw: 0x42))
        }
        XCTAssertNil(w.o.xenheapGFN(of: sharedInfo))
        expectRefusal(.ENOMEM(.tablePages(GFN(raw: 0x43))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostDonateToGuest(bank0, to: self.d1, at: GFN(raw: 0x43))
        }
    }
}
