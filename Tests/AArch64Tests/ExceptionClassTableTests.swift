import XCTest
@testable import AArch64

/// ESR_ELx.EC (Arm ARM D23.2.41): the class names and the decoding tables.
final class ExceptionClassTableTests: XCTestCase {
    /// Names and decoding come from tables: pin each class's name and that
    /// decoding its EC gives the class in that table slot.
    func testClassNamesAndDecodingTables() {
        let names: [(UInt8, String)] = [
            (0x00, "unknown reason"), (0x01, "trapped WFI/WFE"), (0x0E, "illegal execution state"),
            (0x15, "SVC"), (0x16, "HVC"), (0x17, "SMC"), (0x18, "system register trap"),
            (0x20, "instruction abort (lower EL)"), (0x21, "instruction abort (EL2)"), (0x22, "PC alignment fault"),
            (0x24, "data abort (lower EL)"), (0x25, "data abort (EL2)"), (0x26, "SP alignment fault"),
            (0x2F, "SError"), (0x3C, "BRK (Swift trap)"), (0x3D, "other"), (0x3F, "other"),
        ]
        for (code, name) in names { XCTAssertEqual("\(ExceptionClass(code: code).name)", name, "EC \(code)") }
        for i in 0..<ExceptionClass.named.count {
            XCTAssertEqual(ExceptionClass.named[i].index, i)
            XCTAssertEqual(ExceptionClass(code: ExceptionClass.named[i].code).index, i)
        }
        XCTAssertEqual(ExceptionClass.other(0x3D).index, ExceptionClass.names.count - 1)
    }
}
