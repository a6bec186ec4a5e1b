import XCTest
import AArch64
@testable import SMMUv3

/// Register offsets and fields pinned against IHI 0070 chapter 6 (and Linux `ARM_SMMU_*`).
final class RegistersTests: XCTestCase {
    func testOffsets() {
        let table: [(Int, Int)] = [
            (SMMURegister.idr0, 0x000), (SMMURegister.idr1, 0x004), (SMMURegister.idr3, 0x00C),
            (SMMURegister.idr5, 0x014), (SMMURegister.cr0, 0x020), (SMMURegister.cr0ack, 0x024),
            (SMMURegister.cr1, 0x028), (SMMURegister.cr2, 0x02C), (SMMURegister.gbpa, 0x044),
            (SMMURegister.irqCtrl, 0x050), (SMMURegister.irqCtrlAck, 0x054), (SMMURegister.gerror, 0x060),
            (SMMURegister.gerrorn, 0x064), (SMMURegister.strtabBase, 0x080), (SMMURegister.strtabBaseCfg, 0x088),
            (SMMURegister.cmdqBase, 0x090), (SMMURegister.cmdqProd, 0x098), (SMMURegister.cmdqCons, 0x09C),
            (SMMURegister.evtqBase, 0x0A0),
            // Page 1, not the QEMU alias at 0xA8/0xAC (HARDWARE.md trap 1).
            (SMMURegister.evtqProd, 0x100A8), (SMMURegister.evtqCons, 0x100AC),
        ]
        for (offset, expected) in table { XCTAssertEqual(offset, expected) }
    }

    func testControlBits() {
        XCTAssertEqual(CR0.smmuEnable, 1 << 0)
        XCTAssertEqual(CR0.eventQueueEnable, 1 << 2)
        XCTAssertEqual(CR0.commandQueueEnable, 1 << 3)
        XCTAssertEqual(CR2.recordInvalidStreamID, 1 << 1)
        XCTAssertEqual(CR2.privateTLBMaintenance, 1 << 2)
        XCTAssertEqual(GBPA.update, 1 << 31)
        XCTAssertEqual(GBPA.abort, 1 << 20)
        XCTAssertEqual(GERROR.commandQueueError, 1 << 0)
        XCTAssertEqual(GERROR.eventQueueAbortError, 1 << 2)
        XCTAssertEqual(GERROR.serviceFailureMode, 1 << 8)
        XCTAssertEqual(GERROR.mask, 0x1FD)
    }

    func testCR1FromCoherency() {
        // Coherent: QUEUE_IC/OC = WB(1), QUEUE_SH = ISH(3), TABLE_IC/OC = WB, TABLE_SH = ISH (Linux's value).
        XCTAssertEqual(CR1.value(coherent: true), 0b11_01_01_11_01_01)
        XCTAssertEqual(CR1.value(coherent: false), 0)
    }

    func testQueueBase() {
        // RA/WA bit 62, ADDR [51:5], LOG2SIZE [4:0].
        XCTAssertEqual(QueueBase.value(base: PhysAddr(0x4001_0000), log2Entries: 8), 1 << 62 | 0x4001_0000 | 8)
        XCTAssertEqual(QueueBase.value(base: PhysAddr(0xFFF0_0000_4001_001F), log2Entries: 0x25),
                       1 << 62 | 0x4001_0000 | 5)
    }

    func testConsumerErrorField() {
        // CMDQ_CONS.ERR [30:24]; QEMU leaves 1 there after recovery (0x0100001A read on the board).
        XCTAssertEqual(CommandConsumerError.field(of: 0x0100_001A), 1)
        XCTAssertEqual(CommandConsumerError(rawValue: CommandConsumerError.field(of: 0x0200_0000)), .abort)
        XCTAssertEqual(CommandConsumerError.field(of: 0x8000_0003), 0)
    }
}
