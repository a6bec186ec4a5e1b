import XCTest
import AArch64
@testable import Platform

/// The MSI doorbell pages a PCI host bridge's MSI controllers expose.
final class MSIDoorbellsTests: XCTestCase {
    private func r(_ base: UInt64, _ size: UInt64) -> MemoryRange { MemoryRange(base: PhysAddr(raw: base), size: size)! }

    private func doorbells(_ bytes: [UInt8]) throws -> [MemoryRange] {
        try withTree(bytes) { tree in Array(try MSIDoorbells(tree).pages) }
    }

    private func doorbellError(_ bytes: [UInt8]) -> FDTError? {
        do {
            _ = try doorbells(bytes)
            return nil
        } catch let error as FDTError {
            return error
        } catch {
            XCTFail("\(error)")
            return nil
        }
    }

    /// QEMU virt with GICv2: `msi-map` names the v2m frame at 0x08020000,
    /// whose MSI_SETSPI_NS (0x40) is in its first page.
    func testQEMUVirtGICv2mFrame() throws {
        XCTAssertEqual(try doorbells(Fixture.bytes(Fixture.virt1G)), [r(0x0802_0000, 0x1000)])
    }

    /// QEMU virt with GICv3: the ITS at 0x08080000; GITS_TRANSLATER is at
    /// 0x10040, in the translation frame, not the control frame.
    func testQEMUVirtGICv3ITSTranslater() throws {
        XCTAssertEqual(try doorbells(Fixture.bytes("virt-gicv3-m1g-smp2.dtb")), [r(0x0809_0000, 0x1000)])
    }

    /// A bridge naming its controllers through `msi-parent` and `msi-map`,
    /// the ITS behind a bus translating 0 -> 0x6_0000_0000, one controller
    /// named twice (one page), and a controller of no known kind ignored.
    func blob(itsRegSize: UInt32 = 0x2_0000, itsStatus: String? = nil, msiMap: [UInt32] = [0, 7, 0, 0x100, 0x100, 8, 0, 0x100, 0x200, 9, 0, 0x100]) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [2])
        b.property("#size-cells", cells: [2])
        b.begin("soc")
        b.property("#address-cells", cells: [1])
        b.property("#size-cells", cells: [1])
        b.property("ranges", cells: [0, 0x6, 0, 0x4000_0000])
        b.begin("its@1000000")
        b.property("compatible", string: "arm,gic-v3-its")
        b.property("reg", cells: [0x100_0000, itsRegSize])
        b.property("phandle", cells: [7])
        if let itsStatus { b.property("status", string: itsStatus) }
        b.end()
        b.end()
        b.begin("v2m@2000000")
        b.property("compatible", string: "arm,gic-v2m-frame")
        b.property("reg", cells: [0, 0x200_0000, 0, 0x1000])
        b.property("phandle", cells: [8])
        b.end()
        b.begin("msi@3000000")
        b.property("compatible", string: "vendor,some-msi")
        b.property("reg", cells: [0, 0x300_0000, 0, 0x1000])
        b.property("phandle", cells: [9])
        b.end()
        b.begin("pcie@40000000")
        b.property("device_type", string: "pci")
        b.property("#address-cells", cells: [3])
        b.property("#size-cells", cells: [2])
        b.property("reg", cells: [0, 0x4000_0000, 0, 0x1000_0000])
        b.property("msi-parent", cells: [8])
        b.property("msi-map", cells: msiMap)
        b.end()
        b.end()
        return b.blob()
    }

    /// `n` GICv2m frames one page apart, all named by one bridge's `msi-map`.
    func manyFrames(_ n: Int) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [2])
        b.property("#size-cells", cells: [2])
        var map: [UInt32] = []
        for i in 0..<n {
            b.begin("v2m@\(0x200_0000 + i * 0x1000)")
            b.property("compatible", string: "arm,gic-v2m-frame")
            b.property("reg", cells: [0, UInt32(0x200_0000 + i * 0x1000), 0, 0x1000])
            b.property("phandle", cells: [UInt32(10 + i)])
            b.end()
            map += [UInt32(i * 0x10), UInt32(10 + i), 0, 0x10]
        }
        b.begin("pcie@40000000")
        b.property("device_type", string: "pci")
        b.property("#address-cells", cells: [3])
        b.property("#size-cells", cells: [2])
        b.property("reg", cells: [0, 0x4000_0000, 0, 0x1000_0000])
        b.property("msi-map", cells: map)
        b.end()
        b.end()
        return b.blob()
    }

    /// Eight doorbell pages fit; a ninth is the typed capacity error (the list
    /// has more slots than `capacity`, so the check is `add`'s own).
    func testNinthDoorbellIsRefused() throws {
        XCTAssertEqual(try doorbells(manyFrames(8)), (0..<8).map { r(0x200_0000 + UInt64($0) * 0x1000, 0x1000) })
        XCTAssertEqual(doorbellError(manyFrames(9)), .tooManyMSIDoorbells(capacity: 8))
    }

    func testControllersThroughMSIParentAndMSIMapTranslatedAndDeduplicated() throws {
        XCTAssertEqual(try doorbells(blob()), [r(0x200_0000, 0x1000), r(0x6_0101_0000, 0x1000)])
    }

    func testADisabledControllerHasNoDoorbell() throws {
        XCTAssertEqual(try doorbells(blob(itsStatus: "disabled")), [r(0x200_0000, 0x1000)])
    }

    /// A `reg` ending before GITS_TRANSLATER would have the page lie outside
    /// the controller: refused with the node and the size.
    func testARegTooShortForTheDoorbellIsRefused() throws {
        let bytes = blob(itsRegSize: 0x1_0040)
        guard case .msiDoorbellOutsideReg(_, let size)? = doorbellError(bytes) else {
            return XCTFail("\(String(describing: doorbellError(bytes)))")
        }
        XCTAssertEqual(size, 0x1_0040)
        XCTAssertEqual(doorbellError(bytes)?.property?.description, "reg")
        XCTAssertEqual(try doorbells(blob(itsRegSize: 0x1_0044)), [r(0x200_0000, 0x1000), r(0x6_0101_0000, 0x1000)])
    }

    func testADanglingControllerPhandleIsRefused() {
        XCTAssertEqual(doorbellError(blob(msiMap: [0, 42, 0, 0x100])), .phandleNotFound(42))
    }
}
