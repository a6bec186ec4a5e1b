import XCTest
import AArch64
@testable import Ownership

final class HostDMASharingTests: XCTestCase {
    let page = PageSize.bytes4K

    /// Seed 004's scenario: share twice, donate refused, unshare twice, donate accepted.
    func testSeed004ShareTwiceDonateRefusedUnshareTwiceDonateAccepted() throws {
        var o = makeOwnership()
        let f = bank0.adding(2)
        try o.hostShareDMA(f.address, bytes: page, isRAM: true)
        XCTAssertEqual(o.state(of: f), FrameState(owner: .host, hostState: .sharedOwned, borrower: .iommu, dmaShares: 1))
        try o.hostShareDMA(f.address, bytes: page, isRAM: true)
        XCTAssertEqual(o.state(of: f)?.dmaShares, 2)

        expectRefusal(.EPERM(.dmaShared(f, shares: 2)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostDonateToHypervisor(f)
        }
        expectRefusal(.EPERM(.dmaShared(f, shares: 2)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareWithHypervisor(f)
        }
        expectRefusal(.EPERM(.dmaShared(f, shares: 2)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.allocateXenheapPage(f)
        }

        try o.hostUnshareDMA(f.address, bytes: page)
        XCTAssertEqual(o.state(of: f)?.dmaShares, 1)
        expectRefusal(.EPERM(.dmaShared(f, shares: 1)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostDonateToHypervisor(f)
        }
        try o.hostUnshareDMA(f.address, bytes: page)
        XCTAssertEqual(o.state(of: f), .hostOwned)
        try o.hostDonateToHypervisor(f)
        XCTAssertEqual(o.state(of: f), FrameState(owner: .hypervisor, hostState: .noPage))

        // ...and the other way: a donated frame cannot be shared for DMA.
        expectRefusal(.EPERM(.notOwner(f, owner: .hypervisor)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(f.address, bytes: self.page, isRAM: true)
        }
    }

    /// A frame lent to the hypervisor is not shareable for DMA, first share or later.
    func testFrameSharedWithHypervisorIsNotDMAShareable() throws {
        var o = makeOwnership()
        let f = bank0.adding(1)
        try o.hostShareWithHypervisor(f)
        expectRefusal(.EPERM(.borrowedBy(f, .hypervisor)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(f.address, bytes: self.page, isRAM: true)
        }
    }

    /// Failure at page k of n: pages 0..k-1 are rolled back, byte for byte.
    func testFailureAtPageKRollsBackEarlierPages() throws {
        for k in 2..<6 {
            var o = makeOwnership()
            // Pages 0 and 1 already shared once: rollback must restore counts
            // above zero as well as first shares (pages 2..k-1).
            try o.hostShareDMA(bank0.address, bytes: 2 * page, isRAM: true)
            try o.hostDonateToHypervisor(bank0.adding(UInt64(k)))
            let before = o.frames.snapshot()
            let cacheBefore = o.cache.ops
            do {
                try o.hostShareDMA(bank0.address, bytes: 6 * page, isRAM: true)
                XCTFail("share over a donated frame succeeded (k = \(k))")
            } catch {
                XCTAssertEqual(error, .EPERM(.notOwner(bank0.adding(UInt64(k)), owner: .hypervisor)))
            }
            XCTAssertEqual(o.frames.snapshot(), before, "k = \(k)")
            XCTAssertEqual(o.cache.ops, cacheBefore, "a refused share issued cache maintenance")
        }
    }

    /// The same with a non-coherent DMA domain attached: the first shares the
    /// refused call marked for a clean lose the mark again in the rollback
    /// (the frame's word is the one it had), and nothing is cleaned.
    func testFailureAtPageKRollsBackFirstShareMarks() throws {
        for k in 1..<4 {
            var o = makeOwnership()
            try o.attachHostDMADomain(DMADomain(id: 2, enforcesCacheCoherency: false))
            try o.hostDonateToHypervisor(bank0.adding(UInt64(k)))
            expectRefusal(.EPERM(.notOwner(bank0.adding(UInt64(k)), owner: .hypervisor)), &o) {
                (o: inout TestOwnership) throws(OwnershipError) in
                try o.hostShareDMA(bank0.address, bytes: 4 * self.page, isRAM: true)
            }
            XCTAssertEqual(o.state(of: bank0), .hostOwned, "k = \(k)")
        }
    }

    /// The `isRAM` hint is checked, both ways.
    func testIsRAMLieIsRejected() throws {
        var o = makeOwnership()
        expectRefusal(.EINVAL(.ramClaimedAsDevice(bank1.address)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(bank1.address, bytes: self.page, isRAM: false)
        }
        expectRefusal(.EINVAL(.notRAM(deviceFrame.address)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(deviceFrame.address, bytes: self.page, isRAM: true)
        }
        // A device range that runs into RAM is refused at the RAM frame.
        let lastBefore = MFN(raw: bank0.raw - 1)
        expectRefusal(.EINVAL(.ramClaimedAsDevice(bank0.address)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(lastBefore.address, bytes: 2 * self.page, isRAM: false)
        }
        // A host device's memory needs no count and leaves the table alone.
        let before = o.frames.snapshot()
        try o.declareHostDevice(deviceFrame.address, bytes: 16 * page)
        try o.hostShareDMA(deviceFrame.address, bytes: 4 * page, isRAM: false)
        try o.hostUnshareDMA(deviceFrame.address, bytes: 4 * page)
        XCTAssertEqual(o.frames.snapshot(), before)
    }

    /// Non-RAM is accepted only inside a region the platform declared as a
    /// host device's; everything else is refused with the table unchanged.
    func testNonRAMOnlyInsideADeclaredHostDevice() throws {
        var o = makeOwnership()
        expectRefusal(.EINVAL(.notHostDevice(deviceFrame.address, bytes: page)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(deviceFrame.address, bytes: self.page, isRAM: false)
        }
        try o.declareHostDevice(deviceFrame.address, bytes: 4 * page)
        try o.hostShareDMA(deviceFrame.address, bytes: 4 * page, isRAM: false)
        try o.hostShareDMA(deviceFrame.adding(3).address, bytes: page, isRAM: false)
        // One page past the region, or starting before it: refused.
        expectRefusal(.EINVAL(.notHostDevice(deviceFrame.address, bytes: 5 * page)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(deviceFrame.address, bytes: 5 * self.page, isRAM: false)
        }
        let before = MFN(raw: deviceFrame.raw - 1)
        expectRefusal(.EINVAL(.notHostDevice(before.address, bytes: 2 * page)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(before.address, bytes: 2 * self.page, isRAM: false)
        }
        // Unsharing an undeclared non-RAM range is an error, not a silent success.
        expectRefusal(.ENOENT(.notDMAShared(MFN(raw: deviceFrame.raw + 8))), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostUnshareDMA(deviceFrame.adding(8).address, bytes: self.page)
        }
        XCTAssertEqual(o.hostDeviceRegions, [HostDeviceRegion(first: deviceFrame, count: 4)])
    }

    /// A range of 2^52 - 1 pages costs no more than one page: no per-frame
    /// walk outside RAM (the old loop ran once per page of any non-RAM range).
    func testHugeNonRAMRangesAreDecidedWithoutAWalk() throws {
        var o = makeOwnership()
        let top = PhysAddr(0x10_0000_0000_0000)   // 2^52, above both banks
        let huge: UInt64 = 0xFFEF_FFFF_FFFF_F000    // up to the last page of the address space
        let clock = ContinuousClock()
        let started = clock.now
        expectRefusal(.EINVAL(.notHostDevice(top, bytes: huge)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(top, bytes: huge, isRAM: false)
        }
        expectRefusal(.ENOENT(.notDMAShared(top.frame)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostUnshareDMA(top, bytes: huge)
        }
        try o.declareHostDevice(top, bytes: huge)
        try o.hostShareDMA(top, bytes: huge, isRAM: false)
        try o.hostUnshareDMA(top, bytes: huge)
        // A huge RAM claim stops at the first frame that is not RAM.
        expectRefusal(.EINVAL(.notRAM(PhysAddr(0))), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(PhysAddr(0), bytes: huge, isRAM: true)
        }
        XCTAssertLessThan(clock.now - started, .seconds(1))
    }

    func testHostDeviceDeclarationsAreChecked() throws {
        var o = makeOwnership()
        XCTAssertThrowsError(try o.declareHostDevice(MFN(raw: bank0.raw - 1).address, bytes: 2 * page)) {
            XCTAssertEqual($0 as? OwnershipError, .EINVAL(.deviceRegionOverlapsRAM(bank0.address)))
        }
        XCTAssertThrowsError(try o.declareHostDevice(deviceFrame.address.adding(0x10), bytes: page)) {
            XCTAssertEqual($0 as? OwnershipError, .EINVAL(.misaligned(deviceFrame.address.adding(0x10))))
        }
        for i in 0..<UInt64(TestOwnership.hostDeviceCapacity) {
            try o.declareHostDevice(deviceFrame.adding(2 * i).address, bytes: page)
        }
        let full = o.hostDeviceRegions
        XCTAssertThrowsError(try o.declareHostDevice(deviceFrame.adding(100).address, bytes: page)) {
            XCTAssertEqual($0 as? OwnershipError, .ENOMEM(.hostDeviceSlots(16)))
        }
        XCTAssertEqual(o.hostDeviceRegions, full)
    }

    func testAlignmentAndSizeAreChecked() {
        var o = makeOwnership()
        let cases: [(PhysAddr, UInt64, OwnershipError)] = [
            (bank0.address.adding(0x10), page, .EINVAL(.misaligned(bank0.address.adding(0x10)))),
            (bank0.address, 0x800, .EINVAL(.sizeMisaligned(0x800))),
            (bank0.address, 0, .EINVAL(.rangeEmpty)),
            (PhysAddr(0xFFFF_FFFF_FFFF_F000), 2 * page, .EINVAL(.rangeWraps(PhysAddr(0xFFFF_FFFF_FFFF_F000), bytes: 2 * page))),
        ]
        for (pa, bytes, expected) in cases {
            expectRefusal(expected, &o) { (o: inout TestOwnership) throws(OwnershipError) in
                try o.hostShareDMA(pa, bytes: bytes, isRAM: true)
            }
            expectRefusal(expected, &o) { (o: inout TestOwnership) throws(OwnershipError) in
                try o.hostUnshareDMA(pa, bytes: bytes)
            }
        }
    }

    /// The 16-bit count saturates: the 65536th share is refused, never wrapped.
    func testRefcountSaturationIsAnError() throws {
        var o = makeOwnership()
        let f = bank1.adding(3)
        for _ in 0..<Int(FrameState.maxDMAShares) { try o.hostShareDMA(f.address, bytes: page, isRAM: true) }
        XCTAssertEqual(o.state(of: f)?.dmaShares, 0xFFFF)
        expectRefusal(.EOVERFLOW(.dmaShareCount(f)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(f.address, bytes: self.page, isRAM: true)
        }
        // Saturation on the second page of a range rolls the first back.
        let g = bank1.adding(2)
        expectRefusal(.EOVERFLOW(.dmaShareCount(f)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareDMA(g.address, bytes: 2 * self.page, isRAM: true)
        }
        XCTAssertEqual(o.state(of: g), .hostOwned)
    }

    /// Unshare is checked in full before anything changes.
    func testUnshareOfUnsharedFrameChangesNothing() throws {
        var o = makeOwnership()
        try o.hostShareDMA(bank0.address, bytes: page, isRAM: true)
        expectRefusal(.ENOENT(.notDMAShared(bank0.adding(1))), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostUnshareDMA(bank0.address, bytes: 2 * self.page)
        }
        XCTAssertEqual(o.state(of: bank0)?.dmaShares, 1)
    }

    /// The same refusal when the last share of the first frame was marked for
    /// a non-coherent device: the share comes back with its mark, and nothing
    /// is cleaned; unsharing it alone then cleans it once and clears the mark.
    func testRefusedUnshareKeepsTheMarkOfAFrameItAlreadyUnshared() throws {
        var o = makeOwnership()
        try o.attachHostDMADomain(DMADomain(id: 2, enforcesCacheCoherency: false))
        try o.hostShareDMA(bank0.address, bytes: page, isRAM: true)
        XCTAssertEqual(o.state(of: bank0), FrameState(owner: .host, hostState: .sharedOwned, borrower: .iommu,
                                                      dmaShares: 1, cacheFlushRequired: true))
        expectRefusal(.ENOENT(.notDMAShared(bank0.adding(1))), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostUnshareDMA(bank0.address, bytes: 2 * self.page)
        }
        let cleanedBefore = o.cache.cleanedFrames.count
        try o.hostUnshareDMA(bank0.address, bytes: page)
        XCTAssertEqual(o.state(of: bank0), .hostOwned)
        XCTAssertEqual(Array(o.cache.cleanedFrames.dropFirst(cleanedBefore)), [bank0])
        XCTAssertEqual(o.cache.ops.last, .sync)
    }
}

/// Runs `body`, expects exactly `expected`, and proves the frame table and the
/// cache log are byte-for-byte what they were.
func expectRefusal(_ expected: OwnershipError, _ o: inout TestOwnership,
                   file: StaticString = #filePath, line: UInt = #line,
                   _ body: (inout TestOwnership) throws(OwnershipError) -> Void) {
    let before = o.frames.snapshot()
    let cacheBefore = o.cache.ops
    let dmaDomainsBefore = o.hostDMADomains
    do {
        try body(&o)
        XCTFail("succeeded; expected \(expected)", file: file, line: line)
    } catch {
        XCTAssertEqual(error, expected, file: file, line: line)
    }
    XCTAssertEqual(o.frames.snapshot(), before, "a failed call changed the frame table", file: file, line: line)
    XCTAssertEqual(o.cache.ops, cacheBefore, "a failed call issued cache maintenance", file: file, line: line)
    XCTAssertEqual(o.hostDMADomains, dmaDomainsBefore, file: file, line: line)
}
