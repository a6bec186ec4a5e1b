import XCTest
import AArch64
@testable import Ownership

final class FrameTableTests: XCTestCase {
    func testEntryIsAtMostSixteenBytes() {
        XCTAssertLessThanOrEqual(FrameTable.bytesPerFrame, 16)
        XCTAssertEqual(MemoryLayout<FrameEntry>.size, 16)
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
