import XCTest
import AArch64
@testable import SMMUv3

final class StreamTableL1DescriptorTests: XCTestCase {
    /// Span = SPLIT + 1 (the L2 array holds 2^(Span-1) STEs; IHI 0070 5.1), L2Ptr [51:6].
    func testSpanIsSplitPlusOne() {
        let d = StreamTableL1Descriptor.table(at: PhysAddr(0x4030_0000), split: 8)
        XCTAssertEqual(d.raw, 0x4030_0009)
        XCTAssertEqual(d.span, 9)
        XCTAssertEqual(d.l2Table, PhysAddr(0x4030_0000))
        XCTAssertTrue(d.isValid)
        XCTAssertFalse(StreamTableL1Descriptor(raw: 0x4030_0000).isValid)
    }
}
