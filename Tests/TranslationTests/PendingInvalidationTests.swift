import XCTest
import AArch64
import HostFakes
@testable import Translation

final class PendingInvalidationTests: XCTestCase {
    /// The frames threaded onto the list, newest first, read back through the link
    /// words (each in its page's link entry); every link must read as an invalid
    /// descriptor (bit 0 clear).
    func threadedFrames(_ pending: borrowing PendingInvalidation, memory: FakeMemory) -> [UInt64] {
        var frames: [UInt64] = []
        var next = pending.unlinkedHead, entry = pending.unlinkedHeadEntry
        while next != PendingInvalidation.endOfList {
            let link = memory.load64(PendingInvalidation.linkAddress(MFN(raw: next), entry))
            XCTAssertEqual(link & 1, 0, "a link must read as an invalid descriptor")
            frames.append(next)
            (next, entry) = PendingInvalidation.successor(link)
        }
        return frames
    }

    func testRangesAreMergedAndDegradeToEverything() {
        var pending = PendingInvalidation()
        XCTAssertTrue(pending.isEmpty)
        pending.recordInvalidation(0x40, frames: 2)
        pending.recordInvalidation(0x42, frames: 3)
        XCTAssertEqual(pending.ranges.count, 1)
        XCTAssertEqual(pending.ranges.pages, 5)
        XCTAssertFalse(pending.isEmpty)
        pending.recordInvalidationOfEverything()
        XCTAssertTrue(pending.ranges.coversEverything)
        pending.rangesInvalidated()
        XCTAssertTrue(pending.isEmpty)
    }

    func testUnlinkedPagesAreThreadedThroughInvalidFirstWordsAndKeepTheRest() {
        let memory = FakeMemory(frames: 4)
        var pending = PendingInvalidation()
        for f in memory.baseFrame..<memory.baseFrame + 3 {
            memory.store64(MFN(raw: f).address, 0x4000_0000_0703)   // a valid descriptor, overwritten by the link
            memory.store64(MFN(raw: f).address.adding(8), 0xFFF)   // a valid entry stays intact
            pending.recordUnlinkedTable(MFN(raw: f), memory: memory)
        }
        XCTAssertEqual(pending.unlinkedTablePages, 3)
        XCTAssertEqual(threadedFrames(pending, memory: memory),
                       [memory.baseFrame + 2, memory.baseFrame + 1, memory.baseFrame])
        for f in memory.baseFrame..<memory.baseFrame + 3 {
            XCTAssertEqual(memory.load64(MFN(raw: f).address.adding(8)), 0xFFF)
        }
        var pool = FakePool(memory: memory, pages: 0)
        XCTAssertEqual(pending.releaseUnlinkedTables(to: &pool, memory: memory), 3)
    }

    /// A page's link goes into the entry its unlinker names (one it had just
    /// cleared, so its cache line is hot), and every other entry, entry 0
    /// included, stays as it was; the list still reads back and releases whole,
    /// also after another list absorbed it.
    func testALinkGoesIntoTheNamedEntryAndTheListStillWalks() {
        let memory = FakeMemory(frames: 8)
        var pending = PendingInvalidation()
        let entries = [5, 0, 511]
        for (i, entry) in entries.enumerated() {
            let page = MFN(raw: memory.baseFrame + UInt64(i))
            memory.store64(page.address, 0x4000_0000_0703)
            pending.recordUnlinkedTable(page, entry: entry, memory: memory)
        }
        XCTAssertEqual(threadedFrames(pending, memory: memory),
                       [memory.baseFrame + 2, memory.baseFrame + 1, memory.baseFrame])
        XCTAssertEqual(memory.load64(MFN(raw: memory.baseFrame).address), 0x4000_0000_0703, "entry 0 kept")
        XCTAssertEqual(memory.load64(MFN(raw: memory.baseFrame + 2).address), 0x4000_0000_0703, "entry 0 kept")
        // The first page recorded ends the list: its link entry (5) reads 0.
        XCTAssertEqual(memory.load64(MFN(raw: memory.baseFrame).address.adding(5 * 8)), 0)
        var other = PendingInvalidation()
        other.recordUnlinkedTable(MFN(raw: memory.baseFrame + 3), entry: 77, memory: memory)
        other.absorb(&pending, memory: memory)
        XCTAssertEqual(Set(threadedFrames(other, memory: memory)), Set((0..<4).map { memory.baseFrame + $0 }))
        var pool = FakePool(memory: memory, pages: 0)
        XCTAssertEqual(other.releaseUnlinkedTables(to: &pool, memory: memory), 4)
        XCTAssertEqual(pool.availableTablePages, 4)
    }

