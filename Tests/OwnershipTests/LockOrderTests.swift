import XCTest
import Synchronization
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
        XCTAssertEqual(locks.held, 0)

        locks.acquire(.domainPages)
        XCTAssertFalse(locks.mayAcquire(.p2m), "P2M lock under the page lock")
        locks.release(.domainPages)
    }

    /// The page lock a set is bound to is really taken: another set bound to
    /// it cannot get it until the first lets go, and releasing frees it.
    func testDomainPageLockExcludes() {
        let o = makeOwnership()
        var a = o.lockSet(), b = o.lockSet()
        a.acquire(.domainPages)
        XCTAssertTrue(o.isPageLockHeld)
        XCTAssertFalse(o.pageLock.word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged,
                       "a second holder got the page lock")
        a.release(.domainPages)
        XCTAssertFalse(o.isPageLockHeld)
        b.acquire(.domainPages)
        XCTAssertTrue(o.isPageLockHeld)
        b.release(.domainPages)
        XCTAssertFalse(o.isPageLockHeld)
    }

    /// Threads that each add to a plain counter inside the page lock lose no
    /// update, and never find another thread inside: the lock is the only
    /// thing ordering them. (The section lingers a little so that, without
    /// the lock, two threads running at once would meet in it.)
    func testDomainPageLockSerialisesThreads() {
        final class Section: @unchecked Sendable {
            let occupants = Atomic<Int>(0)
            let meetings = Atomic<Int>(0)
            var counter = 0
        }
        let o = makeOwnership()
        let lock = o.pageLock
        let section = Section()
        let threads = 4, rounds = 100_000
        onThreads(threads) { _ in
            var locks = LockSet(pages: lock)
            for _ in 0..<rounds {
                locks.acquire(.domainPages)
                if section.occupants.add(1, ordering: .relaxed).newValue > 1 {
                    section.meetings.add(1, ordering: .relaxed)
                }
                let seen = section.counter
                var linger = 0
                for _ in 0..<32 { linger &+= section.occupants.load(ordering: .relaxed) }
                section.counter = seen + (linger > 0 ? 1 : 0)
                section.occupants.subtract(1, ordering: .relaxed)
                locks.release(.domainPages)
            }
        }
        XCTAssertEqual(section.meetings.load(ordering: .relaxed), 0, "two threads inside the page lock at once")
        XCTAssertEqual(section.counter, threads * rounds)
    }

    func testRanksArePinned() {
        XCTAssertEqual(LockRank.allCases.map(\.rawValue), [1, 2])
        XCTAssertEqual(LockSet.bit(.p2m), 0b010)
        XCTAssertEqual(LockSet.bit(.domainPages), 0b100)
    }
}
