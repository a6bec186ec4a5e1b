import XCTest
import AArch64
import Translation
import HostFakes
@testable import Ownership

final class GmfnRangeMoveTests: XCTestCase {
    let d1 = DomainID(1)

    /// Whether the log holds a CPU and an IOMMU invalidation covering `gfn` (or the whole VMID).
    func invalidated(_ gfn: GFN, in events: ArraySlice<EventLog.Event>) -> (cpu: Bool, iommu: Bool) {
        var cpu = false, iommu = false
        for e in events {
            switch e {
            case .tlbiRange(_, let page, let n): if gfn.raw >= page && gfn.raw < page + n { cpu = true }
            case .tlbiVMID: cpu = true
            case .iommuRange(_, let page, let n): if gfn.raw >= page && gfn.raw < page + n { iommu = true }
            case .iommuAll: iommu = true
            default: break
            }
        }
        return (cpu, iommu)
    }

    /// Seed 000 (XSA-346 part 2): a frame moved by gmfn_range, whose flush for
    /// its original GFN is deferred to the end of the chunk, is removed at its
    /// new GFN by a parallel decrease_reservation. That removal flushes only
    /// the new GFN. Before the fix the frame was freed then, while the IOMMU
    /// could still translate the old GFN to it. Now the chunk holds a
    /// reference: the frame is freed only after the old GFN's flush completed.
    func testSeed000RangeMoveRacingRemovalDoesNotFreeBeforeFlush() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1, iommuEnabled: true))
        let frame = bank0.adding(2)
        let old = GFN(raw: 0x10), new = GFN(raw: 0x20)
        try w.o.hostDonateToGuest(frame, to: d1, at: old)
        try w.o.hostDonateToGuest(bank0.adding(3), to: d1, at: old.adding(1))

        var move = try w.o.beginGmfnRange(d1, idx: old, gfn: new, size: 2)
        XCTAssertTrue(try w.o.moveNextFrame(&move))
        XCTAssertEqual(w.lookup(d1, new)?.mfn, frame)
        XCTAssertNil(w.lookup(d1, old))
        XCTAssertEqual(move.heldReferences, 1)
        XCTAssertFalse(invalidated(old, in: w.log.events[...]).cpu, "the old GFN's flush is deferred")

        // The racing removal at the new GFN: flushes the new GFN, drops the
        // allocation, but the frame stays held.
        let mark = w.log.events.count
        try w.o.reclaim(d1, gfn: new)
        XCTAssertTrue(invalidated(new, in: w.log.events[mark...]) == (true, true))
        XCTAssertFalse(invalidated(old, in: w.log.events[...]).iommu)
        XCTAssertEqual(w.o.state(of: frame),
                       FrameState(owner: .guest(d1), hostState: .noPage, references: 1),
                       "freed while the IOMMU may still translate the old GFN")

        XCTAssertTrue(try w.o.moveNextFrame(&move))
        XCTAssertFalse(try w.o.moveNextFrame(&move), "range done")
        let beforeFlush = w.log.events.count
        let progress = w.o.finishChunk(move)
        XCTAssertEqual(progress, .complete)
        XCTAssertTrue(invalidated(old, in: w.log.events[beforeFlush...]) == (true, true))
        XCTAssertEqual(w.o.state(of: frame), .hostOwned, "returned to the host after the flush")
        XCTAssertEqual(w.o.state(of: bank0.adding(3))?.references, 1, "the other moved frame keeps only its owner's reference")
        XCTAssertEqual(w.lookup(d1, new.adding(1))?.mfn, bank0.adding(3))
    }

    /// Seed 000 with a lost IOMMU completion: the chunk's deferred flush for the
    /// old GFNs is not confirmed, so the moved frame, already given up at its
    /// new GFN by a racing removal, must still not be freed; the domain keeps
    /// the reference until a retried flush completes.
    func testSeed000ChunkFlushTheIOMMUDidNotConfirmKeepsTheFrame() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1, iommuEnabled: true))
        let frame = bank0.adding(2)
        let old = GFN(raw: 0x10), new = GFN(raw: 0x20)
        try w.o.hostDonateToGuest(frame, to: d1, at: old)
        var move = try w.o.beginGmfnRange(d1, idx: old, gfn: new, size: 1)
        XCTAssertTrue(try w.o.moveNextFrame(&move))
        try w.o.reclaim(d1, gfn: new)
        let held = FrameState(owner: .guest(d1), hostState: .noPage, references: 1)
        XCTAssertEqual(w.o.state(of: frame), held)

        w.log.failingIOMMUSyncs = 1
        let progress = w.o.finishChunk(move)
        XCTAssertEqual(progress, .complete)
        XCTAssertEqual(w.o.state(of: frame), held, "freed although the IOMMU may still translate the old GFN")
        XCTAssertEqual(w.o.withDomain(d1) { (d: borrowing GuestDomain<TestP2M>) in d.owesFlush }, true)

        let mark = w.log.events.count
        XCTAssertTrue(try w.o.retryFlush(d1))
        XCTAssertTrue(invalidated(old, in: w.log.events[mark...]) == (true, true))
        XCTAssertEqual(w.o.state(of: frame), .hostOwned)
    }

    /// Seed 000 (XSA-346 part 1): moving onto a populated GFN displaces and
    /// frees the frame there. That removal's flush is never deferred: the frame
    /// is back with the host only after its translation was invalidated, inside
    /// the same step, while the moved frame's old GFN is still pending.
    func testSeed000DisplacedFrameIsFlushedBeforeItIsFreed() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1, iommuEnabled: true))
        let moved = bank0, displaced = bank0.adding(1)
        let src = GFN(raw: 0x10), dst = GFN(raw: 0x20)
        try w.o.hostDonateToGuest(moved, to: d1, at: src)
        try w.o.hostDonateToGuest(displaced, to: d1, at: dst)
        var move = try w.o.beginGmfnRange(d1, idx: src, gfn: dst, size: 1)
        let mark = w.log.events.count
        XCTAssertTrue(try w.o.moveNextFrame(&move))
        XCTAssertTrue(invalidated(dst, in: w.log.events[mark...]) == (true, true))
        XCTAssertEqual(w.o.state(of: displaced), .hostOwned)
        XCTAssertFalse(invalidated(src, in: w.log.events[mark...]).cpu)
        let progress = w.o.finishChunk(move)
        XCTAssertEqual(progress, .complete)
        XCTAssertEqual(w.lookup(d1, dst)?.mfn, moved)
        XCTAssertEqual(w.o.state(of: moved)?.references, 1)
    }

    /// References are held per chunk of 16, with a continuation between chunks.
    func testChunksOfSixteenWithContinuation() throws {
        var w = World(banks: [MemoryBank(base: PhysAddr(0x4000_0000), bytes: 64 * PageSize.bytes4K)])
        w.addDomain(DomainConfig(id: d1), tablePages: 32)
        for i in 0..<UInt64(40) { try w.o.hostDonateToGuest(bank0.adding(i), to: d1, at: GFN(raw: 0x100 + i)) }
        var idx: UInt64 = 0x100, gfn = GFN(raw: 0x1000), size: UInt64 = 40
        var results: [PhysmapProgress] = []
        while true {
            var move = try w.o.beginGmfnRange(d1, idx: GFN(raw: idx), gfn: gfn, size: size)
            while try w.o.moveNextFrame(&move) {}
            XCTAssertLessThanOrEqual(move.heldReferences, 16)
            let progress = w.o.finishChunk(move)
            results.append(progress)
            guard case .continuation(let done) = progress else { break }
            idx += done
            gfn = gfn.adding(done)
            size -= done
        }
        XCTAssertEqual(results, [.continuation(done: 16), .continuation(done: 16), .complete])
        for i in 0..<UInt64(40) {
            XCTAssertEqual(w.lookup(d1, GFN(raw: 0x1000 + i))?.mfn, bank0.adding(i))
            XCTAssertNil(w.lookup(d1, GFN(raw: 0x100 + i)))
            XCTAssertEqual(w.o.state(of: bank0.adding(i))?.references, 1)
        }
        // And through add_to_physmap, one chunk per call.
        XCTAssertEqual(try w.o.addToPhysmap(d1, .gmfnRange(size: 20), idx: 0x1000, gfn: GFN(raw: 0x2000)),
                       .continuation(done: 16))
    }

    func testBadMovesChangeNothing() throws {
        var w = World()
        w.addDomain(DomainConfig(id: d1))
        w.addDomain(DomainConfig(id: DomainID(2)))
        try w.o.hostDonateToGuest(bank0, to: d1, at: GFN(raw: 1))
        try w.o.hostDonateToGuest(bank0.adding(1), to: DomainID(2), at: GFN(raw: 2))
        try w.o.allocateXenheapPage(bank1)
        try w.o.installSharedInfo(bank1, for: d1)
        _ = try w.o.addToPhysmap(d1, .sharedInfo, idx: 0, gfn: GFN(raw: 3))
        expectRefusal(.ENOENT(.unmapped(d1, GFN(raw: 2))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .gmfn, idx: 2, gfn: GFN(raw: 9))
        }
        expectRefusal(.EINVAL(.notGuestRAM(d1, GFN(raw: 3))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .gmfn, idx: 3, gfn: GFN(raw: 9))
        }
        expectRefusal(.EBUSY(.gfnOccupied(d1, GFN(raw: 3))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .gmfn, idx: 1, gfn: GFN(raw: 3))
        }
        expectRefusal(.EINVAL(.rangeEmpty), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .gmfnRange(size: 0), idx: 1, gfn: GFN(raw: 9))
        }
        expectRefusal(.EINVAL(.gfnOutOfRange(GFN(raw: 1 << 30))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .gmfn, idx: 1, gfn: GFN(raw: 1 << 30))
        }
        // A failure after progress returns the progress; the retry fails cleanly.
        XCTAssertEqual(try w.o.addToPhysmap(d1, .gmfnRange(size: 2), idx: 1, gfn: GFN(raw: 0x40)), .continuation(done: 1))
        expectRefusal(.ENOENT(.unmapped(d1, GFN(raw: 2))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            _ = try o.addToPhysmap(self.d1, .gmfnRange(size: 1), idx: 2, gfn: GFN(raw: 0x41))
        }
    }
}
