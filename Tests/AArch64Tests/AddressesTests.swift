import XCTest
import AArch64

final class AddressesTests: XCTestCase {
    func testFrameAndAddressConvertBothWays() {
        XCTAssertEqual(MFN(raw: 0x4_0123).address, PhysAddr(raw: 0x4012_3000))
        XCTAssertEqual(PhysAddr(raw: 0x4012_3456).frame, MFN(raw: 0x4_0123))
        XCTAssertEqual(GFN(raw: 5).address, IPA(raw: 0x5000))
    }
}
