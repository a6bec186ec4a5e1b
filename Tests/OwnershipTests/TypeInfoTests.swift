import XCTest
import AArch64
@testable import Ownership

final class TypeInfoTests: XCTestCase {
    /// Seed 001's arm64 layout: PGT_writable_page bit 63, 2-bit count at 61,
    /// GFN in [60:0], all ones = PGT_INVALID_XENHEAP_GFN.
    func testLayoutMatchesXenArm64() {
        XCTAssertEqual(TypeInfo.initializer.raw, 0x1FFF_FFFF_FFFF_FFFF)
        XCTAssertNil(TypeInfo.initializer.xenheapGFN)
        XCTAssertEqual(TypeInfo.initializer.type, .none)
        XCTAssertEqual(TypeInfo.initializer.typeCount, 0)

        var t = TypeInfo.initializer
        t.type = .writable
        XCTAssertEqual(t.raw, 0x9FFF_FFFF_FFFF_FFFF)
        t.typeCount = 1
        XCTAssertEqual(t.raw, 0xBFFF_FFFF_FFFF_FFFF)
        t.typeCount = TypeInfo.maxTypeCount
        XCTAssertEqual(t.raw, 0xFFFF_FFFF_FFFF_FFFF)
        t.xenheapGFN = GFN(raw: 0x12345)
        XCTAssertEqual(t.raw, 0xE000_0000_0001_2345)
        XCTAssertEqual(t.xenheapGFN, GFN(raw: 0x12345))
        t.xenheapGFN = nil
        XCTAssertEqual(t.raw, 0xFFFF_FFFF_FFFF_FFFF)
    }

    func testLargestIPAFitsAndSentinelDoesNot() {
        XCTAssertTrue(TypeInfo.canHold(GFN(raw: (1 << 40) - 1)))   // 52-bit IPA
        XCTAssertTrue(TypeInfo.canHold(GFN(raw: TypeInfo.invalidGFN - 1)))
        XCTAssertFalse(TypeInfo.canHold(GFN(raw: TypeInfo.invalidGFN)))
    }
}
