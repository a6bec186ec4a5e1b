import XCTest
import Synchronization
import AArch64
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
        let pages = locks.acquirePages()
        XCTAssertFalse(locks.mayAcquire(.p2m))
        XCTAssertFalse(locks.mayAcquire(.domainPages))
        locks.releasePages(pages)
        locks.release(.p2m)
        XCTAssertEqual(locks.held, 0)

        locks.withPages { (_: borrowing PageStateLockHeld, locks: inout LockSet) in
            XCTAssertFalse(locks.mayAcquire(.p2m), "P2M lock under the page lock")
        }
    }

    /// The page lock a set is bound to is really taken: another set bound to
    /// it cannot get it until the first lets go, and releasing frees it.
    func testDomainPageLockExcludes() {
        let o = makeOwnership()
        var a = o.lockSet(), b = o.lockSet()
        let heldByA = a.acquirePages()
        XCTAssertTrue(o.isPageLockHeld)
        XCTAssertFalse(o.pageLock.word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged,
                       "a second holder got the page lock")
        a.releasePages(heldByA)
        XCTAssertFalse(o.isPageLockHeld)
        let heldByB = b.acquirePages()
        XCTAssertTrue(o.isPageLockHeld)
        b.releasePages(heldByB)
        XCTAssertFalse(o.isPageLockHeld)
    }

    /// `withPages` holds the page lock (and its rank) for exactly the body:
    /// released when the body returns, and released when it throws, the
    /// error reaching the caller unchanged.
    func testWithPagesReleasesOnSuccessAndOnThrow() {
        struct Refused: Error, Equatable { let code: Int }
        let o = makeOwnership()
        var locks = o.lockSet()

        let value = locks.withPages { (_: borrowing PageStateLockHeld, inner: inout LockSet) -> Int in
            XCTAssertTrue(o.isPageLockHeld, "body runs without the page lock")
            XCTAssertTrue(inner.holds(.domainPages))
            XCTAssertFalse(inner.mayAcquire(.p2m))
            return 7
        }
        XCTAssertEqual(value, 7)
        XCTAssertFalse(o.isPageLockHeld, "page lock still held after the body returned")
        XCTAssertEqual(locks.held, 0)

        var reached = false
        do {
            try locks.withPages { (_: borrowing PageStateLockHeld, inner: inout LockSet) throws(Refused) -> Void in
                XCTAssertTrue(o.isPageLockHeld)
                XCTAssertTrue(inner.holds(.domainPages))
                throw Refused(code: 22)
            }
            XCTFail("the body's error was swallowed")
        } catch {
            reached = true
            XCTAssertEqual(error, Refused(code: 22))
        }
        XCTAssertTrue(reached)
        XCTAssertFalse(o.isPageLockHeld, "page lock still held after the body threw")
        XCTAssertEqual(locks.held, 0)
    }

    /// An operation that throws from inside its page-lock scope (a DMA share
    /// refused at its second frame, rolled back) leaves the lock free, and
    /// one that succeeds does too.
    func testOperationsLeaveThePageLockFreeOnBothPaths() throws {
        var o = makeOwnership()
        let first = bank0
        try o.hostDonateToHypervisor(first.adding(1))
        XCTAssertFalse(o.isPageLockHeld)
        XCTAssertThrowsError(try o.hostShareDMA(first.address, bytes: 2 * PageSize.bytes4K, isRAM: true))
        XCTAssertFalse(o.isPageLockHeld, "a refused share left the page lock held")
        XCTAssertEqual(o.state(of: first)?.dmaShares, 0, "the refused share was not rolled back")
        try o.hostShareDMA(first.address, bytes: PageSize.bytes4K, isRAM: true)
        XCTAssertFalse(o.isPageLockHeld)
        XCTAssertEqual(o.state(of: first)?.dmaShares, 1)
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
                let pages = locks.acquirePages()
                if section.occupants.add(1, ordering: .relaxed).newValue > 1 {
                    section.meetings.add(1, ordering: .relaxed)
                }
                let seen = section.counter
                var linger = 0
                for _ in 0..<32 { linger &+= section.occupants.load(ordering: .relaxed) }
                section.counter = seen + (linger > 0 ? 1 : 0)
                section.occupants.subtract(1, ordering: .relaxed)
                locks.releasePages(pages)
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
