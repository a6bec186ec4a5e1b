import AArch64
import HostFakes
import XCTest
@testable import Platform

final class HostDeviceTreeTests: XCTestCase {
    private func r(_ base: UInt64, _ size: UInt64) -> MemoryRange { MemoryRange(base: PhysAddr(raw: base), size: size)! }

    private func edits() -> HostDeviceTreeEdits {
        var edits = HostDeviceTreeEdits(controlDevice: r(0x0A10_0000, 0x1000), dmaTestRegion: r(0x7FF0_0000, 0x1_0000))
        XCTAssertTrue(edits.reserveForHypervisor(r(0x4008_0000, 0x40_0000)))
        XCTAssertTrue(edits.reserveForHypervisor(r(0x7000_0000, 0x20_0000)))
        return edits
    }

    /// Derives the host tree from `source` into a buffer of `capacity` bytes.
    private func derive(_ source: [UInt8], _ edits: HostDeviceTreeEdits, capacity: Int = 1 << 20) -> Result<[UInt8], FDTWriteError> {
        var output = [UInt8](repeating: 0x5A, count: capacity)
        let result: Result<Int, FDTWriteError> = source.withUnsafeBytes { raw in
            output.withUnsafeMutableBytes { out in
                do throws(FDTWriteError) {
                    let tree: FlattenedDeviceTree
                    do throws(FDTError) { tree = try FlattenedDeviceTree(raw) } catch { throw .source(error) }
                    return .success(try HostDeviceTree.derive(from: tree, edits: edits, into: out))
                } catch {
                    return .failure(error)
                }
            }
        }
        switch result {
        case .success(let size): return .success(Array(output[0..<size]))
        case .failure(let error):
            XCTAssertEqual(Array(output.prefix(min(40, capacity))), [UInt8](repeating: 0x5A, count: min(40, capacity)))
            return .failure(error)
        }
    }

    func testEveryQEMUDumpLosesTheSMMUAndGainsTheHostNodes() throws {
        for name in Fixture.qemuDumps {
            let source = Fixture.bytes(name)
            let blob = try derive(source, edits()).get()
            try withTree(blob) { tree in
                // No SMMU node, no IOMMU reference anywhere.
                for node in tree.nodes {
                    XCTAssertFalse(tree.isCompatible(node, with: "arm,smmu-v3"), name)
                    for property in tree.properties(of: node) {
                        XCTAssertFalse(HostDeviceTree.isIOMMUReference(tree.name(of: property)), name)
                    }
                }
                let platform = try PlatformDescription(tree)
                XCTAssertEqual(platform.smmus.count, 0, name)
                // /chosen kept byte for byte.
                try withTree(source) { original in
                    let before = try XCTUnwrap(original.node(atPath: "/chosen"))
                    let after = try XCTUnwrap(tree.node(atPath: "/chosen"))
                    let a = original.properties(of: before).map { (Array(original.name(of: $0)), Array(original.value(of: $0))) }
                    let b = tree.properties(of: after).map { (Array(tree.name(of: $0)), Array(tree.value(of: $0))) }
                    XCTAssertEqual(a.map(\.0), b.map(\.0), name)
                    XCTAssertEqual(a.map(\.1), b.map(\.1), name)
                    // The same nodes minus the SMMU, plus reserved-memory with three children and the control node.
                    XCTAssertEqual(Array(tree.nodes).count, Array(original.nodes).count - 1 + 1 + 3 + 1, name)
                    XCTAssertEqual(platform.memoryBanks.first, try PlatformDescription(original).memoryBanks.first)
                }
                // Reserved regions, as the parser reads them back.
                XCTAssertEqual(platform.reservedMemory.map(\.range),
                               [r(0x4008_0000, 0x40_0000), r(0x7000_0000, 0x20_0000), r(0x7FF0_0000, 0x1_0000)], name)
                XCTAssertTrue(platform.reservedMemory.allSatisfy(\.noMap), name)
                let reserved = try XCTUnwrap(tree.node(atPath: "/reserved-memory"))
                XCTAssertEqual(try tree.addressCells(of: reserved), 2)
                XCTAssertEqual(try tree.sizeCells(of: reserved), 2)
                XCTAssertEqual(tree.property("ranges", of: reserved)?.length, 0)
                let control = try XCTUnwrap(tree.node(atPath: "/hvmem-control@a100000"))
                XCTAssertTrue(tree.isCompatible(control, with: "hvmem,control-v1"))
                XCTAssertEqual(Array(tree.value(of: try XCTUnwrap(tree.property("reg", of: control)))),
                               [0, 0, 0, 0, 0x0A, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0])
            }
        }
    }