    /// Seed 000 / XSA-346: nothing goes back to the pool while a range is owed, and
    /// after the release every page is back exactly once and the list is empty.
    func testPagesGoBackOnlyAfterTheRangesAreInvalidated() {
        let memory = FakeMemory(frames: 8)
        var pool = FakePool(memory: memory)
        var pending = PendingInvalidation()
        let pages = (0..<3).map { _ in pool.allocateTablePage()! }
        for page in pages { pending.recordUnlinkedTable(page, memory: memory) }
        pending.recordInvalidation(0x1000, frames: 1)
        XCTAssertEqual(pool.availableTablePages, 5, "recording frees nothing")
        pending.rangesInvalidated()
        XCTAssertEqual(pool.availableTablePages, 5, "invalidating frees nothing by itself")
        XCTAssertEqual(pending.unlinkedTablePages, 3)
        XCTAssertEqual(pending.releaseUnlinkedTables(to: &pool, memory: memory), 3)
        XCTAssertEqual(pool.availableTablePages, 8)
        XCTAssertTrue(pending.isEmpty)
        XCTAssertEqual(pending.releaseUnlinkedTables(to: &pool, memory: memory), 0, "a second release frees nothing")
        XCTAssertEqual(pool.availableTablePages, 8)
    }

    func testAbsorbTakesOverRangesAndPages() {
        let memory = FakeMemory(frames: 8)
        var pool = FakePool(memory: memory)
        var kept = PendingInvalidation(), failed = PendingInvalidation()
        kept.recordUnlinkedTable(pool.allocateTablePage()!, memory: memory)
        kept.recordInvalidation(0x10, frames: 1)
        failed.recordUnlinkedTable(pool.allocateTablePage()!, memory: memory)
        failed.recordUnlinkedTable(pool.allocateTablePage()!, memory: memory)
        failed.recordInvalidation(0x200, frames: 4)
        kept.absorb(&failed, memory: memory)
        XCTAssertTrue(failed.isEmpty)
        XCTAssertEqual(kept.unlinkedTablePages, 3)
        XCTAssertEqual(threadedFrames(kept, memory: memory).count, 3)
        XCTAssertEqual(kept.ranges.count, 2)
        XCTAssertEqual(kept.ranges.pages, 5)
        kept.rangesInvalidated()
        XCTAssertEqual(kept.releaseUnlinkedTables(to: &pool, memory: memory), 3)
        XCTAssertEqual(pool.availableTablePages, 8)
    }

