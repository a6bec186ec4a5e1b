import XCTest
import AArch64

/// ID_AA64MMFR0_EL1.PARange [3:0] and ID_AA64MMFR1_EL1.VMIDBits [7:4] (Arm ARM register descriptions).
final class PhysicalAddressRangeTests: XCTestCase {
    func testPARangeDecoding() {
        let rows: [(UInt64, PhysicalAddressRange?, Int?)] = [
            (0x0, .bits32, 32), (0x1, .bits36, 36), (0x2, .bits40, 40), (0x3, .bits42, 42),
            (0x4, .bits44, 44), (0x5, .bits48, 48), (0x6, .bits52, 52), (0x7, nil, nil),
            // Other fields of the register are ignored.
            (0x0000_0000_0011_2125, .bits48, 48),
        ]
        for (value, range, bits) in rows {
            let decoded = PhysicalAddressRange(idAA64MMFR0: value)
            XCTAssertEqual(decoded, range, "\(value)")
            XCTAssertEqual(decoded?.bits, bits)
        }
    }

    func testReservedEncodingIsATypedError() throws {
        XCTAssertEqual(try PhysicalAddressRange.decode(idAA64MMFR0: 0x5), .bits48)
        XCTAssertThrowsError(try PhysicalAddressRange.decode(idAA64MMFR0: 0xF)) {
            XCTAssertEqual($0 as? Stage2ConfigurationError, .reservedPARangeEncoding(0xF))
        }
    }

    func testVMIDWidth() {
        XCTAssertEqual(VMIDWidth(idAA64MMFR1: 0x0000), .bits8)
        XCTAssertEqual(VMIDWidth(idAA64MMFR1: 0x0020), .bits16)
        XCTAssertEqual(VMIDWidth(idAA64MMFR1: 0x1_1120), .bits16)
        XCTAssertEqual(VMIDWidth(idAA64MMFR1: 0x0010), .bits8)  // reserved value: 8 bits
        XCTAssertEqual(VMIDWidth.bits8.maxVMID, 255)
        XCTAssertEqual(VMIDWidth.bits16.maxVMID, 65535)
        XCTAssertEqual(VMIDWidth.bits8.bits, 8)
        XCTAssertEqual(VMIDWidth.bits16.bits, 16)
    }
}
