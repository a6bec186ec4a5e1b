import XCTest
import AArch64

/// VTTBR_EL2 pinned to the Arm ARM register description: BADDR [47:1], VMID [63:48] (8-bit: [55:48]).
final class VTTBRTests: XCTestCase {
    func testEncoding() throws {
        let vtcr = try VTCR(ipaBits: 40, paRange: .bits40, vmidWidth: .bits8)
        let v = try VTTBR(root: MFN(raw: 0x8_0000), vmid: 5, vtcr: vtcr, vmidWidth: .bits8)
        XCTAssertEqual(v.raw, 0x0005_0000_8000_0000)
        XCTAssertEqual(v.vmid, 5)
        XCTAssertEqual(v.root, PhysAddr(raw: 0x8000_0000))
        let wide = try VTTBR(root: MFN(raw: 0x12_3456), vmid: 0xABCD,
                             vtcr: try VTCR(ipaBits: 48, paRange: .bits48, vmidWidth: .bits16), vmidWidth: .bits16)
        XCTAssertEqual(wide.raw, 0xABCD_0001_2345_6000)
    }

    func testReadBack() {
        // A read-back value decodes without validation; CnP (bit 0) is not BADDR.
        let read = VTTBR(raw: 0x0003_0000_4010_0001)
        XCTAssertEqual(read.vmid, 3)
        XCTAssertEqual(read.root, PhysAddr(raw: 0x4010_0000))
    }

    func testRefusals() throws {
        let vtcr = try VTCR(ipaBits: 40, paRange: .bits40, vmidWidth: .bits8)
        XCTAssertThrowsError(try VTTBR(root: MFN(raw: 0x8_0001), vmid: 1, vtcr: vtcr, vmidWidth: .bits8)) {
            XCTAssertEqual($0 as? Stage2ConfigurationError, .rootMisaligned(MFN(raw: 0x8_0001), requiredPages: 2))
        }
        XCTAssertThrowsError(try VTTBR(root: MFN(raw: 0x8_0000), vmid: 256, vtcr: vtcr, vmidWidth: .bits8)) {
            XCTAssertEqual($0 as? Stage2ConfigurationError, .vmidTooWide(vmid: 256, width: .bits8))
        }
        XCTAssertThrowsError(try VTTBR(root: MFN(raw: 1 << 36), vmid: 1, vtcr: vtcr, vmidWidth: .bits8)) {
            XCTAssertEqual($0 as? Stage2ConfigurationError, .rootBeyondPhysicalRange(MFN(raw: 1 << 36)))
        }
    }
}