    func testDtcSeesTheHostTree() throws {
        let blob = try derive(Fixture.bytes(Fixture.virt1G), edits()).get()
        let dts = try dtc(blob)
        XCTAssertFalse(dts.contains("smmu"), dts)
        XCTAssertFalse(dts.contains("iommu-map"), dts)
        XCTAssertTrue(dts.contains("hypervisor@40080000 {"), dts)
        XCTAssertTrue(dts.contains("reg = <0x00 0x40080000 0x00 0x400000>;"), dts)
        XCTAssertTrue(dts.contains("hvmem-dma-test@7ff00000 {"), dts)
        XCTAssertTrue(dts.contains("no-map;"), dts)
        XCTAssertTrue(dts.contains("compatible = \"hvmem,control-v1\";"), dts)
    }

    func testExistingReservedMemoryGetsChildrenInItsOwnCells() throws {
        // The hand-made tree has /reserved-memory (two cells each), a
        // non-coherent SMMU and /memreserve/ entries.
        let source = Fixture.bytes(Fixture.sparse)
        var small = HostDeviceTreeEdits(controlDevice: r(0x0A10_0000, 0x1000))
        small.reserveForHypervisor(r(0x4010_0000, 0x1000))
        let blob = try derive(source, small).get()
        try withTree(source) { original in
            try withTree(blob) { tree in
                XCTAssertEqual(Array(tree.memoryReservations), Array(original.memoryReservations))
                let reserved = try XCTUnwrap(tree.node(atPath: "/reserved-memory"))
                let oldReserved = try XCTUnwrap(original.node(atPath: "/reserved-memory"))
                XCTAssertEqual(try tree.addressCells(of: reserved), try original.addressCells(of: oldReserved))
                XCTAssertEqual(Array(tree.children(of: reserved)).count, Array(original.children(of: oldReserved)).count + 1)
                let platform = try PlatformDescription(tree)
                XCTAssertTrue(platform.reservedMemory.contains { $0.range == r(0x4010_0000, 0x1000) && $0.noMap })
                XCTAssertEqual(platform.smmus.count, 0)
            }
        }
    }

    func testEveryTooSmallBufferIsATypedErrorWithNoBlobLeftBehind() throws {
        let source = Fixture.bytes(Fixture.virt1G)
        let full = try derive(source, edits()).get()
        // A sample of capacities below the size (every one would take minutes on 1 MiB fixtures).
        for capacity in [0, 1, 39, 40, 56, 57, 100, 1000, full.count / 2, full.count - 5, full.count - 1] {
            switch derive(source, edits(), capacity: capacity) {
            case .success: XCTFail("capacity \(capacity) succeeded")
            case .failure(let error): XCTAssertEqual(error, .bufferTooSmall(capacity: capacity))
            }
        }
        XCTAssertEqual(try derive(source, edits(), capacity: full.count).get(), full)
    }

