import XCTest
import AArch64
@testable import Ownership

final class CacheCoherenceTests: XCTestCase {
    let page = PageSize.bytes4K

    /// Seed 003's five steps, with the host's DMA domains as vfio's domains:
    /// 1. the page is mapped into a coherent domain;
    /// 2. it is mapped into a non-coherent domain;
    /// 3. it is unmapped from the non-coherent domain (hot-unplug);
    /// 4. it is unmapped from the coherent domain;
    /// 5. it is unpinned.
    /// The cache is flushed exactly before step 2 and before step 5.
    func testSeed003FiveStepExampleFlushesBeforeStep2AndStep5() throws {
        var o = makeOwnership()
        let f = bank0.adding(4)
        // 1. A coherent domain is attached and the page pinned+mapped for DMA.
        try o.attachHostDMADomain(DMADomain(id: 1, enforcesCacheCoherency: true))
        try o.hostShareDMA(f.address, bytes: page, isRAM: true)
        XCTAssertEqual(o.cache.ops, [], "step 1 flushed")
        // 2. Attaching a non-coherent domain replays the mapping into it: flush first.
        try o.attachHostDMADomain(DMADomain(id: 2, enforcesCacheCoherency: false))
        XCTAssertEqual(o.cache.ops, [.cleanAndInvalidate(f.address, page), .sync])
        XCTAssertEqual(o.state(of: f)?.cacheFlushRequired, true)
        // 3. and 4. Unmapping from either domain does no maintenance.
        try o.detachHostDMADomain(id: 2)
        try o.detachHostDMADomain(id: 1)
        XCTAssertEqual(o.cache.ops.count, 2, "an unmap flushed")
        // 5. The unpin flushes, lazily, and clears the mark.
        try o.hostUnshareDMA(f.address, bytes: page)
        XCTAssertEqual(o.cache.ops, [.cleanAndInvalidate(f.address, page), .sync,
                                     .cleanAndInvalidate(f.address, page), .sync])
        XCTAssertEqual(o.state(of: f), .hostOwned)
    }

    /// With a non-coherent domain already attached, a new share is flushed before
    /// it is returned to the caller (who then maps it), once per contiguous run,
    /// and only frames shared for the first time.
    func testFirstShareIntoNonCoherentDomainIsCleanedOnce() throws {
        var o = makeOwnership()
        try o.attachHostDMADomain(DMADomain(id: 7, enforcesCacheCoherency: false))
        try o.hostShareDMA(bank0.adding(1).address, bytes: page, isRAM: true)
        o.cache.ops = []
        try o.hostShareDMA(bank0.address, bytes: 3 * page, isRAM: true)
        XCTAssertEqual(o.cache.ops, [.cleanAndInvalidate(bank0.address, page),
                                     .cleanAndInvalidate(bank0.adding(2).address, page), .sync])
        o.cache.ops = []
        // Dropping one of two shares keeps the frame pinned: no flush yet.
        try o.hostUnshareDMA(bank0.adding(1).address, bytes: page)
        XCTAssertEqual(o.cache.ops, [])
        try o.hostUnshareDMA(bank0.address, bytes: 3 * page)
        XCTAssertEqual(o.cache.cleanedFrames, [bank0, bank0.adding(1), bank0.adding(2)])
    }

    func testCoherentOnlySharingNeverFlushes() throws {
        var o = makeOwnership()
        try o.attachHostDMADomain(DMADomain(id: 1, enforcesCacheCoherency: true))
        try o.hostShareDMA(bank1.address, bytes: 8 * page, isRAM: true)
        try o.hostUnshareDMA(bank1.address, bytes: 8 * page)
        XCTAssertEqual(o.cache.ops, [])
    }

    func testDMADomainBookkeepingErrors() throws {
        var o = makeOwnership()
        try o.attachHostDMADomain(DMADomain(id: 1, enforcesCacheCoherency: true))
        expectRefusal(.EEXIST(.dmaDomainAttached(1)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.attachHostDMADomain(DMADomain(id: 1, enforcesCacheCoherency: false))
        }
        expectRefusal(.EINVAL(.dmaDomainUnknown(9)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.detachHostDMADomain(id: 9)
        }
    }
}
