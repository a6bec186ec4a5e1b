import XCTest
import AArch64
@testable import SMMUv3

/// CD bits pinned against IHI 0070 5.4 (Linux `CTXDESC_CD_0_*`).
final class ContextDescriptorTests: XCTestCase {
    func testStage1CoherentCD() {
        let cd = ContextDescriptor.stage1(asid: 0x12, root: PhysAddr(0x4020_0000), inputBits: 39, ipsCode: 4,
                                          mair: 0xFF, coherent: true)
        // T0SZ=25 [5:0]; TG0=4K(0) [7:6]; IR0=WB(1) [9:8]; OR0=WB(1) [11:10]; SH0=ISH(3) [13:12];
        // EPD1 30; V 31; IPS=4 [34:32]; AA64 41; R 45; A 46; ASID [63:48].
        XCTAssertEqual(cd.dw0, 0x0012_6204_C000_3519)
        XCTAssertEqual(cd.dw1, 0x4020_0000)  // TTB0 [51:4]
        XCTAssertEqual(cd.dw2, 0)
        XCTAssertEqual(cd.dw3, 0xFF)  // MAIR
        XCTAssertEqual(cd.asid, 0x12)
        XCTAssertEqual(cd.t0sz, 25)
        XCTAssertTrue(cd.isValid)
    }

    func testNonCoherentWalksAreNonCacheable() {
        let cd = ContextDescriptor.stage1(asid: 1, root: PhysAddr(0x4020_0000), inputBits: 39, ipsCode: 4,
                                          mair: 0, coherent: false)
        XCTAssertEqual(cd.dw0 >> 8 & 0x3F, 0)  // IR0, OR0, SH0 all 0
        XCTAssertEqual(cd.dw0 & 0x3F, 25)
    }

    /// The CD is 64 bytes (IHI 0070 5.4): the word subscript is dw0...dw3 in
    /// order, and dw4...dw7 (written as zero) read as zero.
    func testWordSubscriptIsTheFourDwordsThenZero() {
        var cd = ContextDescriptor()
        cd.dw0 = 0x11; cd.dw1 = 0x22; cd.dw2 = 0x33; cd.dw3 = 0x44
        XCTAssertEqual((0..<ContextDescriptor.dwordCount).map { cd[word: $0] }, [0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0])
    }
}
