import XCTest
@testable import Ownership

final class LockOrderTests: XCTestCase {
    /// P2M lock before the domain page lock, never the other way, never two P2M locks.
    func testOrderIsP2MThenDomainPages() {
        var locks = LockSet()
        XCTAssertTrue(locks.mayAcquire(.p2m))
        XCTAssertTrue(locks.mayAcquire(.domainPages))
        locks.acquire(.p2m)
        XCTAssertTrue(locks.holds(.p2m))
        XCTAssertFalse(locks.mayAcquire(.p2m), "a second P2M lock")
        XCTAssertTrue(locks.mayAcquire(.domainPages))
        locks.acquire(.domainPages)
        XCTAssertFalse(locks.mayAcquire(.p2m))
        XCTAssertFalse(locks.mayAcquire(.domainPages))
        locks.release(.domainPages)
        locks.release(.p2m)
        XCTAssertEqual(locks, LockSet())

        locks.acquire(.domainPages)
        XCTAssertFalse(locks.mayAcquire(.p2m), "P2M lock under the page lock")
        locks.release(.domainPages)
    }

    func testRanksArePinned() {
        XCTAssertEqual(LockRank.allCases.map(\.rawValue), [1, 2])
        XCTAssertEqual(LockSet.bit(.p2m), 0b010)
        XCTAssertEqual(LockSet.bit(.domainPages), 0b100)
    }
}
