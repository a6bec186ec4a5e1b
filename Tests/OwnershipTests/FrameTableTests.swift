import XCTest
import AArch64
import Translation
import HostFakes
@testable import Ownership

final class FrameTableTests: XCTestCase {
    func testEntryIsAtMostSixteenBytes() {
        XCTAssertLessThanOrEqual(FrameTable.bytesPerFrame, 16)
        XCTAssertEqual(MemoryLayout<FrameEntry>.size, 16)
    }

    /// A batch that never holds a reference allocates nothing; a range chunk's
    /// consecutive frames are held as one run and each still drops one
    /// reference at the release, in order.
    func testReleaserHoldsConsecutiveFramesAsOneRun() throws {
        let storage = try FrameTableStorage(banks: testBanks)
        let t = storage.table
        var releaser = FrameReferenceReleaser(frames: t)
        XCTAssertEqual(releaser.heldWords.capacity, 0, "nothing reserved before the first hold")
        let held = FrameState(owner: .guest(DomainID(1)), hostState: .noPage, references: 1)
        for i in 0..<16 { XCTAssertTrue(t.compareExchangeState(at: i, expected: .hostOwned, desired: held)) }
        for i in 0..<8 { releaser.hold(bank0.adding(UInt64(i)), count: 1) }
        releaser.hold(bank1, count: 2)          // bank1 does not follow bank0's last frame
        releaser.hold(bank1.adding(2), count: 6)
        XCTAssertEqual(releaser.held.map { $0.first }, [bank0, bank1])
        XCTAssertEqual(releaser.held.map { $0.count }, [8, 8])
        releaser.releaseHeld()
        for i in 0..<16 { XCTAssertEqual(t.state(at: i).references, 0) }
        XCTAssertEqual(releaser.dead, (0..<8).map { bank0.adding($0) } + (0..<8).map { bank1.adding($0) })
        XCTAssertTrue(releaser.held.isEmpty)
    }

    func testSparseBanksCostNothingForTheHole() throws {
        let storage = try FrameTableStorage(banks: testBanks)
        let t = storage.table
        XCTAssertEqual(t.frameCount, 16)
        XCTAssertEqual(t.index(of: bank0), 0)
        XCTAssertEqual(t.index(of: bank0.adding(7)), 7)
        XCTAssertEqual(t.index(of: bank1), 8)
        XCTAssertEqual(t.index(of: bank1.adding(7)), 15)
        XCTAssertNil(t.index(of: bank0.adding(8)))
        XCTAssertNil(t.index(of: bank1.adding(8)))
        XCTAssertNil(t.index(of: MFN(raw: bank0.raw - 1)))
        XCTAssertNil(t.index(of: deviceFrame))
        for i in 0..<t.frameCount { XCTAssertEqual(t.index(of: t.frame(at: i)), i) }
    }

    func testEveryFrameStartsHostOwnedWithInvalidGFN() throws {
        let storage = try FrameTableStorage(banks: testBanks)
        for i in 0..<storage.table.frameCount {
            XCTAssertEqual(storage.table.state(at: i), .hostOwned)
            XCTAssertEqual(storage.table.typeInfo(at: i), .initializer)
        }
    }

    /// Banks in any order are laid out by base (the table sorts them itself),
    /// and an overlap is found between neighbours in that order, whatever the
    /// order they were given in.
    func testBanksAreSortedByBase() throws {
        let page = PageSize.bytes4K
        let low = MemoryBank(base: PhysAddr(0x4000_0000), bytes: 2 * page)
        let middle = MemoryBank(base: PhysAddr(0x8000_0000), bytes: 3 * page)
        let high = MemoryBank(base: PhysAddr(0x1_0000_0000), bytes: page)
        for banks in [[high, low, middle], [middle, high, low], [high, middle, low]] {
            let storage = try FrameTableStorage(banks: banks)
            let t = storage.table
            XCTAssertEqual(t.frameCount, 6)
            XCTAssertEqual(t.index(of: low.firstFrame), 0)
            XCTAssertEqual(t.index(of: low.firstFrame.adding(1)), 1)
            XCTAssertEqual(t.index(of: middle.firstFrame), 2)
            XCTAssertEqual(t.index(of: middle.firstFrame.adding(2)), 4)
            XCTAssertEqual(t.index(of: high.firstFrame), 5)
            XCTAssertNil(t.index(of: low.firstFrame.adding(2)))
            XCTAssertEqual((0..<6).map { t.frame(at: $0) },
                           [low.firstFrame, low.firstFrame.adding(1), middle.firstFrame, middle.firstFrame.adding(1),
                            middle.firstFrame.adding(2), high.firstFrame])
        }
        let overlapping = MemoryBank(base: PhysAddr(0x8000_2000), bytes: 2 * page)
        do {
            _ = try FrameTableStorage(banks: [overlapping, high, low, middle])
            XCTFail("accepted an overlap given out of order")
        } catch {
            XCTAssertEqual(error, .EINVAL(.bankOverlap(PhysAddr(0x8000_2000))))
        }
    }

