import XCTest
import AArch64

final class ExceptionSyndromeTests: XCTestCase {
    func testSwiftTrapIsBrk() {
        // `brk #1` at EL2, as Embedded Swift emits for a trap: EC 0x3C, IL 1, ISS = immediate.
        let esr = ExceptionSyndrome(raw: 0xF200_0001)
        XCTAssertEqual(esr.exceptionClass, .brk64)
        XCTAssertTrue(esr.is32BitInstruction)
        XCTAssertEqual(esr.iss, 1)
    }

    func testDataAbortFields() {
        // EC 0x25 (same EL), IL, WnR, DFSC 0x07 (translation fault, level 3).
        let esr = ExceptionSyndrome(raw: 0x9600_0047)
        XCTAssertEqual(esr.exceptionClass, .dataAbortSameEL)
        XCTAssertTrue(esr.isWrite)
        XCTAssertEqual(esr.faultStatus, 0x07)
        XCTAssertFalse(esr.onStage1Walk)
        // Lower EL, S1PTW set, read.
        let guest = ExceptionSyndrome(raw: 0x9200_0087)
        XCTAssertEqual(guest.exceptionClass, .dataAbortLowerEL)
        XCTAssertFalse(guest.isWrite)
        XCTAssertTrue(guest.onStage1Walk)
        XCTAssertTrue(guest.farIsValid)
        // FnV (ISS bit 10): a synchronous external abort whose FAR is not valid.
        let external = ExceptionSyndrome(raw: 0x9200_0410)
        XCTAssertFalse(external.farIsValid)
        XCTAssertEqual(external.fault, .other(0x10))
        XCTAssertFalse(ExceptionSyndrome(raw: 1 << 10).farIsValid)
        XCTAssertTrue(ExceptionSyndrome(raw: ~UInt64(1 << 10)).farIsValid)
    }

    func testClassTable() {
        let table: [(UInt8, ExceptionClass)] = [
            (0x00, .unknown), (0x01, .trappedWFxInstruction), (0x0E, .illegalExecutionState),
            (0x15, .svc64), (0x16, .hvc64), (0x17, .smc64), (0x18, .systemRegisterTrap),
            (0x20, .instructionAbortLowerEL), (0x21, .instructionAbortSameEL), (0x22, .pcAlignment),
            (0x24, .dataAbortLowerEL), (0x25, .dataAbortSameEL), (0x26, .spAlignment),
            (0x2F, .serror), (0x3C, .brk64), (0x3D, .other(0x3D)),
        ]
        for (code, expected) in table {
            let decoded = ExceptionSyndrome(raw: UInt64(code) << 26).exceptionClass
            XCTAssertEqual(decoded, expected, "EC \(code)")
            // `==` compares codes, so also pin the case itself (each named case has its own name).
            XCTAssertEqual("\(decoded.name)", "\(expected.name)", "EC \(code)")
            XCTAssertEqual(expected.code, code)
        }
    }

    func testClassEqualityIsByCode() {
        // ESR_ELx.EC is bits [31:26]: 64 codes, each decoding to one class and back.
        for a in UInt8(0)..<64 {
            XCTAssertEqual(ExceptionClass(code: a).code, a)
            for b in UInt8(0)..<64 {
                XCTAssertEqual(ExceptionClass(code: a) == ExceptionClass(code: b), a == b, "EC \(a) vs \(b)")
            }
        }
        // A hand-built `.other` with a named case's code is that class.
        XCTAssertEqual(ExceptionClass.other(0x16), .hvc64)
        XCTAssertNotEqual(ExceptionClass.other(0x3D), .other(0x3E))
    }

    func testFaultStatusCodes() {
        let table: [(UInt8, FaultStatus)] = [
            (0b00_0000, .addressSize(level: 0)), (0b00_0011, .addressSize(level: 3)),
            (0b00_0100, .translation(level: 0)), (0b00_0110, .translation(level: 2)), (0b00_0111, .translation(level: 3)),
            (0b00_1001, .accessFlag(level: 1)), (0b00_1011, .accessFlag(level: 3)),
            (0b00_1101, .permission(level: 1)), (0b00_1111, .permission(level: 3)),
            (0b01_0000, .other(0x10)), (0b10_0001, .other(0x21)),
        ]
        for (code, expected) in table { XCTAssertEqual(FaultStatus(code: code), expected, "code \(code)") }
        XCTAssertEqual(ExceptionSyndrome(raw: 0x9200_0087).fault, .translation(level: 3))
        XCTAssertTrue(FaultStatus(code: 0b00_0110).isTranslation)
        XCTAssertTrue(FaultStatus(code: 0b00_1111).isPermission)
        XCTAssertFalse(FaultStatus(code: 0b00_1111).isTranslation)
    }

    func testInjectedSyndromeBits() {
        // EC [31:26] | IL (bit 25) | WnR (bit 6) | DFSC/IFSC [5:0].
        let rows: [(UInt8, UInt8, Bool, UInt64)] = [
            (0x25, 0b01_0000, true, 0x9600_0050),    // data abort, same EL, external, write
            (0x24, 0b01_0000, false, 0x9200_0010),   // data abort, lower EL, external, read
            (0x20, 0b01_0000, false, 0x8200_0010),   // instruction abort, lower EL
            (0x00, 0, false, 0x0200_0000),           // unknown: IL only
            (0xFF, 0xFF, false, 0xFE00_003F),        // out-of-range fields are masked to their widths
        ]
        for (ec, fsc, write, raw) in rows {
            let esr = ExceptionSyndrome(injecting: ec, faultStatus: fsc, write: write)
            XCTAssertEqual(esr.raw, raw, "EC \(ec)")
            XCTAssertTrue(esr.is32BitInstruction)
            XCTAssertEqual(esr.isWrite, write)
        }
    }
}
