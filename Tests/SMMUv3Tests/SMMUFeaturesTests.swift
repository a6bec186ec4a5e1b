import XCTest
import AArch64
@testable import SMMUv3

final class SMMUFeaturesTests: XCTestCase {
    func testQEMU72() throws {
        let f = SMMUFeatures(idr0: 0x0d40_101a, idr1: 0x0273_0010, idr3: 0x1404, idr5: 0x74)
        XCTAssertTrue(f.stage1)
        XCTAssertFalse(f.stage2)
        XCTAssertEqual(f.tableFormats, 2)
        XCTAssertTrue(f.coherentAccess)
        XCTAssertFalse(f.hyp)
        XCTAssertTrue(f.asid16)
        XCTAssertFalse(f.vmid16)
        XCTAssertFalse(f.msi)
        XCTAssertFalse(f.sev)
        XCTAssertEqual(f.tableEndianness, 2)
        XCTAssertEqual(f.stallModel, 1)
        XCTAssertTrue(f.terminateModel)
        XCTAssertTrue(f.twoLevelStreamTable)
        XCTAssertEqual(f.streamIDBits, 16)
        XCTAssertEqual(f.substreamIDBits, 0)
        XCTAssertEqual(f.eventQueueLog2Max, 19)
        XCTAssertEqual(f.commandQueueLog2Max, 19)
        XCTAssertFalse(f.attributeTypesOverride)
        XCTAssertTrue(f.rangeInvalidation)
        XCTAssertEqual(f.outputAddressBits, 44)
        XCTAssertTrue(f.granule4K && f.granule16K && f.granule64K)
        XCTAssertEqual(f.preferredMode(coherent: true), .stage1)
        try f.validate()
    }

    func testQEMU10HasStage2AndVMID16() throws {
        let f = SMMUFeatures(idr0: 0x0d44_101b, idr1: 0x0273_0010, idr3: 0x1414, idr5: 0x74)
        XCTAssertTrue(f.stage1 && f.stage2)
        XCTAssertTrue(f.vmid16)
        XCTAssertEqual(f.preferredMode(coherent: true), .stage2)
        XCTAssertEqual(f.preferredMode(coherent: false), .stage1)
        try f.validate()
    }

    /// IDR5.OAS [2:0], the TCR.IPS encoding; 0b111 (56 bits) reads as 52.
    func testOutputAddressSizeRows() {
        let rows: [(UInt32, PhysicalAddressRange, Int)] = [
            (0, .bits32, 32), (1, .bits36, 36), (2, .bits40, 40), (3, .bits42, 42),
            (4, .bits44, 44), (5, .bits48, 48), (6, .bits52, 52), (7, .bits52, 52),
        ]
        for (oas, range, bits) in rows {
            // Granule bits [6:4] set around the field: only [2:0] counts.
            let f = SMMUFeatures(idr0: 0, idr1: 0, idr3: 0, idr5: 0x70 | oas)
            XCTAssertEqual(f.outputAddressRange, range, "OAS \(oas)")
            XCTAssertEqual(f.outputAddressBits, bits, "OAS \(oas)")
        }
    }

    func testRefusals() {
        func refusal(_ idr0: UInt32, _ idr1: UInt32 = 0x0273_0010, _ idr5: UInt32 = 0x74) -> SMMUProbeError? {
            do {
                try SMMUFeatures(idr0: idr0, idr1: idr1, idr3: 0, idr5: idr5).validate()
                return nil
            } catch { return error }
        }
        XCTAssertEqual(refusal(0x0d40_1016), .noAArch64TableFormat(ttf: 1))  // TTF = AArch32 only
        XCTAssertEqual(refusal(0x0d40_1018), .noTranslationStage)
        XCTAssertEqual(refusal(0x0d40_101a, 0x0273_0010, 0x64), .no4KGranule(idr5: 0x64))
        XCTAssertEqual(refusal(0x0d60_101a), .bigEndianTablesOnly)           // TTENDIAN = 3
        XCTAssertEqual(refusal(0x0e40_101a), .stallForced)                   // STALL_MODEL = 2
        XCTAssertEqual(refusal(0x0d40_101a, 0x1273_0010), .relativeBaseAddresses)
        XCTAssertEqual(refusal(0x0d40_101a, 0x2273_0010), .presetTablesOrQueues(idr1: 0x2273_0010))
        XCTAssertEqual(refusal(0x0d40_101a, 0x0003_0010), .queuesTooSmall(commandLog2: 0, eventLog2: 3))
    }

    /// SMMU_IDR1.ATTR_TYPES_OVR is bit 27, alone.
    func testAttributeTypesOverrideIsIDR1Bit27() {
        XCTAssertTrue(SMMUFeatures(idr0: 0, idr1: 1 << 27, idr3: 0, idr5: 0).attributeTypesOverride)
        XCTAssertFalse(SMMUFeatures(idr0: 0, idr1: ~UInt32(1 << 27), idr3: 0, idr5: 0).attributeTypesOverride)
    }

    /// IAS = MAX(IDR0.TTF[0] ? 40 : 0, IDR0.TTF[1] ? OAS : 0) (IHI 0070 3.4), and
    /// the S2T0SZ window it gives an AArch64 4 KiB STE: MAX(16, 64 - IAS) up to
    /// 39, or 48 with IDR3.STT (bit 9) (IHI 0070 5.2).
    func testIntermediateAddressSizeAndStage2InputWindow() {
        // (TTF, OAS code, IDR3, IAS, input bits)
        let rows: [(UInt32, UInt32, UInt32, Int, ClosedRange<Int>)] = [
            (0b10, 4, 0, 44, 25...44),       // QEMU 10: AArch64 only, OAS 44
            (0b10, 1, 0, 36, 25...36),       // AArch64 only, OAS 36: IAS is the OAS
            (0b11, 1, 0, 40, 25...40),       // with AArch32 LPAE, IAS is at least 40
            (0b11, 5, 0, 48, 25...48),
            (0b10, 6, 0, 52, 25...48),       // 52-bit IAS, but 48 bits at most with 4 KiB and S2DS = 0
            (0b10, 4, 1 << 9, 44, 16...44),  // STT: S2T0SZ up to 48
        ]
        for (ttf, oas, idr3, ias, window) in rows {
            let f = SMMUFeatures(idr0: ttf << 2 | 1, idr1: 0, idr3: idr3, idr5: 0x10 | oas)
            XCTAssertEqual(f.intermediateAddressBits, ias, "TTF \(ttf) OAS \(oas)")
            XCTAssertEqual(f.stage2InputBits, window, "TTF \(ttf) OAS \(oas) IDR3 \(idr3)")
        }
        XCTAssertTrue(SMMUFeatures(idr0: 0, idr1: 0, idr3: 1 << 9, idr5: 0).smallTranslationTables)
        XCTAssertFalse(SMMUFeatures(idr0: 0, idr1: 0, idr3: ~UInt32(1 << 9), idr5: 0).smallTranslationTables)
    }
}
