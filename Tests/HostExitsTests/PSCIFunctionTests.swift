import XCTest
@testable import HostExits

final class PSCIFunctionTests: XCTestCase {
    func testFunctionIDFields() {
        // (x0, fast, smc64, owner, number, reserved bits)
        let table: [(UInt64, Bool, Bool, UInt8, UInt16, Bool)] = [
            (0x8400_0000, true, false, 4, 0x00, false),
            (0xC400_0003, true, true, 4, 0x03, false),
            (0x8000_0001, true, false, 0, 0x01, false),
            (0x8000_8000, true, false, 0, 0x8000, false),
            (0x0400_0003, false, false, 4, 0x03, false),
            (0x8401_0003, true, false, 4, 0x03, true),
            // Only W0 names the function: the upper 32 bits of X0 are ignored.
            (0xFFFF_FFFF_8400_0008, true, false, 4, 0x08, false),
        ]
        for (x0, fast, smc64, owner, number, reserved) in table {
            let id = SMCCCFunctionID(x0: x0)
            XCTAssertEqual(id.isFastCall, fast, "\(x0)")
            XCTAssertEqual(id.isSMC64, smc64, "\(x0)")
            XCTAssertEqual(id.owner, owner, "\(x0)")
            XCTAssertEqual(id.number, number, "\(x0)")
            XCTAssertEqual(id.hasReservedBits, reserved, "\(x0)")
        }
    }

    func testPSCINumbersAndIDs() {
        let table: [(UInt16, PSCIFunction, Bool)] = [
            (0x00, .version, false), (0x01, .cpuSuspend, true), (0x02, .cpuOff, false),
            (0x03, .cpuOn, true), (0x04, .affinityInfo, true), (0x05, .migrate, true),
            (0x06, .migrateInfoType, false), (0x07, .migrateInfoUpCPU, true), (0x08, .systemOff, false),
            (0x09, .systemReset, false), (0x0A, .features, false), (0x0B, .cpuFreeze, false),
            (0x0C, .cpuDefaultSuspend, true), (0x0D, .nodeHWState, true), (0x0E, .systemSuspend, true),
            (0x0F, .setSuspendMode, false), (0x10, .statResidency, true), (0x11, .statCount, true),
            (0x12, .systemReset2, true), (0x13, .memProtect, false), (0x14, .memProtectCheckRange, true),
            (0x15, .other(0x15), false), (0xFFFF, .other(0xFFFF), false),
        ]
        for (number, function, has64) in table {
            XCTAssertEqual(PSCIFunction(number: number), function)
            XCTAssertEqual(function.number, number)
            XCTAssertEqual(function.hasSMC64Form, has64, "\(function)")
        }
        XCTAssertEqual(PSCIFunction.smc32ID(0x03), 0x8400_0003)
        XCTAssertEqual(PSCIFunction.smc64ID(0x03), 0xC400_0003)
    }

    func testReturnCodes() {
        XCTAssertEqual(PSCIReturn.x0(PSCIReturn.notSupported), 0xFFFF_FFFF_FFFF_FFFF)
        XCTAssertEqual(PSCIReturn.x0(PSCIReturn.invalidParameters), 0xFFFF_FFFF_FFFF_FFFE)
        XCTAssertEqual(PSCIReturn.x0(PSCIReturn.alreadyOn), 0xFFFF_FFFF_FFFF_FFFC)
        XCTAssertEqual(PSCIReturn.x0(PSCIReturn.invalidAddress), 0xFFFF_FFFF_FFFF_FFF7)
        XCTAssertEqual(PSCIReturn.smcccVersion1_1, 0x10001)
    }
}
