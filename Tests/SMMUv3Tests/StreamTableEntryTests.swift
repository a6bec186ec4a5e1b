import XCTest
import AArch64
@testable import SMMUv3

/// STE bits pinned against IHI 0070 5.2 (positions also in Linux `STRTAB_STE_*`).
final class StreamTableEntryTests: XCTestCase {
    func testAbortIsValidWithConfigZero() {
        let e = StreamTableEntry.abort()
        XCTAssertEqual(e.dw0, 0x1)  // V=1, Config=000
        for i in 1..<8 { XCTAssertEqual(e[word: i], 0) }
        XCTAssertFalse(e.translates)
        XCTAssertFalse(e.isLive)
    }

    /// Config bit 2 decides whether traffic passes: bypass (0b100) and the
    /// translating configs are live, abort (0b000) and an invalid entry are not.
    func testLivenessFollowsConfigBit2() {
        XCTAssertTrue(StreamTableEntry.bypass(attributeTypesOverride: true).isLive)
        XCTAssertFalse(StreamTableEntry.bypass(attributeTypesOverride: true).translates)
        for config: UInt64 in [0b101, 0b110, 0b111] {
            var e = StreamTableEntry()
            e.dw0 = 0x1 | config << 1
            XCTAssertTrue(e.isLive, "config \(config)")
            XCTAssertTrue(e.translates, "config \(config)")
        }
        var invalid = StreamTableEntry()
        invalid.dw0 = 0b110 << 1
        XCTAssertFalse(invalid.isLive, "V=0")
    }

    func testBypassUsesIncomingShareability() {
        let e = StreamTableEntry.bypass(attributeTypesOverride: true)
        XCTAssertEqual(e.dw0, 0x9)  // V=1, Config=100
        XCTAssertEqual(e.dw1, 0x0000_1000_0000_0000)  // SHCFG=01 at [45:44]
        // Without SMMU_IDR1.ATTR_TYPES_OVR, SHCFG is RES0.
        XCTAssertEqual(StreamTableEntry.bypass(attributeTypesOverride: false).dw1, 0)
    }

    /// STE.SHCFG, STE bits [109:108] = dw1 [45:44]: 0b01 "use incoming" on every
    /// traffic-passing STE where SMMU_IDR1.ATTR_TYPES_OVR = 1, 0b00 (RES0) where it is 0.
    func testShareConfigFollowsAttributeTypesOverride() {
        XCTAssertEqual(StreamTableEntry.shareConfigShift, 44)
        XCTAssertEqual(StreamTableEntry.shareConfigMask, 0x0000_3000_0000_0000)
        XCTAssertEqual(StreamTableEntry.shareConfigIncoming, 0x0000_1000_0000_0000)
        for override in [false, true] {
            let shcfg: UInt64 = override ? 0b01 : 0b00
            let s1 = StreamTableEntry.stage1(contextDescriptor: PhysAddr(0x4000_1040), coherent: true,
                                             attributeTypesOverride: override)
            let s2 = StreamTableEntry.stage2(vmid: 5, vtcr: 0x8002_3558, root: PhysAddr(0x4010_0000),
                                             attributeTypesOverride: override)
            XCTAssertEqual(s1.dw1 >> 44 & 0b11, shcfg)
            XCTAssertEqual(s2.dw1 >> 44 & 0b11, shcfg)
            // Nothing else in dw1 moves.
            XCTAssertEqual(s1.dw1 & ~StreamTableEntry.shareConfigMask, 0xD4)
            XCTAssertEqual(s2.dw1 & ~StreamTableEntry.shareConfigMask, 0)
        }
    }

    func testStage1CoherentPointsAtCDWithWriteBackFetch() {
        let e = StreamTableEntry.stage1(contextDescriptor: PhysAddr(0x4000_1040), coherent: true,
                                                attributeTypesOverride: false)
        // V | Config=101 at [3:1] | S1ContextPtr [51:6]; S1CDMax=0, S1Fmt=0
        XCTAssertEqual(e.dw0, 0x0000_0000_4000_104B)
        // S1CIR=WB(1)[3:2], S1COR=WB(1)[5:4], S1CSH=ISH(3)[7:6]; S1STALLD=0, STRW=NS-EL1(0)
        XCTAssertEqual(e.dw1, 0xD4)
        XCTAssertEqual(e.dw2, 0)
        XCTAssertEqual(e.dw3, 0)
    }

    func testStage1NonCoherentFetchesNonCacheable() {
        let e = StreamTableEntry.stage1(contextDescriptor: PhysAddr(0x4000_1040), coherent: false,
                                                attributeTypesOverride: false)
        XCTAssertEqual(e.dw0, 0x4000_104B)
        XCTAssertEqual(e.dw1, 0)
    }

    func testStage2CopiesVTCRFieldsVMIDAndRoot() {
        // VTCR: T0SZ=24, SL0=1, IRGN0=WB, ORGN0=WB, SH0=ISH, TG0=4K, PS=40 bits, RES1 bit 31 (dropped).
        let vtcr: UInt64 = 0x8002_3558
        let e = StreamTableEntry.stage2(vmid: 5, vtcr: vtcr, root: PhysAddr(0x4010_0000),
                                                attributeTypesOverride: false)
        XCTAssertEqual(e.dw0, 0xD)  // V=1, Config=110
        XCTAssertEqual(e.dw1, 0)    // STRW=NS-EL1
        // S2VMID [15:0]=5; S2T0SZ [37:32]=0x18; S2SL0 [39:38]=1; S2IR0 [41:40]=1; S2OR0 [43:42]=1;
        // S2SH0 [45:44]=3; S2TG [47:46]=0; S2PS [50:48]=2; S2AA64 51; S2PTW 54; S2R 58.
        XCTAssertEqual(e.dw2, 0x044A_3558_0000_0005)
        XCTAssertEqual(e.dw2 >> 32 & 0x3F, 24)
        XCTAssertEqual(e.dw2 >> 38 & 3, 1)
        XCTAssertEqual(e.dw2 >> 48 & 7, 2)
        XCTAssertEqual(e.dw3, 0x4010_0000)  // S2TTB [51:4]
        XCTAssertTrue(e.translates)
    }

    func testWordSubscriptCoversAllEightDwords() {
        var e = StreamTableEntry()
        for i in 0..<8 { e[word: i] = UInt64(i + 1) }
        XCTAssertEqual([e.dw0, e.dw1, e.dw2, e.dw3, e.dw4, e.dw5, e.dw6, e.dw7], [1, 2, 3, 4, 5, 6, 7, 8])
        for i in 0..<8 { XCTAssertEqual(e[word: i], UInt64(i + 1)) }
        e.dw5 = 0xAB
        XCTAssertEqual(e[word: 5], 0xAB)
        // The in-place read installEntry uses: the same dword at every index.
        for i in 0..<8 { XCTAssertEqual(StreamTableEntry.word(i, in: &e), i == 5 ? 0xAB : UInt64(i + 1)) }
        XCTAssertEqual(e.dw5, 0xAB)
    }
}