    func testMalformedBanksAreRefused() {
        let page = PageSize.bytes4K
        let cases: [([MemoryBank], OwnershipError)] = [
            ([MemoryBank(base: PhysAddr(0x4000_0800), bytes: page)], .EINVAL(.bankMisaligned(PhysAddr(0x4000_0800), bytes: page))),
            ([MemoryBank(base: PhysAddr(0x4000_0000), bytes: 0x800)], .EINVAL(.bankMisaligned(PhysAddr(0x4000_0000), bytes: 0x800))),
            ([MemoryBank(base: PhysAddr(0x4000_0000), bytes: 0)], .EINVAL(.bankMisaligned(PhysAddr(0x4000_0000), bytes: 0))),
            ([MemoryBank(base: PhysAddr(0x4000_0000), bytes: 4 * page),
              MemoryBank(base: PhysAddr(0x4000_2000), bytes: page)], .EINVAL(.bankOverlap(PhysAddr(0x4000_2000)))),
        ]
        for (banks, expected) in cases {
            do {
                _ = try FrameTableStorage(banks: banks)
                XCTFail("accepted \(banks)")
            } catch {
                XCTAssertEqual(error, expected)
            }
        }
    }

    /// The banks may come in any order (firmware lists them as it likes): the
    /// table lays them out by address, and an overlap is reported at the
    /// higher of the two banks whichever order they were given in.
    func testBanksInAnyOrderAreLaidOutByAddress() throws {
        let page = PageSize.bytes4K
        var rng = SplitMix64(seed: 12)
        for round in 0..<200 {
            // Up to 12 disjoint banks of 1-4 pages with gaps of 0-2 pages.
            var model: [MemoryBank] = []
            var next: UInt64 = 0x4000_0000
            for _ in 0..<(1 + Int(rng.next() % 12)) {
                next += (rng.next() % 3) * page
                let bytes = (1 + rng.next() % 4) * page
                model.append(MemoryBank(base: PhysAddr(next), bytes: bytes))
                next += bytes
            }
            var given = model
            if round % 4 == 0 { given.reverse() } else if round % 4 != 1 { given.shuffle(using: &rng) }
            let storage = try FrameTableStorage(banks: given)
            let t = storage.table
            var index = 0
            for bank in model {
                for f in 0..<bank.frameCount {
                    XCTAssertEqual(t.frame(at: index), bank.firstFrame.adding(f))
                    XCTAssertEqual(t.index(of: bank.firstFrame.adding(f)), index)
                    index += 1
                }
            }
            XCTAssertEqual(t.frameCount, index)
        }
        let low = MemoryBank(base: PhysAddr(0x4000_0000), bytes: 4 * page)
        let high = MemoryBank(base: PhysAddr(0x4000_3000), bytes: page)
        let far = MemoryBank(base: PhysAddr(0x8000_0000), bytes: page)
        for banks in [[low, high, far], [far, high, low], [high, far, low]] {
            do {
                _ = try FrameTableStorage(banks: banks)
                XCTFail("accepted \(banks)")
            } catch {
                XCTAssertEqual(error, .EINVAL(.bankOverlap(PhysAddr(0x4000_3000))))
            }
        }
    }

    func testCompareExchangeRefusesAStaleExpectation() throws {
        let storage = try FrameTableStorage(banks: testBanks)
        let t = storage.table
        let shared = FrameState(owner: .host, hostState: .sharedOwned, borrower: .hypervisor)
        XCTAssertTrue(t.compareExchangeState(at: 3, expected: .hostOwned, desired: shared))
        XCTAssertFalse(t.compareExchangeState(at: 3, expected: .hostOwned, desired: .hostOwned))
        XCTAssertEqual(t.state(at: 3), shared)
        var g = TypeInfo.initializer
        g.xenheapGFN = GFN(raw: 9)
        XCTAssertTrue(t.compareExchangeTypeInfo(at: 3, expected: .initializer, desired: g))
        XCTAssertFalse(t.compareExchangeTypeInfo(at: 3, expected: .initializer, desired: .initializer))
        XCTAssertEqual(t.typeInfo(at: 3).xenheapGFN, GFN(raw: 9))
    }
}

/// A P2M without a frame table (the board's device and host stage-2 P2Ms share
/// the ownership P2M's type): `FrameEntryListener()` and `FrameReferenceReleaser()`.
final class NoFrameTableTests: XCTestCase {
    /// RAM mapped, replaced and unmapped through it commits with nothing held
    /// or dead and no frame state touched (its frames are in the world's table,
    /// which it does not report to).
    func testRAMRemovalsNeedNoFrameTable() throws {
        var w = World()
        let before = w.snapshot()
        let memory = SparseMemory(ram: w.ram)
        var p2m = try TestP2M(configuration: P2MConfiguration(vmid: 9, ipaBits: 39, paRange: .bits40, vmidWidth: .bits8),
                              memory: memory, pool: FreeListPool(memory: memory, first: MFN(raw: 0x20_0000), count: 8),
                              tlb: RecordingTLB(log: w.log), iommu: RecordingIOMMU(log: w.log),
                              listener: FrameEntryListener(), observer: NoChangeObserver())
        XCTAssertNil(p2m.reportsTo)
        var batch = FlushBatch(releaser: FrameReferenceReleaser())
        try p2m.map(GFN(raw: 0x10), to: bank0, count: 1, as: .ramRW, flushing: &batch, holding: lockHeld)
        try p2m.map(GFN(raw: 0x10), to: bank1, count: 1, as: .ramRO, policy: .replace, flushing: &batch, holding: lockHeld)
        try p2m.unmap(GFN(raw: 0x10), count: 1, flushing: &batch, holding: lockHeld)
        let _: FlushStatistics = try p2m.commit(&batch, holding: lockHeld)
        XCTAssertTrue(batch.releaser.held.isEmpty)
        XCTAssertTrue(batch.releaser.dead.isEmpty)
        XCTAssertEqual(w.o.frames.snapshot(), before.frames)
    }
}
