import XCTest
import Platform

final class BootArgumentsTests: XCTestCase {
    private func tree(bootargs: [UInt8]?) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.begin("chosen")
        if let bootargs { b.property("bootargs", bootargs) }
        b.end()
        b.end()
        return b.blob()
    }

    private func contains(_ bootargs: String?, _ word: StaticString) throws -> Bool {
        try withTree(tree(bootargs: bootargs.map { Array($0.utf8) + [0] })) { $0.bootArgumentsContain(word) }
    }

    func testWholeWordsOnly() throws {
        XCTAssertTrue(try contains("hv.exit=semihosting", "hv.exit=semihosting"))
        XCTAssertTrue(try contains("console=ttyAMA0 hv.exit=semihosting hv.selftest=exception", "hv.exit=semihosting"))
        XCTAssertTrue(try contains("hv.exit=semihosting hv.selftest=exception", "hv.selftest=exception"))
        XCTAssertFalse(try contains("xhv.exit=semihosting", "hv.exit=semihosting"))
        XCTAssertFalse(try contains("hv.exit=semihosting2", "hv.exit=semihosting"))
        XCTAssertFalse(try contains("hv.exit=semi", "hv.exit=semihosting"))
        XCTAssertFalse(try contains("", "hv.exit=semihosting"))
        XCTAssertFalse(try contains(nil, "hv.exit=semihosting"))
    }

    func testSpacesAtTheEndsAndDoubled() throws {
        XCTAssertTrue(try contains("  hv.exit=semihosting  ", "hv.exit=semihosting"))
        XCTAssertTrue(try contains("a  hv.exit=semihosting", "hv.exit=semihosting"))
    }

    func testUnterminatedBootargsAreIgnoredNotTrusted() throws {
        // A hostile or broken blob: no NUL at the end of the property.
        let blob = tree(bootargs: Array("hv.exit=semihosting".utf8))
        try withTree(blob) { tree in
            XCTAssertNil(tree.bootArguments)
            XCTAssertFalse(tree.bootArgumentsContain("hv.exit=semihosting"))
        }
    }

    func testQEMUDumpsCarryNoBootargs() throws {
        // The fixtures were dumped without -append.
        try withTree(Fixture.bytes(Fixture.virt1G)) { XCTAssertNil($0.bootArguments) }
    }

    private func number(_ bootargs: String?, _ key: StaticString) throws -> UInt64? {
        try withTree(tree(bootargs: bootargs.map { Array($0.utf8) + [0] })) { $0.bootArgumentNumber(key) }
    }

    func testHexNumbers() throws {
        XCTAssertEqual(try number("hv.host=linux hv.kernel=0x50000000", "hv.kernel="), 0x5000_0000)
        XCTAssertEqual(try number("hv.kernel=0X4aBc", "hv.kernel="), 0x4ABC)
        XCTAssertEqual(try number("a hv.kernel=0xffffffffffffffff b", "hv.kernel="), UInt64.max)
        XCTAssertEqual(try number("hv.kernel=0x0", "hv.kernel="), 0)
        // The first word that starts with the key decides, even when it is bad.
        XCTAssertNil(try number("hv.kernel=0xzz hv.kernel=0x1000", "hv.kernel="))
    }

    func testHostileNumbersAreRefused() throws {
        XCTAssertNil(try number("hv.kernel=0x10000000000000000", "hv.kernel="))   // 17 digits
        XCTAssertNil(try number("hv.kernel=0x", "hv.kernel="))
        XCTAssertNil(try number("hv.kernel=1234", "hv.kernel="))
        XCTAssertNil(try number("hv.kernel=", "hv.kernel="))
        XCTAssertNil(try number("hv.kernel=0x12 ", "hv.kerne="))
        XCTAssertNil(try number("xhv.kernel=0x12", "hv.kernel="))
        XCTAssertNil(try number(nil, "hv.kernel="))
        XCTAssertNil(try withTree(tree(bootargs: Array("hv.kernel=0x12".utf8))) { $0.bootArgumentNumber("hv.kernel=") })
    }
}
