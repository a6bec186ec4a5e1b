import XCTest
import AArch64

/// TLBI IPAS2E1IS / RIPAS2E1IS operands pinned to the Arm ARM TLBI descriptions: IPAS2 IPA[47:12] at
/// [35:0]; RIPAS2 BaseADDR [36:0], TTL [38:37], NUM [43:39], SCALE [45:44], TG [47:46].
final class TLBIOperandTests: XCTestCase {
    func testOperandBits() {
        XCTAssertEqual(TLBIOperand.page(GFN(raw: 0x8_0000)), 0x8_0000)
        XCTAssertEqual(TLBIOperand.page(GFN(raw: 0xF_FFFF_FFFF)), 0xF_FFFF_FFFF)
        // TG 0b01 | SCALE 1 | NUM 3 | base 0x80000.
        XCTAssertEqual(TLBIOperand.range(GFN(raw: 0x8_0000), scale: 1, num: 3), 0x0000_5180_0008_0000)
        XCTAssertEqual(TLBIOperand.range(GFN(raw: 0), scale: 3, num: 31), 0x0000_7F80_0000_0000)
        XCTAssertEqual(TLBIOperand.rangePages(scale: 0, num: 0), 2)
        XCTAssertEqual(TLBIOperand.rangePages(scale: 1, num: 3), 256)
        XCTAssertEqual(TLBIOperand.rangePages(scale: 3, num: 31), 1 << 21)
    }

    func testDecompositionCoversExactly() {
        for pages: UInt64 in [1, 2, 3, 63, 64, 66, 512, 513, 262_144, TLBIOperand.maxRangePages] {
            var covered: [(UInt64, UInt64)] = []
            let ok = TLBIOperand.forEachOperation(GFN(raw: 0x1000), pages: pages) { op in
                switch op {
                case .page(let xt): covered.append((xt, 1))
                case .range(let xt):
                    XCTAssertEqual(xt >> 46 & 0b11, 0b01)
                    let scale = UInt8(xt >> 44 & 0b11), num = UInt8(xt >> 39 & 0b1_1111)
                    covered.append((xt & ((1 << 37) - 1), TLBIOperand.rangePages(scale: scale, num: num)))
                }
            }
            XCTAssertTrue(ok)
            XCTAssertLessThanOrEqual(covered.count, 5)
            var next: UInt64 = 0x1000
            for (base, n) in covered {
                XCTAssertEqual(base, next, "contiguous, in order (\(pages) pages)")
                next = base + n
            }
            XCTAssertEqual(next, 0x1000 + pages)
        }
        XCTAssertFalse(TLBIOperand.forEachOperation(GFN(raw: 0), pages: 1 << 21) { _ in XCTFail() })
        XCTAssertFalse(TLBIOperand.forEachOperation(GFN(raw: 0), pages: 0) { _ in XCTFail() })
    }
}
