import XCTest
import AArch64
import Translation
@testable import SMMUv3

final class SMMUTests: XCTestCase {
    // MARK: Bring-up

    func testBringUpOrderOnQEMU72() throws {
        let h = try Harness(.qemu72)
        XCTAssertEqual(h.smmu.mode, .stage1)
        XCTAssertTrue(h.smmu.coherent)
        XCTAssertEqual(h.fake.cr0ack, CR0.smmuEnable | CR0.commandQueueEnable | CR0.eventQueueEnable)
        XCTAssertEqual(h.fake.badAccesses, [])
        // The architected order (IHI 0070 6.3.9; Linux arm_smmu_device_reset).
        let order = h.fake.registerWrites.map(\.0)
        func position(_ offset: Int, value: UInt64? = nil) -> Int {
            h.fake.registerWrites.firstIndex { $0.0 == offset && (value == nil || $0.1 == value!) }!
        }
        XCTAssertEqual(order.first, SMMURegister.gbpa)
        XCTAssertLessThan(position(SMMURegister.gbpa), position(SMMURegister.cr0, value: 0))
        XCTAssertLessThan(position(SMMURegister.cr0, value: 0), position(SMMURegister.cr1))
        XCTAssertLessThan(position(SMMURegister.cr2), position(SMMURegister.strtabBase))
        XCTAssertLessThan(position(SMMURegister.strtabBaseCfg), position(SMMURegister.cmdqBase))
        XCTAssertLessThan(position(SMMURegister.cmdqBase), position(SMMURegister.cr0, value: UInt64(CR0.commandQueueEnable)))
        XCTAssertLessThan(position(SMMURegister.cmdqProd), position(SMMURegister.evtqBase))
        XCTAssertLessThan(position(SMMURegister.evtqCons),
                          position(SMMURegister.cr0, value: UInt64(CR0.commandQueueEnable | CR0.eventQueueEnable)))
        XCTAssertEqual(order.last, SMMURegister.cr0)
        XCTAssertEqual(h.fake.cr1, 0xD75)  // ISH, WB/WB for queues and tables
        XCTAssertEqual(h.fake.cr2, CR2.recordInvalidStreamID | CR2.privateTLBMaintenance)
        XCTAssertEqual(h.fake.gbpa & GBPA.abort, GBPA.abort)
        // Invalidate everything: CFGI_ALL, TLBI_NSNH_ALL (no TLBI_EL2_ALL: HYP=0), one CMD_SYNC.
        XCTAssertEqual(h.fake.consumedCommands, [.cfgiAll(), .tlbiNSNHAll(), .sync()])
        XCTAssertEqual(h.smmu.commandQueue.syncsIssued, 1)
    }

    func testTwoLevelStreamTableFor16BitStreamIDs() throws {
        let h = try Harness(.qemu72)
        XCTAssertEqual(h.smmu.streamTable.format, .twoLevel(split: 8))
        XCTAssertEqual(h.fake.strtabBaseCfg, 1 << 16 | 8 << 6 | 16)  // FMT=2-level, SPLIT=8, LOG2SIZE=16
        XCTAssertEqual(h.fake.strtabBase & (1 << 62), 1 << 62)
    }

    func testLinearStreamTableWhenFewStreamIDs() throws {
        let h = try Harness(.qemu72, configuration: SMMUConfiguration(maximumStreamIDBits: 6))
        XCTAssertEqual(h.smmu.streamTable.format, .linear)
        XCTAssertEqual(h.fake.strtabBaseCfg, 6)
    }

    func testStage2ChosenOnQEMU10() throws {
        let h = try Harness(.qemu10)
        XCTAssertEqual(h.smmu.mode, .stage2)
        XCTAssertTrue(h.smmu.features.vmid16)
    }

    func testCR0AckTimeoutIsTyped() {
        let memory = FakeMemory()
        let fake = FakeSMMU(profile: .qemu72, memory: memory)
        fake.cr0ack = CR0.smmuEnable
        fake.cr0AckStuck = true
        var allocator = FakeFrameAllocator()
        XCTAssertEqual(bringUpError(fake, memory, &allocator, SMMUConfiguration(pollLimit: 100)),
                       .cr0AckTimeout(expected: 0, last: CR0.smmuEnable))
    }

    func testOutOfMemoryGivesFramesBackAndLeavesRegistersAlone() {
        let memory = FakeMemory()
        let fake = FakeSMMU(profile: .qemu72, memory: memory)
        var allocator = FakeFrameAllocator()
        allocator.limit = allocator.next.adding(2)
        XCTAssertEqual(bringUpError(fake, memory, &allocator), .outOfMemory(frames: 16))
        XCTAssertEqual(allocator.freed.count, 2)
        XCTAssertTrue(fake.registerWrites.isEmpty)
    }

    func testRefusedHardware() {
        let memory = FakeMemory()
        let fake = FakeSMMU(profile: FakeSMMU.Profile.qemu72.without(1 << 4, idr: 5), memory: memory)
        var allocator = FakeFrameAllocator()
        XCTAssertEqual(bringUpError(fake, memory, &allocator), .refused(.no4KGranule(idr5: 0x64)))
        XCTAssertTrue(fake.registerWrites.isEmpty)
    }

