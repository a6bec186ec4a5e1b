import XCTest
import AArch64
import Translation

/// The decision for each kind of stage-2 abort, as a table: syndrome and
/// fault registers in, the action the exception handler applies out.
final class Stage2FaultPolicyTests: XCTestCase {
    enum Origin: UInt64 {
        case data = 0x24          // EC: data abort from a lower EL
        case instruction = 0x20   // EC: instruction abort from a lower EL
    }
    struct ISS: OptionSet {
        let rawValue: UInt64
        static let write = ISS(rawValue: 1 << 6)       // WnR
        static let tableWalk = ISS(rawValue: 1 << 7)   // S1PTW
        static let farInvalid = ISS(rawValue: 1 << 10) // FnV
        static let long = ISS(rawValue: 1 << 25)       // IL: a 32-bit instruction
    }

    /// ESR_EL2 for an abort: EC [31:26], IL [25], the ISS flags, DFSC/IFSC [5:0].
    func esr(_ origin: Origin, _ status: UInt64, _ flags: ISS = [], long: Bool = true) -> UInt64 {
        origin.rawValue << 26 | flags.union(long ? .long : []).rawValue | status
    }

    /// IPA 0x8010_0000 onwards, four pages, as the board's guest has it.
    let policy = Stage2FaultPolicy(populatingOnDemand: GFN(0x8_0100), count: 4)

    func action(_ esr: UInt64, hpfar: UInt64 = 0, far: UInt64 = 0, elr: UInt64 = 0x8000_0040,
                file: StaticString = #filePath, line: UInt = #line) throws -> Stage2FaultAction {
        let abort = try XCTUnwrap(Stage2Abort(syndrome: ExceptionSyndrome(raw: esr), hpfar: hpfar, far: far),
                                  file: file, line: line)
        return policy.action(for: abort, elr: elr)
    }

    func hpfar(_ gfn: UInt64) -> UInt64 { gfn << 4 }

    func testWriteToAReadOnlyPageIsSkipped() throws {
        XCTAssertEqual(try action(esr(.data, 0b00_1111, [.write]), far: 0x8000_2000),
                       .skipInstruction(resumeAt: 0x8000_0044))
        // Level does not matter; a 16-bit T32 instruction (IL = 0) is 2 bytes.
        XCTAssertEqual(try action(esr(.data, 0b00_1101, [.write])), .skipInstruction(resumeAt: 0x8000_0044))
        XCTAssertEqual(try action(esr(.data, 0b00_1111, [.write], long: false)), .skipInstruction(resumeAt: 0x8000_0042))
    }

    /// The guest owns ELR: an instruction at the top of the address space wraps, it does not trap.
    func testSkipWrapsAtTheTopOfTheAddressSpace() throws {
        XCTAssertEqual(try action(esr(.data, 0b00_1111, [.write]), elr: 0xFFFF_FFFF_FFFF_FFFC),
                       .skipInstruction(resumeAt: 0))
        XCTAssertEqual(try action(esr(.data, 0b00_1111, [.write]), elr: .max),
                       .skipInstruction(resumeAt: 3))
    }

    func testTranslationFaultInsideTheWindowIsPopulated() throws {
        let rows: [(UInt64, UInt64, Stage2FaultAction)] = [
            (esr(.data, 0b00_0111), 0x8_0100, .populate(GFN(0x8_0100))),
            (esr(.data, 0b00_0110, [.write]), 0x8_0103, .populate(GFN(0x8_0103))),
            (esr(.instruction, 0b00_0111), 0x8_0101, .populate(GFN(0x8_0101))),
            // A stage-1 table in the window.
            (esr(.data, 0b00_0101, [.tableWalk]), 0x8_0102, .populate(GFN(0x8_0102))),
            // FAR not valid: HPFAR still names the page.
            (esr(.data, 0b00_0111, [.farInvalid]), 0x8_0100, .populate(GFN(0x8_0100))),
            // Just outside, either side.
            (esr(.data, 0b00_0111), 0x8_00FF, .injectAbort),
            (esr(.data, 0b00_0111), 0x8_0104, .injectAbort),
            (esr(.data, 0b00_0111), 0, .injectAbort),
        ]
        for (esr, gfn, expected) in rows {
            XCTAssertEqual(try action(esr, hpfar: hpfar(gfn), far: 0x238), expected, "gfn \(String(gfn, radix: 16))")
        }
    }

    func testEverythingElseIsAnAbortForTheGuest() throws {
        let inWindow = hpfar(0x8_0100)
        let rows: [(UInt64, StaticString)] = [
            (esr(.data, 0b00_1111), "read the permissions forbid"),
            (esr(.instruction, 0b00_1111), "fetch from a non-executable page"),
            (esr(.data, 0b00_1111, [.tableWalk, .write]), "stage-1 walk into a read-only page"),
            (esr(.data, 0b00_1011), "access flag fault"),
            (esr(.data, 0b00_0001), "address size fault"),
            (esr(.data, 0b01_0000, [.farInvalid]), "synchronous external abort"),
        ]
        for (esr, what) in rows {
            XCTAssertEqual(try action(esr, hpfar: inWindow, far: 0x8010_0000), .injectAbort, "\(what)")
        }
    }

    func testWindowEdgesDoNotWrap() {
        let top = Stage2FaultPolicy(populatingOnDemand: GFN(UInt64.max - 1), count: 2)
        XCTAssertTrue(top.populatesOnDemand(GFN(UInt64.max)))
        XCTAssertFalse(top.populatesOnDemand(GFN(0)))
        let empty = Stage2FaultPolicy(populatingOnDemand: GFN(5), count: 0)
        XCTAssertFalse(empty.populatesOnDemand(GFN(5)))
    }
}
