import XCTest
@testable import HostExits

final class ExceptionInjectionTests: XCTestCase {
    private let el1h: UInt64 = 0x3C5
    private let el1t: UInt64 = 0x3C4
    private let el0: UInt64 = 0x000
    private let aarch32User: UInt64 = 0x010
    private let span: UInt64 = 1 << 23
    private let dssbs: UInt64 = 1 << 44

    func testSyndromeVectorAndPSTATE() {
        // (kind, SPSR_EL2, SCTLR_EL1, ESR_EL1, vector offset, new PSTATE, FAR kept)
        let table: [(ExceptionInjection.Kind, UInt64, UInt64, UInt64, UInt64, UInt64, Bool)] = [
            // EC 0x25 | IL | WnR | FSC 0b010000; current EL with SP_EL1; SPAN=0 sets PAN.
            (.dataAbort(write: true), el1h, 0, 0x9600_0050, 0x200, 0x40_03C5, true),
            (.dataAbort(write: false), el1t, span, 0x9600_0010, 0x000, 0x3C5, true),
            // From EL0: EC 0x24, lower EL AArch64.
            (.dataAbort(write: false), el0, span, 0x9200_0010, 0x400, 0x3C5, true),
            (.dataAbort(write: true), aarch32User, span, 0x9200_0050, 0x600, 0x3C5, true),
            // Instruction aborts: EC 0x21 / 0x20.
            (.instructionAbort, el1h, span, 0x8600_0010, 0x200, 0x3C5, true),
            (.instructionAbort, el0, span, 0x8200_0010, 0x400, 0x3C5, true),
            // Undefined: EC 0, IL, FAR not set.
            (.undefinedInstruction, el1h, span, 0x0200_0000, 0x200, 0x3C5, false),
            (.undefinedInstruction, el0, span, 0x0200_0000, 0x400, 0x3C5, false),
            // SPAN=1 keeps the interrupted PAN; DSSBS sets SSBS; DIT is kept; NZCV and SS are not.
            (.dataAbort(write: false), el1h | 1 << 22, span, 0x9600_0010, 0x200, 0x40_03C5, true),
            (.dataAbort(write: false), el1h, span | dssbs, 0x9600_0010, 0x200, 0x13C5, true),
            (.dataAbort(write: false), el1h | 1 << 24 | 0xF000_0000 | 1 << 21, span, 0x9600_0010, 0x200, 0x100_03C5, true),
            // AArch32 EL0: PAN kept from bit 22, bit 24 is not DIT there.
            (.dataAbort(write: false), aarch32User | 1 << 22 | 1 << 24, span, 0x9200_0010, 0x600, 0x40_03C5, true),
        ]
        for (kind, spsr, sctlr, esr, vector, pstate, farKept) in table {
            let i = ExceptionInjection(kind, spsr: spsr, elr: 0xFFFF_8000_0010_0004, far: 0xDEAD_B000, sctlrEL1: sctlr)
            XCTAssertEqual(i.esr, esr, "\(kind) \(spsr)")
            XCTAssertEqual(i.vectorOffset, vector, "\(kind) \(spsr)")
            XCTAssertEqual(i.newPSTATE, pstate, "\(kind) \(spsr)")
            XCTAssertEqual(i.far, farKept ? 0xDEAD_B000 : 0, "\(kind) \(spsr)")
            XCTAssertEqual(i.returnAddress, 0xFFFF_8000_0010_0004)
            XCTAssertEqual(i.savedPSTATE, spsr)
        }
    }

    func testHandlerAddressIgnoresVBARLowBits() {
        let i = ExceptionInjection(.undefinedInstruction, spsr: el0, elr: 0, far: 0, sctlrEL1: 0)
        XCTAssertEqual(i.handlerAddress(vbarEL1: 0xFFFF_8000_1001_0800), 0xFFFF_8000_1001_0C00)
        XCTAssertEqual(i.handlerAddress(vbarEL1: 0xFFFF_8000_1001_0FFF), 0xFFFF_8000_1001_0C00)
        let j = ExceptionInjection(.undefinedInstruction, spsr: 0x10, elr: 0, far: 0, sctlrEL1: 0)
        XCTAssertEqual(j.handlerAddress(vbarEL1: 0xFFFF_FFFF_FFFF_F800), 0xFFFF_FFFF_FFFF_FE00)
    }

    func testConstantsPinned() {
        XCTAssertEqual(ExceptionInjection.currentELWithSP0, 0x000)
        XCTAssertEqual(ExceptionInjection.currentELWithSPx, 0x200)
        XCTAssertEqual(ExceptionInjection.lowerELAArch64, 0x400)
        XCTAssertEqual(ExceptionInjection.lowerELAArch32, 0x600)
        XCTAssertEqual(ExceptionInjection.synchronousExternalAbort, 0b01_0000)
    }
}