    /// An emptied page collects the frames of the pages unlinked after it in its
    /// entries 1-511, in order, and those pages are not written at all; a full
    /// collecting page sends the next page back to a link of its own, until an
    /// emptied page starts the next collection. Every word written reads as an
    /// invalid descriptor, and the release gives every page back exactly once.
    func testAnEmptiedPageCollectsTheFramesOfTheNextPages() {
        let memory = FakeMemory(frames: 520)
        var pool = FakePool(memory: memory)
        let pages = (0..<515).map { _ in pool.allocateTablePage()! }
        let collecting = pages[0], collectedPages = pages[1...511]
        let linked = pages[512], second = pages[513], last = pages[514]
        for page in collectedPages {
            memory.store64(page.address, 0x4000_0000_0703)   // valid entries a stale walker may still read
            memory.store64(page.address.adding(8 * 9), 0xFFF)
        }
        memory.store64(linked.address.adding(8 * 9), 0x4000_0000_0703)
        var pending = PendingInvalidation()
        pending.recordUnlinkedTable(collecting, entry: 7, emptied: true, memory: memory)
        let storesBefore = memory.stores
        for page in collectedPages { pending.recordUnlinkedTable(page, entry: 9, memory: memory) }
        XCTAssertEqual(memory.stores - storesBefore, 511, "one store per collected frame, into the collecting page")
        for (slot, page) in zip(1..., collectedPages) {
            let word = memory.load64(collecting.address.adding(UInt64(slot) * 8))
            XCTAssertEqual(word & 1, 0, "a collected frame must read as an invalid descriptor")
            XCTAssertEqual(word >> 12, page.raw)
            XCTAssertEqual(memory.load64(page.address), 0x4000_0000_0703, "a collected page is not written")
            XCTAssertEqual(memory.load64(page.address.adding(8 * 9)), 0xFFF, "a collected page is not written")
        }
        // The collecting page is full: the next page carries its own link (in the
        // entry its unlinker names), and the next emptied page collects again.
        pending.recordUnlinkedTable(linked, entry: 9, memory: memory)
        XCTAssertEqual(memory.load64(linked.address.adding(8 * 9)) & 1, 0)
        pending.recordUnlinkedTable(second, entry: 3, emptied: true, memory: memory)
        pending.recordUnlinkedTable(last, entry: 4, memory: memory)
        XCTAssertEqual(memory.load64(second.address.adding(8)) >> 12, last.raw)
        XCTAssertEqual(threadedFrames(pending, memory: memory), [second.raw, linked.raw, collecting.raw])
        XCTAssertEqual(pending.unlinkedTablePages, 515)
        XCTAssertEqual(pool.availableTablePages, 5)
        XCTAssertEqual(pending.releaseUnlinkedTables(to: &pool, memory: memory), 515)
        XCTAssertEqual(pool.availableTablePages, 520, "every page back exactly once (a second free traps)")
        XCTAssertTrue(pending.isEmpty)
        // The list is empty again: the next emptied page starts a new collection.
        let again = (0..<2).map { _ in pool.allocateTablePage()! }
        pending.recordUnlinkedTable(again[0], emptied: true, memory: memory)
        pending.recordUnlinkedTable(again[1], emptied: true, memory: memory)
        XCTAssertEqual(memory.load64(again[0].address.adding(8)) >> 12, again[1].raw)
        XCTAssertEqual(pending.releaseUnlinkedTables(to: &pool, memory: memory), 2)
        XCTAssertEqual(pool.availableTablePages, 520)
    }

    /// Absorbing a list with a partly filled collecting page (and one whose
    /// collecting page is full) keeps every page: each is given back once.
    func testAbsorbKeepsTheCollectedFrames() {
        let memory = FakeMemory(frames: 1100)
        var pool = FakePool(memory: memory)
        var kept = PendingInvalidation(), failed = PendingInvalidation()
        kept.recordUnlinkedTable(pool.allocateTablePage()!, emptied: true, memory: memory)
        for _ in 0..<20 { kept.recordUnlinkedTable(pool.allocateTablePage()!, memory: memory) }
        failed.recordUnlinkedTable(pool.allocateTablePage()!, emptied: true, memory: memory)
        for _ in 0..<600 { failed.recordUnlinkedTable(pool.allocateTablePage()!, entry: 2, memory: memory) }
        failed.recordUnlinkedTable(pool.allocateTablePage()!, emptied: true, memory: memory)
        for _ in 0..<30 { failed.recordUnlinkedTable(pool.allocateTablePage()!, memory: memory) }
        XCTAssertEqual(pool.availableTablePages, 1100 - 653)
        kept.absorb(&failed, memory: memory)
        XCTAssertTrue(failed.isEmpty)
        XCTAssertEqual(kept.unlinkedTablePages, 653)
        XCTAssertEqual(kept.releaseUnlinkedTables(to: &pool, memory: memory), 653)
        XCTAssertEqual(pool.availableTablePages, 1100)
    }
}
