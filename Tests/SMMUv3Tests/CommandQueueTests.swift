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
}
