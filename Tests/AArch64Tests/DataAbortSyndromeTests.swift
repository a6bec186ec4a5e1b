import XCTest
@testable import AArch64

final class DataAbortSyndromeTests: XCTestCase {
    func testFieldsPinnedBitByBit() {
        // (ISS, valid, bytes, sign-extend, SRT, SF, AR, FnV, EA, CM, S1PTW, WnR, DFSC)
        let table: [(UInt32, Bool, Int, Bool, Int, Bool, Bool, Bool, Bool, Bool, Bool, Bool, UInt8)] = [
            (0, false, 1, false, 0, false, false, false, false, false, false, false, 0),
            // str x3, [x0]: ISV, SAS=3, SRT=3, SF, WnR, DFSC translation L3.
            (0x01C3_8047, true, 8, false, 3, true, false, false, false, false, false, true, 0x07),
            // ldrsh w30, [..]: ISV, SAS=1, SSE, SRT=30, DFSC translation L2.
            (0x017E_0006, true, 2, true, 30, false, false, false, false, false, false, false, 0x06),
            // ldar w31: ISV, SAS=2, SRT=31, AR.
            (0x019F_4006, true, 4, false, 31, false, true, false, false, false, false, false, 0x06),
            (1 << 10, false, 1, false, 0, false, false, true, false, false, false, false, 0),
            (1 << 9, false, 1, false, 0, false, false, false, true, false, false, false, 0),
            (1 << 8, false, 1, false, 0, false, false, false, false, true, false, false, 0),
            (1 << 7 | 0x3F, false, 1, false, 0, false, false, false, false, false, true, false, 0x3F),
        ]
        for (iss, valid, bytes, sse, srt, sf, ar, fnv, ea, cm, s1ptw, wnr, dfsc) in table {
            let d = DataAbortSyndrome(iss: iss)
            XCTAssertEqual(d.isValid, valid, "\(iss)")
            XCTAssertEqual(d.accessBytes, bytes, "\(iss)")
            XCTAssertEqual(d.signExtends, sse, "\(iss)")
            XCTAssertEqual(d.register, srt, "\(iss)")
            XCTAssertEqual(d.sixtyFourBitRegister, sf, "\(iss)")
            XCTAssertEqual(d.acquireRelease, ar, "\(iss)")
            XCTAssertEqual(d.farNotValid, fnv, "\(iss)")
            XCTAssertEqual(d.externalAbortType, ea, "\(iss)")
            XCTAssertEqual(d.isCacheMaintenance, cm, "\(iss)")
            XCTAssertEqual(d.onStage1Walk, s1ptw, "\(iss)")
            XCTAssertEqual(d.isWrite, wnr, "\(iss)")
            XCTAssertEqual(d.faultStatus, dfsc, "\(iss)")
        }
    }

    func testTakesTheISSOfAFullSyndrome() {
        // EC 0x24, IL, ISS as above.
        let esr = ExceptionSyndrome(raw: 0x24 << 26 | 1 << 25 | 0x01C3_8047)
        XCTAssertEqual(DataAbortSyndrome(esr), DataAbortSyndrome(iss: 0x01C3_8047))
    }
}
