import XCTest
import AArch64
@testable import Platform

/// Device trees that are well formed token by token but describe hardware
/// that cannot exist, and what the board prints about each.
final class HostileTreeTests: XCTestCase {
    /// Root with 2/2 cells, memory banks as given, optionally an SMMU and a host bridge.
    func tree(banks: [(UInt64, UInt64)], smmuReg: (UInt64, UInt64)? = nil,
              iommuMap: [UInt32]? = nil) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [2])
        b.property("#size-cells", cells: [2])
        b.begin("memory@0")
        b.property("device_type", string: "memory")
        b.property("reg", cells: banks.flatMap { [UInt32($0.0 >> 32), UInt32($0.0 & 0xFFFF_FFFF),
                                                  UInt32($0.1 >> 32), UInt32($0.1 & 0xFFFF_FFFF)] })
        b.end()
        if let smmuReg {
            b.begin("smmuv3@9050000")
            b.property("compatible", string: "arm,smmu-v3")
            b.property("reg", cells: [UInt32(smmuReg.0 >> 32), UInt32(smmuReg.0 & 0xFFFF_FFFF),
                                      UInt32(smmuReg.1 >> 32), UInt32(smmuReg.1 & 0xFFFF_FFFF)])
            b.property("#iommu-cells", cells: [1])
            b.property("phandle", cells: [7])
            b.end()
        }
        if let iommuMap {
            b.begin("pcie@10000000")
            b.property("compatible", string: "pci-host-ecam-generic")
            b.property("reg", cells: [0x40, 0x1000_0000, 0, 0x1000_0000])
            b.property("iommu-map", cells: iommuMap)
            b.end()
        }
        b.end()
        return b.blob()
    }

    func description(_ bytes: [UInt8]) throws -> PlatformDescription {
        try withTree(bytes) { tree in try PlatformDescription(tree) }
    }

    /// The example: a bank of 2^64 - 4 GiB parses (it does not wrap)
    /// but lies beyond any PARange; refused before anything counts its frames.
    func testBankBeyondPARangeIsRefused() throws {
        let huge: UInt64 = 0xFFFF_FFFF_0000_0000
        let p = try description(tree(banks: [(0x4000_0000, huge - 0x4000_0000)]))
        for bits in [32, 36, 40, 44, 48, 52] {
            XCTAssertEqual(thrownError(FDTError.self) { try p.checkMemory(physicalAddressBits: bits) },
                           .memoryBeyondPhysicalRange(base: 0x4000_0000, size: huge - 0x4000_0000, bits: bits))
        }
        // Ending exactly at 2^40 is inside a 40-bit PARange; one byte more is not.
        let edge = try description(tree(banks: [(0x4000_0000, (1 << 40) - 0x4000_0000)]))
        XCTAssertNoThrow(try edge.checkMemory(physicalAddressBits: 40))
        XCTAssertEqual(thrownError(FDTError.self) { try edge.checkMemory(physicalAddressBits: 39) },
                       .memoryBeyondPhysicalRange(base: 0x4000_0000, size: (1 << 40) - 0x4000_0000, bits: 39))
        let above = try description(tree(banks: [(1 << 40, 0x1000)]))
        XCTAssertEqual(thrownError(FDTError.self) { try above.checkMemory(physicalAddressBits: 40) },
                       .memoryBeyondPhysicalRange(base: 1 << 40, size: 0x1000, bits: 40))
    }

    func testQEMUDumpsFitTheirPARange() throws {
        for name in Fixture.qemuDumps {
            let p = try withTree(Fixture.bytes(name)) { tree in try PlatformDescription(tree) }
            XCTAssertNoThrow(try p.checkMemory(physicalAddressBits: 40), name)
        }
    }

    func testOverlappingBanksAreRefused() {
        XCTAssertEqual(parseError(tree(banks: [(0x4000_0000, 0x4000_0000), (0x7FFF_F000, 0x2000)])),
                       .overlappingMemoryBanks(first: 0x4000_0000, second: 0x7FFF_F000))
        // Adjacent is fine.
        XCTAssertNil(parseError(tree(banks: [(0x4000_0000, 0x4000_0000), (0x8000_0000, 0x2000)])))
    }

    func testBankOverDeviceRegistersIsRefusedByTheBoardCheck() throws {
        // Described (a firmware-patched board tree looks like this), refused before anything is mapped.
        let p = try description(tree(banks: [(0x0800_0000, 0x4000_0000)], smmuReg: (0x0905_0000, 0x2_0000)))
        XCTAssertEqual(thrownError(FDTError.self) { try p.checkMemory(physicalAddressBits: 48) },
                       .memoryOverlapsDevice(bank: 0x0800_0000, device: 0x0905_0000))
        let clear = try description(tree(banks: [(0x4000_0000, 0x4000_0000)], smmuReg: (0x0905_0000, 0x2_0000)))
        XCTAssertNoThrow(try clear.checkMemory(physicalAddressBits: 48))
    }

    func testZeroSizeSMMURegisterBlockIsRefused() throws {
        let bytes = tree(banks: [(0x4000_0000, 0x1000_0000)], smmuReg: (0x0905_0000, 0))
        let node = try withTree(bytes) { tree in try XCTUnwrap(tree.node(atPath: "/smmuv3@9050000")).offset }
        XCTAssertEqual(parseError(bytes), .emptyRegister(node: node))
    }

    func testIOMMUMapWhoseStreamIDsWrapIsRefused() throws {
        // rid 0..0xFFFF -> sid 0xFFFF_FF00..: the 257th requester would be StreamID 0.
        let bytes = tree(banks: [(0x4000_0000, 0x1000_0000)], smmuReg: (0x0905_0000, 0x2_0000),
                         iommuMap: [0, 7, 0xFFFF_FF00, 0x1_0000])
        let node = try withTree(bytes) { tree in try XCTUnwrap(tree.node(atPath: "/pcie@10000000")).offset }
        XCTAssertEqual(parseError(bytes), .iommuMapOverflows(node: node, ridBase: 0, sidBase: 0xFFFF_FF00,
                                                            length: 0x1_0000))
        // Requester IDs that wrap are refused the same way.
        XCTAssertEqual(parseError(tree(banks: [(0x4000_0000, 0x1000_0000)], smmuReg: (0x0905_0000, 0x2_0000),
                                       iommuMap: [0xFFFF_FFF0, 7, 0, 0x20])),
                       .iommuMapOverflows(node: node, ridBase: 0xFFFF_FFF0, sidBase: 0, length: 0x20))
        // The last StreamID exactly at 2^32 - 1 is fine, and maps where it says.
        let p = try description(tree(banks: [(0x4000_0000, 0x1000_0000)], smmuReg: (0x0905_0000, 0x2_0000),
                                     iommuMap: [0, 7, 0xFFFF_0000, 0x1_0000]))
        XCTAssertEqual(p.pciHostBridge?.iommuTarget(forRequesterID: 0xFFFF),
                       IOMMUTarget(iommu: 7, streamID: 0xFFFF_FFFF))
    }

    // MARK: What the board prints

    func testReportNamesNodeAndProperty() throws {
        let bytes = tree(banks: [(0x4000_0000, 0x1000_0000)], smmuReg: (0x0905_0000, 0))
        guard let error = parseError(bytes) else { return XCTFail("expected a rejection") }
        let report = error.report
        XCTAssertEqual(report.property.map { "\($0)" }, "reg")
        XCTAssertEqual("\(report.reason)", "device registers of size 0")
        let path = try withTree(bytes) { tree -> [String] in
            Self.ancestry(tree, try XCTUnwrap(report.node)).map { String(decoding: tree.name(of: $0), as: UTF8.self) }
        }
        XCTAssertEqual(path, ["", "smmuv3@9050000"])
    }

    /// The nodes from the root down to the node at `offset`, one
    /// `ancestor(ofNodeAt:depth:)` per depth (how the board prints a path).
    static func ancestry(_ tree: FlattenedDeviceTree, _ offset: Int) -> [FDTNode] {
        var chain: [FDTNode] = []
        while let node = tree.ancestor(ofNodeAt: offset, depth: chain.count) { chain.append(node) }
        return chain
    }

    func testAncestryOfANodeThatDoesNotExistIsEmpty() throws {
        try withTree(Fixture.bytes(Fixture.virt1G)) { tree in
            XCTAssertEqual(Self.ancestry(tree, 3).count, 0)
            let uart = try XCTUnwrap(tree.node(atPath: "/pl011@9000000"))
            XCTAssertEqual(Self.ancestry(tree, uart.offset).map { $0.offset }, [tree.root.offset, uart.offset])
        }
    }

    /// A node's ancestor at a depth is the open node there, not an earlier
    /// node of that depth in another branch, and there is none below the node.
    func testAncestorIsTheOpenNodeAtThatDepth() throws {
        try withTree(Fixture.bytes(Fixture.virt1G)) { tree in
            let cpus = try XCTUnwrap(tree.node(atPath: "/cpus"))
            let cpu = try XCTUnwrap(tree.node(atPath: "/cpus/cpu@0"))
            // Earlier depth-1 nodes come before /cpus (the walk must not stop at them).
            var children = tree.children(of: tree.root)
            XCTAssertNotEqual(try XCTUnwrap(children.next()).offset, cpus.offset)
            XCTAssertEqual(tree.ancestor(ofNodeAt: cpu.offset, depth: 0), tree.root)
            XCTAssertEqual(tree.ancestor(ofNodeAt: cpu.offset, depth: 1), cpus)
            XCTAssertEqual(tree.ancestor(ofNodeAt: cpu.offset, depth: 2), cpu)
            XCTAssertNil(tree.ancestor(ofNodeAt: cpu.offset, depth: 3))
            XCTAssertNil(tree.ancestor(ofNodeAt: cpus.offset, depth: 2), "a later node at depth 2 is no ancestor")
            XCTAssertNil(tree.ancestor(ofNodeAt: cpu.offset, depth: -1))
            XCTAssertNil(tree.ancestor(ofNodeAt: cpu.offset + 4, depth: 0), "no node starts there")
        }
    }

    /// A tree whose description fails still yields its console and PSCI
    /// conduit, so the reason can be printed and the machine powered off.
    func testEarlyServicesSurviveARejectedDescription() throws {
        var bytes = Fixture.bytes(Fixture.virt1G)
        // Make the SMMU's reg size 0: the description fails, the console does not.
        let (smmuSizeOffset, uartBase) = try withTree(bytes) { tree -> (Int, UInt64) in
            let smmu = try XCTUnwrap(tree.nodes.first { tree.isCompatible($0, with: "arm,smmu-v3") })
            let reg = try XCTUnwrap(tree.property("reg", of: smmu))
            return (reg.valueStart + 8, try XCTUnwrap(PlatformDescription.earlyServices(tree).console).registers.base.raw)
        }
        bytes.setBE64(0, at: smmuSizeOffset)
        guard case .emptyRegister? = parseError(bytes) else { return XCTFail("expected emptyRegister") }
        try withTree(bytes) { tree in
            let early = PlatformDescription.earlyServices(tree)
            XCTAssertEqual(early.console?.registers.base.raw, uartBase)
            XCTAssertEqual(early.psci?.conduit, .smc)
        }
    }

    // MARK: The silent hangs of the past, each now a typed error naming its node

    /// A tree with a console; `edit` changes it before the blob is built.
    func consoleTree(stdoutPath: String = "/pl011@9000000", rootAddressCells: UInt32 = 2,
                     uartReg: [UInt32] = [0, 0x0900_0000, 0, 0x1000], sizeCells: [UInt8] = [0, 0, 0, 2],
                     ecamSize: UInt32 = 0x1000_0000) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [rootAddressCells])
        b.property("#size-cells", sizeCells)
        b.begin("chosen")
        b.property("stdout-path", string: stdoutPath)
        b.end()
        b.begin("memory@40000000")
        b.property("device_type", string: "memory")
        b.property("reg", cells: [0, 0x4000_0000, 0, 0x4000_0000])
        b.end()
        b.begin("pl011@9000000")
        b.property("compatible", string: "arm,pl011")
        b.property("reg", cells: uartReg)
        b.end()
        b.begin("pcie@10000000")
        b.property("compatible", string: "pci-host-ecam-generic")
        b.property("reg", cells: [0x40, 0x1000_0000, 0, ecamSize])
        b.end()
        b.end()
        return b.blob()
    }

    /// The path and report of the rejection of `bytes`.
    func rejection(_ bytes: [UInt8]) throws -> (FDTError, String, String?) {
        let error = try XCTUnwrap(parseError(bytes), "expected a rejection")
        let report = error.report
        let path = try withTree(bytes) { tree -> String in
            guard let node = report.node else { return "" }
            let names = Self.ancestry(tree, node).dropFirst().map { String(decoding: tree.name(of: $0), as: UTF8.self) }
            return "/" + names.joined(separator: "/")
        }
        return (error, path, report.property.map { "\($0)" })
    }

    func testTheWellFormedConsoleTreeParses() throws {
        let p = try description(consoleTree())
        XCTAssertEqual(p.console?.registers, MemoryRange(base: PhysAddr(0x0900_0000), size: 0x1000))
    }

    func testStdoutPathThatNamesNothing() throws {
        let (error, path, property) = try rejection(consoleTree(stdoutPath: "/nothing@0"))
        guard case .stdoutPathUnresolved = error else { return XCTFail("\(error)") }
        XCTAssertEqual(path, "/chosen")
        XCTAssertEqual(property, "stdout-path")
    }

    func testShortConsoleReg() throws {
        let (error, path, _) = try rejection(consoleTree(uartReg: [0, 0x0900_0000, 0]))
        XCTAssertEqual(error, .propertyLengthNotMultiple(node: try withTree(consoleTree(uartReg: [0, 0x0900_0000, 0])) {
            try XCTUnwrap($0.node(atPath: "/pl011@9000000")).offset }, length: 12, tupleBytes: 16))
        XCTAssertEqual(path, "/pl011@9000000")
    }

    func testThreeAddressCells() throws {
        let (error, path, property) = try rejection(consoleTree(rootAddressCells: 3))
        guard case .addressCellsUnsupported(_, 3) = error else { return XCTFail("\(error)") }
        XCTAssertEqual(path, "/memory@40000000")
        XCTAssertEqual(property, "#address-cells")
    }

    func testCellCountPropertyWithABadLength() throws {
        let bytes = consoleTree(sizeCells: [0, 0, 0, 2, 0, 0, 0, 0])
        let (error, path, _) = try rejection(bytes)
        let (root, token) = try withTree(bytes) { tree in
            (tree.root.offset, try XCTUnwrap(tree.property("#size-cells", of: tree.root)).offset)
        }
        XCTAssertEqual(error, .propertyNotU32(node: root, length: 8, property: token))
        XCTAssertEqual(path, "/")
        // The report names the property through its token: any one-cell property, not a fixed list.
        XCTAssertEqual(error.report.propertyAt, token)
        let name = try withTree(bytes) { tree in tree.propertyName(atToken: token).map { String(decoding: $0, as: UTF8.self) } }
        XCTAssertEqual(name, "#size-cells")
        XCTAssertNil(try withTree(bytes) { tree in tree.propertyName(atToken: root) }, "a node token names no property")
    }

    func testTinyECAM() throws {
        // Less than one bus (1 MiB of configuration space): the host bridge's `reg` is what is wrong.
        let bytes = consoleTree(ecamSize: 0x1000)
        let (error, path, property) = try rejection(bytes)
        let pcie = try withTree(bytes) { tree in try XCTUnwrap(tree.node(atPath: "/pcie@10000000")).offset }
        XCTAssertEqual(error, .ecamTooSmall(node: pcie, size: 0x1000))
        XCTAssertEqual(path, "/pcie@10000000")
        XCTAssertEqual(property, "reg")
    }

    func testDeepNestingIsReportedAtItsOffset() throws {
        var b = FDTBuilder()
        b.begin("")
        for _ in 0..<40 { b.begin("n") }
        for _ in 0..<40 { b.end() }
        b.end()
        let error = try XCTUnwrap(parseError(b.blob()))
        guard case .nestingTooDeep(let offset, let limit) = error else { return XCTFail("\(error)") }
        XCTAssertEqual(limit, 32)
        XCTAssertEqual(error.report.offset, offset)
        XCTAssertNil(error.report.node)
    }
}
