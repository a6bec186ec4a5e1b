import XCTest
@testable import Platform

final class PCIAddressTests: XCTestCase {
    /// Requester ID = bus[15:8] | device[7:3] | function[2:0] (PCIe Base 5.0, 2.2.6.2).
    func testRequesterIDBits() {
        let table: [(UInt8, UInt8, UInt8, UInt16)] = [
            (0, 0, 0, 0x0000), (0, 1, 0, 0x0008), (0, 2, 0, 0x0010), (0, 31, 7, 0x00FF),
            (1, 0, 0, 0x0100), (0xFF, 31, 7, 0xFFFF), (0x12, 3, 5, 0x121D),
        ]
        for (bus, device, function, rid) in table {
            let bdf = BDF(bus: bus, device: device, function: function)!
            XCTAssertEqual(bdf.requesterID, rid)
            XCTAssertEqual(BDF(requesterID: rid), bdf)
        }
        XCTAssertNil(BDF(bus: 0, device: 32, function: 0))
        XCTAssertNil(BDF(bus: 0, device: 0, function: 8))
        XCTAssertLessThan(BDF(bus: 0, device: 31, function: 7)!, BDF(bus: 1, device: 0, function: 0)!)
    }
}
