import XCTest
import AArch64
@testable import SMMUv3

/// Every command encoder pinned against IHI 0070 chapter 4 (Linux `CMDQ_*`).
final class CommandTests: XCTestCase {
    func check(_ c: Command, _ dw0: UInt64, _ dw1: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(c.dw0, dw0, "dw0", file: file, line: line)
        XCTAssertEqual(c.dw1, dw1, "dw1", file: file, line: line)
    }

    func testConfigurationCommands() {
        check(.prefetchConfig(stream: StreamID(0x10)), 0x0000_0010_0000_0001, 0)
        check(.cfgiSTE(stream: StreamID(0x10)), 0x0000_0010_0000_0003, 0)
        check(.cfgiSTE(stream: StreamID(0x10), leaf: true), 0x0000_0010_0000_0003, 1)
        check(.cfgiSTERange(stream: StreamID(0x100), range: 7), 0x0000_0100_0000_0004, 7)
        // CFGI_ALL is CFGI_STE_RANGE (0x04) with Range=31, not QEMU's enum value 0x07 (trap 4).
        check(.cfgiAll(), 0x04, 0x1F)
        check(.cfgiCD(stream: StreamID(8), substream: 3, leaf: true), 0x0000_0008_0000_3005, 1)
        check(.cfgiCDAll(stream: StreamID(8)), 0x0000_0008_0000_0006, 0)
    }

    func testTLBICommands() {
        check(.tlbiNHASID(asid: 0x12), 0x0012_0000_0000_0011, 0)
        check(.tlbiNHASID(asid: 0x12, vmid: 3), 0x0012_0003_0000_0011, 0)
        check(.tlbiNHVA(asid: 0x12, va: IOVA(0x10_0000), leaf: true), 0x0012_0000_0000_0012, 0x10_0001)
        check(.tlbiS12VMAll(vmid: 5), 0x0000_0005_0000_0028, 0)
        check(.tlbiS2IPA(vmid: 5, ipa: IPA(0x8000_0000)), 0x0000_0005_0000_002A, 0x8000_0000)
        check(.tlbiNSNHAll(), 0x30, 0)
        check(.tlbiEL2All(), 0x20, 0)
    }

    func testRangeTLBIFields() {
        // NUM=15 [16:12], SCALE=5 [24:20], ASID=1 [63:48]; TG=4K(1) [11:10], TTL=0 [9:8].
        let va = Command.tlbiNHVA(asid: 1, va: IOVA(0x20_0000), range: TLBIRange(num: 15, scale: 5))
        check(va, 0x0001_0000_0050_F012, 0x0000_0000_0020_0400)
        XCTAssertEqual(va.rangePages, 512)
        // NUM=1, SCALE=18, VMID=5; Leaf, TTL=3, TG=4K, IPA [51:12].
        let ipa = Command.tlbiS2IPA(vmid: 5, ipa: IPA(0x8000_0000), range: TLBIRange(num: 1, scale: 18, ttl: 3),
                                    leaf: true)
        check(ipa, 0x0000_0005_0120_102A, 0x0000_0000_8000_0701)
        XCTAssertEqual(ipa.rangePages, 2 << 18)
        XCTAssertEqual(Command.tlbiS2IPA(vmid: 5, ipa: IPA(0x1000)).rangePages, 1)
    }

    func testAddressesAreMaskedToTheirFields() {
        // IPA is [51:12]: bits above 51 and below 12 never leak into other fields.
        let c = Command.tlbiS2IPA(vmid: 1, ipa: IPA(0xFFF0_0000_0000_1FFF))
        XCTAssertEqual(c.dw1, 0x0000_0000_0000_1000)
    }

    func testSync() {
        check(.sync(), 0x46, 0)
        check(.sync(signalEvent: true), 0x2046, 0)  // CS=SEV at [13:12]
        XCTAssertEqual(Command.sync().opcode, 0x46)
    }

    func testStreamIDFromPCIRequesterID() {
        XCTAssertEqual(StreamID(bus: 0, device: 2, function: 0).raw, 0x10)
        XCTAssertEqual(StreamID(bus: 1, device: 1, function: 3).raw, 0x10B)
    }
}
