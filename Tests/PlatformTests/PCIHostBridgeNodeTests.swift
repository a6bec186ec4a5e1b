import XCTest
import AArch64
@testable import Platform

/// Every PCI host bridge a device tree describes, ECAM or not.
final class PCIHostBridgeNodeTests: XCTestCase {
    /// /soc (1 address cell) translating 0x0 -> 0x6_0000_0000 with a bridge in
    /// it, a PCI-PCI bridge below that, and a disabled second bridge.
    func blob(iommuMap: [UInt32]? = nil, msiMap: [UInt32]? = nil) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [2])
        b.property("#size-cells", cells: [2])
        b.begin("soc")
        b.property("#address-cells", cells: [1])
        b.property("#size-cells", cells: [1])
        b.property("ranges", cells: [0, 0x6, 0, 0x4000_0000])
        b.begin("pcie@100000")
        b.property("compatible", string: "brcm,bcm2711-pcie")
        b.property("device_type", string: "pci")
        b.property("#address-cells", cells: [3])
        b.property("#size-cells", cells: [2])
        b.property("reg", cells: [0x10_0000, 0x9310])
        // 32-bit memory: PCI 0xc0000000 at soc address 0x8000000, 64 MiB.
        b.property("ranges", cells: [0x0200_0000, 0, 0xC000_0000, 0x0800_0000, 0, 0x0400_0000])
        b.property("msi-parent", cells: [5])
        if let iommuMap { b.property("iommu-map", cells: iommuMap) }
        if let msiMap { b.property("msi-map", cells: msiMap) }
        b.begin("pci@0,0")
        b.property("device_type", string: "pci")
        b.property("#address-cells", cells: [3])
        b.property("#size-cells", cells: [2])
        b.end()
        b.end()
        b.begin("pcie@200000")
        b.property("device_type", string: "pci")
        b.property("status", string: "disabled")
        b.end()
        b.end()
        b.end()
        return b.blob()
    }

    func bridges(_ blob: [UInt8]) throws(FDTError) -> [PCIHostBridgeNode] {
        var result: [PCIHostBridgeNode] = []
        var failure: FDTError?
        blob.withUnsafeBytes { raw in
            do throws(FDTError) {
                let tree = try FlattenedDeviceTree(raw)
                for node in tree.pciHostBridgeNodes { result.append(try PCIHostBridgeNode(tree, node)) }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return result
    }

    func testOnlyEnabledHostBridgesWithWindowsTranslatedThroughTheSoc() throws {
        let found = try bridges(blob(iommuMap: [0, 9, 0x100, 0x10], msiMap: [0, 5, 0, 0x1_0000]))
        XCTAssertEqual(found.count, 1)
        let bridge = found[0]
        XCTAssertFalse(bridge.isECAMGeneric)
        XCTAssertEqual(Array(bridge.windows), [PCIWindow(space: .memory32, isPrefetchable: false, pciAddress: 0xC000_0000,
                                                         cpuAddress: PhysAddr(0x6_0800_0000), size: 0x0400_0000)])
        XCTAssertEqual(Array(bridge.iommuMap), [IOMMUMapEntry(ridBase: 0, target: 9, outputBase: 0x100, length: 0x10)])
        XCTAssertEqual(Array(bridge.msiMap), [MSIMapEntry(ridBase: 0, target: 5, outputBase: 0, length: 0x1_0000)])
        XCTAssertEqual(bridge.msiParent, 5)
    }

    func testMalformedAndOversizedMapsAreTypedErrors() throws {
        let node = try withTree(blob()) { try XCTUnwrap($0.node(atPath: "/soc/pcie@100000")).offset }
        XCTAssertThrowsError(try bridges(blob(msiMap: [0, 5, 0]))) {
            XCTAssertEqual($0 as? FDTError, .propertyLengthNotMultiple(node: node, length: 12, tupleBytes: 16))
        }
        let seventeen = (0...PCIHostBridgeNode.mapCapacity).flatMap { [UInt32($0) << 8, 5, UInt32($0) << 8, 0x100] as [UInt32] }
        XCTAssertThrowsError(try bridges(blob(msiMap: seventeen))) {
            XCTAssertEqual($0 as? FDTError, .tooManyMSIMapEntries(capacity: 16))
        }
        XCTAssertThrowsError(try bridges(blob(iommuMap: seventeen))) {
            XCTAssertEqual($0 as? FDTError, .tooManyIOMMUMapEntries(capacity: 16))
        }
    }

    func testAnInterruptParentCycleEndsWithoutAController() throws {
        var b = FDTBuilder()
        b.begin("")
        b.begin("a")
        b.property("phandle", cells: [1])
        b.property("interrupt-parent", cells: [2])
        b.end()
        b.begin("b")
        b.property("phandle", cells: [2])
        b.property("interrupt-parent", cells: [1])
        b.end()
        b.end()
        let parent = try withTree(b.blob()) { tree in tree.interruptParent(of: try XCTUnwrap(tree.node(atPath: "/a"))) }
        XCTAssertNil(parent)
    }
}
