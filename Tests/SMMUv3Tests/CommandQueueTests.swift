import XCTest
import AArch64
import Translation
@testable import SMMUv3

/// The command ring driven through the driver against the fake SMMU.
final class CommandQueueTests: XCTestCase {
    func testBatchOfManyCommandsEndsWithExactlyOneSync() throws {
        var h = try Harness(.qemu72, configuration: SMMUConfiguration(commandQueueLog2Entries: 3))
        let before = h.fake.consumedCommands.count
        // 40 per-page TLBIs through an 8-entry ring: the ring fills and wraps several times.
        for page: UInt64 in 0..<40 { try h.smmu.push(.tlbiNHVA(asid: 1, va: IOVA(page << 12))) }
        try h.smmu.sync()
        let batch = Array(h.fake.consumedCommands[before...])
        XCTAssertEqual(batch.count, 41)
        XCTAssertEqual(batch.filter { $0.opcode == Command.Opcode.sync.rawValue }.count, 1)
        XCTAssertEqual(batch.last, .sync())
        XCTAssertEqual(h.fake.badAccesses, [])
    }

    func testIllegalCommandIsReportedReplacedAndTheQueueRecovers() throws {
        var h = try Harness(.qemu72)
        // TLBI_S12_VMALL is illegal on a stage-1-only SMMU; QEMU's 0x07 "CFGI_ALL" is illegal everywhere.
        let bad = Command(dw0: 0x07, dw1: 0x1F)
        try h.smmu.push(.tlbiNHASID(asid: 1))
        try h.smmu.push(bad)
        try h.smmu.push(.tlbiNHASID(asid: 2))
        XCTAssertThrowsError(try h.smmu.sync()) { error in
            guard case .commandRejected(let r)? = error as? CommandQueueError else { return XCTFail("\(error)") }
            XCTAssertEqual(r.command, bad)
            XCTAssertEqual(r.reason, .illegal)
        }
        // The commands after the bad one ran; the error is acknowledged.
        XCTAssertEqual(h.fake.consumedCommands.suffix(4), [.tlbiNHASID(asid: 1), .sync(), .tlbiNHASID(asid: 2), .sync()])
        XCTAssertEqual((h.fake.gerror ^ h.fake.gerrorn) & GERROR.commandQueueError, 0)
        // The queue works afterwards.
        try h.smmu.invalidate(.stage1(asid: 3, vmid: 0), first: PageNumber(1), pages: 1)
        XCTAssertTrue(h.smmu.checkGlobalErrors().isClean)
    }

    func testLostSyncTimesOutInsteadOfHanging() throws {
        var h = try Harness(.qemu72, configuration: SMMUConfiguration(pollLimit: 1000))
        h.fake.consumptionStalled = true
        try h.smmu.push(.tlbiNHASID(asid: 1))
        XCTAssertThrowsError(try h.smmu.sync()) { error in
            XCTAssertEqual(error as? CommandQueueError, .syncTimeout(prod: 5, cons: 3))
        }
        // Once the SMMU moves again the queue drains and the next batch completes.
        h.fake.consumptionStalled = false
        try h.smmu.sync()
        XCTAssertEqual(h.fake.consumedCommands.suffix(3), [.tlbiNHASID(asid: 1), .sync(), .sync()])
    }

    func testFullRingWithStalledSMMUReportsNoSpace() throws {
        var h = try Harness(.qemu72, configuration: SMMUConfiguration(commandQueueLog2Entries: 2, pollLimit: 50))
        h.fake.consumptionStalled = true
        XCTAssertThrowsError(try { for _ in 0..<5 { try h.smmu.push(.tlbiNSNHAll()) } }()) { error in
            guard case .noSpace? = error as? CommandQueueError else { return XCTFail("\(error)") }
        }
    }

    /// CERROR_ABT (CMDQ_CONS.ERR = 2) is an abort on the fetch, not a bad
    /// command: the command stays in place and runs when the fetch is retried
    /// (IHI 0070 7.1; Linux `arm_smmu_cmdq_skip_err` skips only CERROR_ILL).
    func testAbortedFetchIsRetriedNotSkipped() throws {
        var h = try Harness(.qemu72)
        let before = h.fake.consumedCommands.count
        h.fake.injectedFetchErrors = [.abort]
        try h.smmu.push(.tlbiNHASID(asid: 5))
        try h.smmu.sync()
        XCTAssertEqual(Array(h.fake.consumedCommands[before...]), [.tlbiNHASID(asid: 5), .sync()])
        XCTAssertEqual(h.smmu.commandQueue.fetchAbortsRetried, 1)
        XCTAssertNil(h.smmu.commandQueue.lastRejected)
        XCTAssertEqual((h.fake.gerror ^ h.fake.gerrorn) & GERROR.commandQueueError, 0)
    }

    /// A fetch that keeps aborting ends in the bounded wait, and the command is
    /// still in its slot (never replaced by CMD_SYNC); once fetches work it runs.
    func testFetchThatKeepsAbortingTimesOutWithTheCommandKept() throws {
        var h = try Harness(.qemu72, configuration: SMMUConfiguration(pollLimit: 20))
        let tlbi = Command.tlbiNHASID(asid: 6)
        h.fake.injectedFetchErrors = Array(repeating: .abort, count: 100)
        try h.smmu.push(tlbi)
        XCTAssertThrowsError(try h.smmu.sync()) { error in
            guard case .syncTimeout? = error as? CommandQueueError else { return XCTFail("\(error)") }
        }
        let slot = h.smmu.commandQueue.slotAddress(QueueIndex(h.fake.cmdqCons, log2Entries: h.smmu.commandQueue.log2Entries))
        XCTAssertEqual(Command(dw0: h.memory.load64(slot), dw1: h.memory.load64(slot.adding(8))), tlbi)
        h.fake.injectedFetchErrors = []
        try h.smmu.sync()
        XCTAssertEqual(h.fake.consumedCommands.suffix(3), [tlbi, .sync(), .sync()])
    }

    /// CERROR_ATC_INV_SYNC: CONS is at the CMD_SYNC, which is retried in place
    /// (not replaced); the batch completes and the error is reported.
    func testATCInvalidationSyncErrorRetriesTheSync() throws {
        var h = try Harness(.qemu72)
        let before = h.fake.consumedCommands.count
        try h.smmu.push(.tlbiNHASID(asid: 7))
        h.fake.injectedFetchErrors = []
        h.fake.stopAtNextSync = .atcInvalidationSync
        XCTAssertThrowsError(try h.smmu.sync()) { error in
            guard case .commandRejected(let r)? = error as? CommandQueueError else { return XCTFail("\(error)") }
            XCTAssertEqual(r.reason, .atcInvalidationSync)
            XCTAssertEqual(r.command, .sync())
        }
        XCTAssertEqual(Array(h.fake.consumedCommands[before...]), [.tlbiNHASID(asid: 7), .sync()])
        XCTAssertEqual(h.smmu.commandQueue.fetchAbortsRetried, 0)
    }
}