    /// A 32-bit tree: root and /reserved-memory with one cell each.
    private func oneCellTree() -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [1])
        b.property("#size-cells", cells: [1])
        b.begin("memory@40000000")
        b.property("device_type", string: "memory")
        b.property("reg", cells: [0x4000_0000, 0x4000_0000])
        b.end()
        b.begin("reserved-memory")
        b.property("#address-cells", cells: [1])
        b.property("#size-cells", cells: [1])
        b.property("ranges", [])
        b.end()
        b.end()
        return b.blob()
    }

    func testChosenKeepsBootargsAndInitrd() throws {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [2])
        b.property("#size-cells", cells: [2])
        b.begin("chosen")
        b.property("bootargs", string: "console=ttyAMA0 rdinit=/init")
        b.property("linux,initrd-start", cells: [0, 0x4800_0000])
        b.property("linux,initrd-end", cells: [0, 0x4880_0000])
        b.end()
        b.begin("smmuv3@9050000")
        b.property("compatible", string: "arm,smmu-v3")
        b.begin("child")
        b.end()
        b.end()
        b.begin("pcie@10000000")
        b.property("iommu-map", cells: [0, 1, 0, 0x10000])
        b.property("iommu-map-mask", cells: [0xFFFF])
        b.property("msi-map", cells: [0, 2, 0, 0x10000])
        b.end()
        b.begin("dev")
        b.property("iommus", cells: [1, 8])
        b.end()
        b.end()
        let blob = try derive(b.blob(), edits()).get()
        let dts = try dtc(blob)
        XCTAssertTrue(dts.contains("bootargs = \"console=ttyAMA0 rdinit=/init\";"), dts)
        XCTAssertTrue(dts.contains("linux,initrd-start = <0x00 0x48000000>;"), dts)
        XCTAssertTrue(dts.contains("linux,initrd-end = <0x00 0x48800000>;"), dts)
        XCTAssertTrue(dts.contains("msi-map"), dts)
        XCTAssertTrue(dts.contains("pcie@10000000 {"), dts)
        XCTAssertTrue(dts.contains("dev {"), dts)
        for gone in ["smmu", "child", "iommu-map", "iommus"] { XCTAssertFalse(dts.contains(gone), "\(gone) in \(dts)") }
    }

    func testOneCellTreesGetOneCellRegs() throws {
        var small = HostDeviceTreeEdits(controlDevice: r(0x0A10_0000, 0x1000), dmaTestRegion: r(0x7FF0_0000, 0x1000))
        small.reserveForHypervisor(r(0x4010_0000, 0x2000))
        let blob = try derive(oneCellTree(), small).get()
        try withTree(blob) { tree in
            let node = try XCTUnwrap(tree.node(atPath: "/reserved-memory/hypervisor@40100000"))
            XCTAssertEqual(Array(tree.value(of: try XCTUnwrap(tree.property("reg", of: node)))),
                           [0x40, 0x10, 0, 0, 0, 0, 0x20, 0])
            let control = try XCTUnwrap(tree.node(atPath: "/hvmem-control@a100000"))
            XCTAssertEqual(Array(tree.value(of: try XCTUnwrap(tree.property("reg", of: control)))),
                           [0x0A, 0x10, 0, 0, 0, 0, 0x10, 0])
            XCTAssertEqual(try PlatformDescription(tree).reservedMemory.map(\.range),
                           [r(0x4010_0000, 0x2000), r(0x7FF0_0000, 0x1000)])
        }
    }

    func testValuesTooWideForTheExistingCellsAreRefused() {
        let table: [(HostDeviceTreeEdits, FDTWriteError)] = {
            var wideReserved = HostDeviceTreeEdits(controlDevice: r(0x0A10_0000, 0x1000))
            wideReserved.reserveForHypervisor(r(0x1_0000_0000, 0x1000))
            let wideControl = HostDeviceTreeEdits(controlDevice: r(0x40_0000_0000, 0x1000))
            let wideTest = HostDeviceTreeEdits(controlDevice: r(0x0A10_0000, 0x1000), dmaTestRegion: r(0xFFFF_F000, 0x1_0000_0000))
            return [(wideReserved, .valueDoesNotFitCells(0x1_0000_0000, cells: 1)),
                    (wideControl, .valueDoesNotFitCells(0x40_0000_0000, cells: 1)),
                    (wideTest, .valueDoesNotFitCells(0x1_0000_0000, cells: 1))]
        }()
        let source = oneCellTree()
        for (edits, expected) in table {
            switch derive(source, edits) {
            case .success: XCTFail("a 64-bit value fitted one cell")
            case .failure(let error): XCTAssertEqual(error, expected)
            }
        }
    }

    func testMalformedSourceCellsAreReportedAsSourceErrors() {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", [0, 2])
        b.end()
        switch derive(b.blob(), edits()) {
        case .success: XCTFail("a 2-byte #address-cells was accepted")
        case .failure(let error): XCTAssertEqual(error, .source(.propertyNotU32(node: 56, length: 2, property: 64)))
        }
    }

    func testOverlappingBuffersAreRefusedAndTheSourceIsUnchanged() throws {
        var bytes = Fixture.bytes(Fixture.virt1G)
        let before = bytes
        let result: FDTWriteError? = bytes.withUnsafeMutableBytes { raw in
            do throws(FDTWriteError) {
                let tree: FlattenedDeviceTree
                do throws(FDTError) { tree = try FlattenedDeviceTree(UnsafeRawBufferPointer(raw)) } catch { throw .source(error) }
                _ = try HostDeviceTree.derive(from: tree, edits: edits(), into: UnsafeMutableRawBufferPointer(rebasing: raw[1000...]))
                return nil
            } catch {
                return error
            }
        }
        XCTAssertEqual(result, .buffersOverlap)
        XCTAssertEqual(bytes, before)
    }

    func testHypervisorListIsBounded() {
        var edits = HostDeviceTreeEdits(controlDevice: r(0x0A10_0000, 0x1000))
        for i in 0..<16 { XCTAssertTrue(edits.reserveForHypervisor(r(0x4000_0000 + UInt64(i) << 20, 0x1000))) }
        XCTAssertFalse(edits.reserveForHypervisor(r(0x5000_0000, 0x1000)))
        XCTAssertEqual(edits.hypervisorRanges.count, 16)
    }

    func testCorruptedSourcesGiveAParsableTreeOrATypedError() {
        // Random byte flips in the used part of a QEMU dump: whatever the
        // parser accepts, the derivation turns into a tree the parser accepts
        // again, or refuses with a typed error; it never traps.
        let original = Fixture.bytes(Fixture.virt1G)
        let used = Int(original.be32(at: 12)) + Int(original.be32(at: 32))
        var rng = SplitMix64(seed: 0xD7B)
        var derived = 0
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<(1 + rng.next() % 4) {
                bytes[Int(rng.next() % UInt64(used))] = UInt8(truncatingIfNeeded: rng.next())
            }
            guard (try? withTree(bytes) { _ in true }) == true else { continue }
            switch derive(bytes, edits(), capacity: 1 << 16) {
            case .success(let blob):
                derived += 1
                XCTAssertNoThrow(try withTree(blob) { _ in })
            case .failure:
                break
            }
        }
        XCTAssertGreaterThan(derived, 50)
    }
}
