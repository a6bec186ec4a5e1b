import XCTest
import AArch64

/// ESR_EL2 + HPFAR_EL2 + FAR_EL2 -> the abort (Arm ARM register descriptions
/// "ESR_EL2", "HPFAR_EL2": FIPA [47:4] holds IPA[55:12]).
final class Stage2AbortTests: XCTestCase {
    // EC [31:26], IL [25], FnV [10], S1PTW [7], WnR [6], DFSC/IFSC [5:0].
    static let dataAbortLower: UInt64 = 0x24 << 26 | 1 << 25
    static let instructionAbortLower: UInt64 = 0x20 << 26 | 1 << 25
    static let write: UInt64 = 1 << 6
    static let s1ptw: UInt64 = 1 << 7
    static let fnv: UInt64 = 1 << 10
    static let translationL3: UInt64 = 0b00_0111
    static let permissionL3: UInt64 = 0b00_1111

    func abort(_ esr: UInt64, hpfar: UInt64, far: UInt64) -> Stage2Abort? {
        Stage2Abort(syndrome: ExceptionSyndrome(raw: esr), hpfar: hpfar, far: far)
    }

    func testTranslationFaultIPAIsFIPAPageAndFAROffset() throws {
        // IPA 0x8010_0238: FIPA = 0x8_0100 at bit 4; FAR is the VA (stage 1 may map it elsewhere).
        let a = try XCTUnwrap(abort(Self.dataAbortLower | Self.translationL3, hpfar: 0x80_1000, far: 0xFFFF_0000_1234_5238))
        XCTAssertEqual(a.access, .read)
        XCTAssertEqual(a.fault, .translation(level: 3))
        XCTAssertEqual(a.page, GFN(0x8_0100))
        XCTAssertEqual(a.virtualAddress, 0xFFFF_0000_1234_5238)
        XCTAssertEqual(a.ipa, IPA(0x8010_0238))
        XCTAssertFalse(a.onStage1Walk)
    }

    func testFIPABitsAndNothingElse() throws {
        let rows: [(hpfar: UInt64, page: UInt64)] = [
            // All of FIPA [47:4]: IPA[55:12].
            (0x0000_FFFF_FFFF_FFF0, 0x0FFF_FFFF_FFFF),
            // NS [63], RES0 [62:48] and [3:0] set around one FIPA bit: only FIPA counts.
            (0xFFFF_0000_0000_001F, 0x1),
            (0x8000_0000_0000_0000, 0x0),
            (0x0000_8000_0000_0000, 0x0800_0000_0000),
        ]
        for row in rows {
            let a = try XCTUnwrap(abort(Self.dataAbortLower | Self.translationL3, hpfar: row.hpfar, far: 0xABC))
            XCTAssertEqual(a.page, GFN(row.page), "hpfar \(String(row.hpfar, radix: 16))")
            XCTAssertEqual(a.ipa, GFN(row.page).address.adding(0xABC))
        }
    }

    /// HPFAR_EL2 is UNKNOWN for a permission fault on the access itself, and
    /// for faults that are not translation/access flag/address size/permission.
    func testNoIPAWhereHPFARIsUnknown() throws {
        let permission = try XCTUnwrap(abort(Self.dataAbortLower | Self.write | Self.permissionL3,
                                             hpfar: 0x80_0020, far: 0x8000_2000))
        XCTAssertEqual(permission.access, .write)
        XCTAssertNil(permission.page)
        XCTAssertNil(permission.ipa)
        XCTAssertEqual(permission.virtualAddress, 0x8000_2000)
        let external = try XCTUnwrap(abort(Self.dataAbortLower | Self.fnv | 0b01_0000, hpfar: 0x80_0020, far: 0x1234))
        XCTAssertNil(external.page)
        XCTAssertNil(external.virtualAddress)
        XCTAssertNil(external.ipa)
    }

    /// On a stage-1 table walk HPFAR_EL2 holds the table's page (permission
    /// faults included), but FAR is the VA being translated: no byte IPA.
    func testStage1WalkGivesThePageOnly() throws {
        let a = try XCTUnwrap(abort(Self.dataAbortLower | Self.s1ptw | Self.permissionL3, hpfar: 0x40_0050, far: 0x7777))
        XCTAssertTrue(a.onStage1Walk)
        XCTAssertEqual(a.page, GFN(0x4_0005))
        XCTAssertNil(a.ipa)
    }

    func testFnVHidesFAR() throws {
        let a = try XCTUnwrap(abort(Self.dataAbortLower | Self.fnv | Self.translationL3, hpfar: 0x10, far: 0x123))
        XCTAssertEqual(a.page, GFN(1))
        XCTAssertNil(a.virtualAddress)
        XCTAssertNil(a.ipa)
    }

    func testInstructionAbort() throws {
        // WnR is not an instruction abort field: bit 6 set must not make it a write.
        let a = try XCTUnwrap(abort(Self.instructionAbortLower | Self.write | Self.translationL3, hpfar: 0x10, far: 0x1004))
        XCTAssertEqual(a.access, .instructionFetch)
        XCTAssertEqual(a.ipa, IPA(0x1004))
    }

    func testOnlyAbortsFromALowerELAreStage2Aborts() {
        let others: [UInt64] = [
            0x25 << 26 | 1 << 25 | Self.translationL3,   // data abort at EL2
            0x21 << 26 | 1 << 25 | Self.translationL3,   // instruction abort at EL2
            0x16 << 26 | 1 << 25,                        // HVC
            0,
        ]
        for esr in others { XCTAssertNil(abort(esr, hpfar: 0x10, far: 0), "esr \(String(esr, radix: 16))") }
    }
}
