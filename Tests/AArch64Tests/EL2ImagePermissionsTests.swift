import XCTest
@testable import AArch64

final class EL2ImagePermissionsTests: XCTestCase {
    /// HV_BLOCK_NORMAL's attributes without the block type: AttrIndx 2, SH inner, AF.
    let normal: UInt64 = 0x708

    func testDescriptorBitsArePinned() throws {
        let layout = try XCTUnwrap(EL2ImagePermissions(textStart: 0x4008_0000, textEnd: 0x400A_0000,
                                                       readOnlyEnd: 0x400A_8000))
        // Code: page | AttrIndx 2 | SH inner | AF | AP[2] read-only; XN clear.
        XCTAssertEqual(layout.pageDescriptor(0x4008_0000, attributes: normal), 0x0000_0000_4008_078B)
        XCTAssertEqual(layout.pageDescriptor(0x4009_F000, attributes: normal), 0x0000_0000_4009_F78B)
        // Read-only data: AP[2] and XN (bit 54).
        XCTAssertEqual(layout.pageDescriptor(0x400A_0000, attributes: normal), 0x0040_0000_400A_078B)
        // Data, BSS, heap, stack and everything around the image: writable, XN.
        XCTAssertEqual(layout.pageDescriptor(0x400A_8000, attributes: normal), 0x0040_0000_400A_870B)
        XCTAssertEqual(layout.pageDescriptor(0x4007_F000, attributes: normal), 0x0040_0000_4007_F70B)
        XCTAssertEqual(EL2ImagePermissions.sctlrWXN, 0x8_0000)
    }

    func testNoPageIsBothWritableAndExecutable() throws {
        let layout = try XCTUnwrap(EL2ImagePermissions(textStart: 0x4008_0000, textEnd: 0x400A_0000,
                                                       readOnlyEnd: 0x400A_8000))
        var address: UInt64 = 0x4000_0000
        while address < 0x4020_0000 {
            let d = layout.pageDescriptor(address, attributes: normal)
            let writable = d & EL2ImagePermissions.readOnlyBit == 0
            let executable = d & EL2ImagePermissions.executeNever == 0
            XCTAssertFalse(writable && executable, "page \(String(address, radix: 16))")
            XCTAssertEqual(d & 0x0000_FFFF_FFFF_F000, address)
            address += 0x1000
        }
    }

    func testBoundsMustBePageAlignedAndOrdered() {
        XCTAssertNil(EL2ImagePermissions(textStart: 0x4008_0010, textEnd: 0x400A_0000, readOnlyEnd: 0x400A_8000))
        XCTAssertNil(EL2ImagePermissions(textStart: 0x4008_0000, textEnd: 0x400A_0800, readOnlyEnd: 0x400A_8000))
        XCTAssertNil(EL2ImagePermissions(textStart: 0x4008_0000, textEnd: 0x400A_8000, readOnlyEnd: 0x400A_0000))
        XCTAssertNil(EL2ImagePermissions(textStart: 0x4008_0000, textEnd: 0x4008_0000, readOnlyEnd: 0x400A_0000))
    }
}
