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

/// SMMUv3 interrupts follow the interrupt tree: a GIC parent's specifier
/// width decides where each named interrupt is; a parent that is not a GIC
/// (HiSilicon's mbigen, 2 cells) leaves them unknown instead of misreading.
final class SMMUInterruptParentTests: XCTestCase {
    func blob(parentIsGIC: Bool, cells: UInt32, interrupts: [UInt32]) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [2])
        b.property("#size-cells", cells: [2])
        b.property("interrupt-parent", cells: [1])
        b.begin("gic@8000000")
        b.property("compatible", string: "arm,gic-v3")
        b.property("#interrupt-cells", cells: [parentIsGIC ? cells : 3])
        b.property("interrupt-controller", [])
        b.property("phandle", cells: [1])
        b.end()
        b.begin("mbigen@a0080000")
        b.property("compatible", string: "hisilicon,mbigen-v2")
        b.property("#interrupt-cells", cells: [2])
        b.property("phandle", cells: [2])
        b.end()
        b.begin("iommu@9050000")
        b.property("compatible", string: "arm,smmu-v3")
        b.property("reg", cells: [0, 0x0905_0000, 0, 0x2_0000])
        if !parentIsGIC { b.property("interrupt-parent", cells: [2]) }
        b.property("interrupts", cells: interrupts)
        b.property("interrupt-names", Array("eventq\0gerror\0priq\0".utf8))
        b.property("msi-parent", cells: [7, 0x1_0000])
        b.end()
        b.end()
        return b.blob()
    }

    func smmu(_ blob: [UInt8]) throws -> SMMUDescription {
        try withTree(blob) { tree in try XCTUnwrap(PlatformDescription(tree).smmus.first) }
    }

    func testGICv3WithFourCellSpecifiers() throws {
        // (type, number, flags, partition): SPI 74, SPI 79, PPI 3.
        let s = try smmu(blob(parentIsGIC: true, cells: 4, interrupts: [0, 74, 1, 0, 0, 79, 1, 0, 1, 3, 4, 0]))
        XCTAssertEqual(s.interrupts.eventQueue, 106)
        XCTAssertEqual(s.interrupts.globalError, 111)
        XCTAssertEqual(s.interrupts.priorityQueue, 19)
        XCTAssertNil(s.interrupts.commandSync)
        XCTAssertEqual(s.msiParent, 7)
    }

    func testANonGICParentLeavesInterruptsUnknown() throws {
        // Six cells read as two 3-cell GIC specifiers would give a bogus PPI.
        let s = try smmu(blob(parentIsGIC: false, cells: 2, interrupts: [0x2DD, 1, 0x2DE, 1, 0x2DF, 1]))
        XCTAssertEqual(s.interrupts, SMMUInterrupts())
        XCTAssertEqual(s.registers, MemoryRange(base: PhysAddr(0x0905_0000), size: 0x2_0000)!)
    }
}