    // MARK: Invalidation batches

    func testRangeInvalidationIsOneCommandPlusSync() throws {
        var h = try Harness(.qemu72)
        let before = h.fake.consumedCommands.count
        try h.smmu.invalidate(.stage1(asid: 2, vmid: 0), first: PageNumber(0x100), pages: 512)
        XCTAssertEqual(Array(h.fake.consumedCommands[before...]),
                       [.tlbiNHVA(asid: 2, va: IOVA(0x10_0000), range: TLBIRange(num: 0, scale: 9)), .sync()])
    }

    // MARK: Error recovery

    func testCheckGlobalErrorsRepairsAStoppedQueue() throws {
        var h = try Harness(.qemu72)
        // Something stopped the queue while nobody was waiting on it.
        try h.smmu.push(Command(dw0: 0, dw1: 0))
        h.smmu.commandQueueForTesting { q, r, m, c in q.publish(registers: r, memory: m, cache: &c, coherent: true) }
        let report = h.smmu.checkGlobalErrors()
        XCTAssertEqual(report.active, GERROR.commandQueueError)
        XCTAssertEqual(report.rejectedCommand?.command, Command(dw0: 0, dw1: 0))
        XCTAssertTrue(h.smmu.checkGlobalErrors().isClean)
        try h.smmu.sync()
    }

    /// Every GERROR bit the driver handles is acknowledged by toggling the same
    /// GERRORN bit (IHI 0070 7.5), one at a time and all at once, and only the
    /// active ones. SFM_ERR stays reported after its acknowledgement (the mode
    /// does not end, 6.3.19).
    func testEveryActiveGlobalErrorIsAcknowledged() throws {
        let bits: [UInt32] = [GERROR.eventQueueAbortError, GERROR.priQueueAbortError, GERROR.msiCommandQueueAbortError,
                              GERROR.msiEventQueueAbortError, GERROR.msiPRIQueueAbortError,
                              GERROR.msiGlobalErrorAbortError, GERROR.serviceFailureMode]
        for bit in bits + [bits.reduce(0, |)] {
            var h = try Harness(.qemu10)
            let gerrornBefore = h.fake.gerrorn
            h.fake.gerror ^= bit
            let report = h.smmu.checkGlobalErrors()
            XCTAssertEqual(report.active, bit)
            XCTAssertEqual(h.fake.gerror ^ h.fake.gerrorn, 0, "GERROR \(bit) acknowledged")
            XCTAssertEqual(h.fake.gerrorn ^ gerrornBefore, bit, "only the active bits toggled")
            XCTAssertEqual(report.eventQueueWriteAborted, bit & (1 << 2) != 0)
            XCTAssertEqual(report.priQueueWriteAborted, bit & (1 << 3) != 0)
            XCTAssertEqual(report.msiWriteAborts, bit & 0xF0)
            XCTAssertEqual(report.serviceFailure, bit & (1 << 8) != 0)
            let next = h.smmu.checkGlobalErrors()
            XCTAssertEqual(next.active, 0)
            XCTAssertEqual(next.isClean, bit & (1 << 8) == 0, "SFM is remembered")
        }
    }

    /// GERROR bit positions (IHI 0070 6.3.19).
    func testGlobalErrorBits() {
        XCTAssertEqual(GERROR.priQueueAbortError, 1 << 3)
        XCTAssertEqual(GERROR.msiCommandQueueAbortError, 1 << 4)
        XCTAssertEqual(GERROR.msiEventQueueAbortError, 1 << 5)
        XCTAssertEqual(GERROR.msiPRIQueueAbortError, 1 << 6)
        XCTAssertEqual(GERROR.msiGlobalErrorAbortError, 1 << 7)
        XCTAssertEqual(GERROR.msiAbortErrors, 0b1111 << 4)
    }

    /// CMDQ_ERR together with the others: the queue is repaired and every bit acknowledged.
    func testCommandQueueErrorWithOthersIsRepairedAndAllAcknowledged() throws {
        var h = try Harness(.qemu72)
        try h.smmu.push(Command(dw0: 0x07, dw1: 0))
        h.smmu.commandQueueForTesting { q, r, m, c in q.publish(registers: r, memory: m, cache: &c, coherent: true) }
        h.fake.gerror ^= GERROR.eventQueueAbortError | GERROR.msiGlobalErrorAbortError
        let report = h.smmu.checkGlobalErrors()
        XCTAssertEqual(report.active, GERROR.commandQueueError | GERROR.eventQueueAbortError | GERROR.msiGlobalErrorAbortError)
        XCTAssertEqual(report.rejectedCommand?.reason, .illegal)
        XCTAssertEqual(h.fake.gerror ^ h.fake.gerrorn, 0)
        XCTAssertTrue(h.smmu.checkGlobalErrors().isClean)
        try h.smmu.sync()
    }
}

extension SMMU {
    /// Reach the command queue with the driver's own collaborators (tests only).
    mutating func commandQueueForTesting(_ body: (inout CommandQueue, R, M, inout C) -> Void) {
        body(&commandQueue, registers, memory, &cache)
    }
}
