import XCTest
import AArch64
@testable import Platform

/// The console node: `/chosen/stdout-path` (a path or an alias), else the
/// `serial0` alias; its kind from `compatible`, its registers translated
/// through the buses above it.
final class ConsoleDiscoveryTests: XCTestCase {
    func range(_ base: UInt64, _ size: UInt64) -> MemoryRange { MemoryRange(base: PhysAddr(base), size: size)! }

    /// Root (2 address cells, 1 size cell) with /soc translating bus address
    /// 0x7e000000 to CPU 0xfe000000, as on the BCM2711, and one UART in it.
    func tree(stdoutPath: String?, alias: Bool = true, compatible: [String],
              shift: UInt32? = nil, width: UInt32? = nil) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [2])
        b.property("#size-cells", cells: [1])
        if alias {
            b.begin("aliases")
            b.property("serial1", string: "/soc/serial@7e215040")
            b.property("serial0", string: "/soc/serial@7e215040")
            b.end()
        }
        if let stdoutPath {
            b.begin("chosen")
            b.property("stdout-path", string: stdoutPath)
            b.end()
        }
        b.begin("soc")
        b.property("#address-cells", cells: [1])
        b.property("#size-cells", cells: [1])
        b.property("ranges", cells: [0x7E00_0000, 0, 0xFE00_0000, 0x0180_0000])
        b.begin("serial@7e215040")
        b.property("compatible", compatible.flatMap { Array($0.utf8) + [0] })
        b.property("reg", cells: [0x7E21_5040, 0x40])
        if let shift { b.property("reg-shift", cells: [shift]) }
        if let width { b.property("reg-io-width", cells: [width]) }
        b.end()
        b.end()
        b.end()
        return b.blob()
    }

    func console(_ blob: [UInt8]) throws -> ConsoleUART? {
        try withTree(blob) { tree in try PlatformDescription(tree).console }
    }

    func testBCM2835MiniUARTThroughAnAliasAndSocRanges() throws {
        let c = try XCTUnwrap(console(tree(stdoutPath: "serial1:115200n8", compatible: ["brcm,bcm2835-aux-uart"])))
        XCTAssertEqual(c.registers, range(0xFE21_5040, 0x40))
        XCTAssertEqual(c.kind, .ns16550(NS16550Layout(regShift: 2, ioWidth: 4)!))
        XCTAssertEqual(c.source, .stdoutPath)
        XCTAssertFalse(c.isPL011)
    }

    func testEightTwoFiftyCompatiblesAndTheirDefaults() throws {
        for compatible in [["ns16550a"], ["fsl,ns16550", "ns16550a"], ["ns16550"],
                           ["rockchip,rk3399-uart", "snps,dw-apb-uart"]] {
            let c = try XCTUnwrap(console(tree(stdoutPath: "/soc/serial@7e215040", compatible: compatible)))
            XCTAssertEqual(c.kind, .ns16550(NS16550Layout(regShift: 0, ioWidth: 1)!), "\(compatible)")
        }
        let dw = try XCTUnwrap(console(tree(stdoutPath: "serial0", compatible: ["snps,dw-apb-uart"], shift: 2, width: 4)))
        XCTAssertEqual(dw.kind, .ns16550(NS16550Layout(regShift: 2, ioWidth: 4)!))
    }

    func testPL011AndSBSAAndUnsupported() throws {
        XCTAssertEqual(try console(tree(stdoutPath: "serial0", compatible: ["arm,pl011", "arm,primecell"]))?.kind, .pl011)
        XCTAssertEqual(try console(tree(stdoutPath: "serial0", compatible: ["arm,sbsa-uart"]))?.kind, .pl011)
        let other = try XCTUnwrap(console(tree(stdoutPath: "serial0", compatible: ["amlogic,meson-gx-uart"])))
        XCTAssertEqual(other.kind, .unsupported)
        XCTAssertEqual(other.registers, range(0xFE21_5040, 0x40))
    }

    func testWithoutStdoutPathTheSerial0AliasIsTheConsole() throws {
        let c = try XCTUnwrap(console(tree(stdoutPath: nil, compatible: ["ns16550a"])))
        XCTAssertEqual(c.source, .serial0Alias)
        XCTAssertEqual(c.registers, range(0xFE21_5040, 0x40))
        XCTAssertNil(try console(tree(stdoutPath: nil, alias: false, compatible: ["ns16550a"])))
    }

    func testBadLayoutAndUnresolvedPathAreTypedErrorsNamingNodeAndProperty() throws {
        let blob = tree(stdoutPath: "serial0", compatible: ["ns16550a"], shift: 0, width: 3)
        let uart = try withTree(blob) { try XCTUnwrap($0.node(atPath: "/soc/serial@7e215040")).offset }
        let error = try XCTUnwrap(parseError(blob))
        XCTAssertEqual(error, .unsupportedUARTLayout(node: uart, regShift: 0, ioWidth: 3))
        XCTAssertEqual(error.node, uart)
        XCTAssertEqual(error.property.map { "\($0)" }, "reg-io-width")

        let missing = tree(stdoutPath: "serial7", compatible: ["ns16550a"])
        let chosen = try withTree(missing) { try XCTUnwrap($0.node(atPath: "/chosen")).offset }
        let unresolved = try XCTUnwrap(parseError(missing))
        XCTAssertEqual(unresolved, .stdoutPathUnresolved(node: chosen))
        XCTAssertEqual(unresolved.node, chosen)
        XCTAssertEqual(unresolved.property.map { "\($0)" }, "stdout-path")
    }
}
