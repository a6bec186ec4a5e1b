import XCTest
import HostFakes
@testable import Platform

/// Corrupted copies of real QEMU dumps (and of the hand-made blob), each
/// patched in one place and rejected with its own error, never a trap.
final class FDTMalformedBlobTests: XCTestCase {
    let real = Fixture.bytes(Fixture.virt1G)

    /// Blob offset of property `name`'s FDT_PROP token in node `path`.
    func propertyToken(_ bytes: [UInt8], _ path: StaticString, _ name: StaticString) throws -> Int {
        try withTree(bytes) { tree in
            let node = try XCTUnwrap(tree.node(atPath: path))
            return try XCTUnwrap(tree.property(name, of: node)).offset
        }
    }

    func structStart(_ bytes: [UInt8]) -> Int { Int(bytes.be32(at: 8)) }
    func structEnd(_ bytes: [UInt8]) -> Int { Int(bytes.be32(at: 8) + bytes.be32(at: 36)) }

    /// Each corruption, its expected error. All errors must differ.
    func corruptions() throws -> [(String, [UInt8], FDTError)] {
        var cases: [(String, [UInt8], FDTError)] = []
        func add(_ what: String, _ expected: FDTError, _ patch: (inout [UInt8]) throws -> Void) rethrows {
            var copy = real
            try patch(&copy)
            cases.append((what, copy, expected))
        }
        add("bad magic", .badMagic(0xD00D_FEEE)) { $0[3] = 0xEE }
        add("truncated to 20 bytes", .truncatedHeader(available: 20)) { $0 = Array($0.prefix(20)) }
        add("totalsize beyond buffer", .totalSizeExceedsBuffer(totalSize: 0x10_0000, available: 0x8_0000)) {
            $0 = Array($0.prefix(0x8_0000))
        }
        add("totalsize below header", .totalSizeTooSmall(39)) { $0.setBE32(39, at: 4) }
        add("version 16", .unsupportedVersion(version: 16, lastCompatible: 16)) { $0.setBE32(16, at: 20) }
        let structOffset = real.be32(at: 8), structSize = real.be32(at: 36)
        add("struct block misaligned", .misalignedStructureBlock(offset: structOffset + 2)) {
            $0.setBE32(structOffset + 2, at: 8)
        }
        add("struct block past totalsize", .structureBlockOutOfRange(offset: structOffset, size: 0xFFFF_FFF0)) {
            $0.setBE32(0xFFFF_FFF0, at: 36)
        }
        let stringsOffset = real.be32(at: 12)
        add("strings block past totalsize", .stringsBlockOutOfRange(offset: stringsOffset, size: 0x10_0000)) {
            $0.setBE32(0x10_0000, at: 32)
        }
        add("reservation map misaligned", .misalignedReservationMap(offset: 0x2C)) { $0.setBE32(0x2C, at: 16) }
        add("reservation map past totalsize", .reservationMapOutOfRange(offset: 0x10_0000)) {
            $0.setBE32(0x10_0000, at: 16)
        }
        add("reservation map runs off the end", .unterminatedReservationMap) {
            $0.setBE32(0x10_0000 - 8, at: 16)
        }
        add("reservation wraps", .reservationOverflows(address: 0xFFFF_FFFF_FFFF_F000, size: 0x2000)) { b in
            let map = Int(b.be32(at: 16))
            b.setBE64(0xFFFF_FFFF_FFFF_F000, at: map)
            b.setBE64(0x2000, at: map + 8)
        }
        let start = structStart(real)
        add("first token is END_NODE", .missingRootNode(offset: start)) { $0.setBE32(0x2, at: start) }
        // The root's name is empty, so its first property token sits at start + 8.
        add("unknown token 7", .badToken(7, offset: start + 8)) { $0.setBE32(7, at: start + 8) }
        add("FDT_END replaced by NOP", .missingEndToken) { $0.setBE32(0x4, at: structEnd(real) - 4) }
        add("root END_NODE replaced by NOP", .unclosedNode(offset: structEnd(real) - 4, depth: 1)) {
            $0.setBE32(0x4, at: structEnd(real) - 8)
        }
        add("extra END_NODE after the root closes", .unbalancedEndNode(offset: structEnd(real) - 4)) { b in
            // FDT_END becomes END_NODE, and a new FDT_END follows it.
            b.setBE32(0x2, at: structEnd(real) - 4)
            b.setBE32(structSize + 4, at: 36)
            b.setBE32(0x9, at: structEnd(real))
        }
        let psciMethod = try propertyToken(real, "/psci", "method")
        add("property name offset past strings", .propertyNameOutOfRange(offset: psciMethod, nameOffset: 0x00FF_FFFF)) {
            $0.setBE32(0x00FF_FFFF, at: psciMethod + 8)
        }
        add("property length past struct block", .propertyValueOutOfRange(offset: psciMethod, length: 0x7FFF_FFFF)) {
            $0.setBE32(0x7FFF_FFFF, at: psciMethod + 4)
        }
        let stdout = try propertyToken(real, "/chosen", "stdout-path")
        let stdoutLength = Int(real.be32(at: stdout + 4))
        add("stdout-path without NUL", .unterminatedString(node: try nodeOffset(real, "/chosen"))) {
            $0[stdout + 12 + stdoutLength - 1] = UInt8(ascii: "x")
        }
        add("stdout-path to a missing node", .stdoutPathUnresolved(node: try nodeOffset(real, "/chosen"))) {
            $0[stdout + 12 + stdoutLength - 2] = UInt8(ascii: "1")
        }
        add("psci method neither smc nor hvc", .unknownPSCIMethod(node: try nodeOffset(real, "/psci"))) {
            $0[psciMethod + 12] = UInt8(ascii: "x")
        }
        let rootAddressCells = try propertyToken(real, "/", "#address-cells")
        let rootSizeCells = try propertyToken(real, "/", "#size-cells")
        let memoryNode = try nodeOffset(real, "/memory")
        add("root #address-cells = 3", .addressCellsUnsupported(node: memoryNode, cells: 3)) {
            $0.setBE32(3, at: rootAddressCells + 12)
        }
        add("root #size-cells = 0xffffffff", .sizeCellsUnsupported(node: memoryNode, cells: 0xFFFF_FFFF)) {
            $0.setBE32(0xFFFF_FFFF, at: rootSizeCells + 12)
        }
        add("reg not a multiple of (1+2) cells",
            .propertyLengthNotMultiple(node: memoryNode, length: 16, tupleBytes: 12)) {
            $0.setBE32(1, at: rootAddressCells + 12)
            $0.setBE32(2, at: rootSizeCells + 12)
        }
        let memoryReg = try propertyToken(real, "/memory", "reg")
        add("memory reg wraps", .regionOverflows(base: 0xFFFF_FFFF_C000_0000, size: 0x4000_0000)) {
            $0.setBE32(0xFFFF_FFFF, at: memoryReg + 12)
            $0.setBE32(0xC000_0000, at: memoryReg + 16)
        }
        add("#address-cells of 2 bytes",
            .propertyNotU32(node: try nodeOffset(real, "/"), length: 2, property: rootAddressCells)) {
            $0.setBE32(2, at: rootAddressCells + 4)
        }
        let pcie = try nodeOffset(real, "/pcie@10000000")
        let busRange = try propertyToken(real, "/pcie@10000000", "bus-range")
        add("bus-range ends past 255", .badBusRange(node: pcie, first: 0, last: 0x100)) { $0.setBE32(0x100, at: busRange + 16) }
        let iommuMap = try propertyToken(real, "/pcie@10000000", "iommu-map")
        add("iommu-map to a missing phandle", .phandleNotFound(0xBAD)) { $0.setBE32(0xBAD, at: iommuMap + 16) }
        let smmu = try nodeOffset(real, "/smmuv3@9050000")
        let iommuCells = try propertyToken(real, "/smmuv3@9050000", "#iommu-cells")
        add("SMMU #iommu-cells = 2", .unsupportedIOMMUCells(node: smmu, cells: 2)) { $0.setBE32(2, at: iommuCells + 12) }
        let ranges = try propertyToken(real, "/pcie@10000000", "ranges")
        add("ranges entry in configuration space", .unsupportedPCISpace(node: pcie, physHigh: 0)) {
            $0.setBE32(0, at: ranges + 12)
        }
        let pcieAddressCells = try propertyToken(real, "/pcie@10000000", "#address-cells")
        add("PCI #address-cells = 2", .addressCellsUnsupported(node: pcie, cells: 2)) {
            $0.setBE32(2, at: pcieAddressCells + 12)
        }
        return cases
    }

    func nodeOffset(_ bytes: [UInt8], _ path: StaticString) throws -> Int {
        try withTree(bytes) { tree in try XCTUnwrap(tree.node(atPath: path)).offset }
    }

    func testEveryCorruptionHasItsOwnError() throws {
        let cases = try corruptions()
        XCTAssertGreaterThanOrEqual(cases.count, 30)
        for (what, bytes, expected) in cases {
            XCTAssertEqual(parseError(bytes), expected, what)
        }
        for i in cases.indices {
            for j in cases.indices where j > i {
                XCTAssertNotEqual(cases[i].2, cases[j].2, "\(cases[i].0) vs \(cases[j].0)")
            }
        }
    }

    func testTheOriginalParses() {
        XCTAssertNil(parseError(real))
    }

    // MARK: Structure malformations built from scratch

    func testUnterminatedNodeName() {
        var b = FDTBuilder.minimal()
        // A name that runs to the end of the block: patch the last END token's
        // bytes away by building without END and with a trailing BEGIN_NODE.
        b.word(0x1)
        b.word(0x4142_4344)
        let blob = b.blob(endToken: false)
        let offset = 40 + 16 + b.structure.count - 8
        XCTAssertEqual(parseError(blob), .unterminatedNodeName(offset: offset))
    }

    func testNestingTooDeep() {
        var b = FDTBuilder()
        for i in 0...FlattenedDeviceTree.maxDepth { b.begin(i == 0 ? "" : "n") }
        for _ in 0...FlattenedDeviceTree.maxDepth { b.end() }
        guard case .nestingTooDeep(_, let limit)? = parseError(b.blob()) else {
            return XCTFail("expected nestingTooDeep")
        }
        XCTAssertEqual(limit, FlattenedDeviceTree.maxDepth)
    }

    func testPropertyAfterChild() {
        var b = FDTBuilder()
        b.begin("")
        b.begin("child")
        b.end()
        b.property("late", cells: [1])
        b.end()
        XCTAssertEqual(parseError(b.blob()), .propertyAfterChildNode(offset: 56 + 8 + 12 + 4))
    }

    func testPropertyOutsideAnyNode() {
        var b = FDTBuilder()
        b.property("stray", cells: [1])
        XCTAssertEqual(parseError(b.blob()), .missingRootNode(offset: 56))
        var c = FDTBuilder.minimal()
        c.property("stray", cells: [1])
        XCTAssertEqual(parseError(c.blob()), .propertyOutsideNode(offset: 56 + c.structure.count - 16))
    }

    func testSecondRoot() {
        var b = FDTBuilder.minimal()
        let second = 56 + b.structure.count
        b.begin("")
        b.end()
        XCTAssertEqual(parseError(b.blob()), .nodeAfterRoot(offset: second))
    }

    func testTruncatedPropertyHeader() {
        var b = FDTBuilder.minimal()
        let at = 56 + b.structure.count
        b.word(0x3)
        XCTAssertEqual(parseError(b.blob(endToken: false)), .truncatedToken(offset: at))
    }

    func testUnterminatedPropertyName() {
        var blob = FDTBuilder.minimal().blob()
        // Drop the last string's NUL by shrinking size_dt_strings by one.
        blob.setBE32(blob.be32(at: 32) - 1, at: 32)
        guard case .unterminatedPropertyName? = parseError(blob) else {
            return XCTFail("expected unterminatedPropertyName, got \(String(describing: parseError(blob)))")
        }
    }

    func testMinimalBuilderBlobParses() throws {
        XCTAssertNil(parseError(FDTBuilder.minimal().blob()))
    }

    /// Every byte of a small real blob flipped in turn: each parse either
    /// succeeds or throws, and never traps. 1613 bytes x 2 patterns.
    func testSingleByteFlipsNeverTrap() {
        let sparse = Fixture.bytes(Fixture.sparse)
        var failures = 0
        for i in sparse.indices {
            for pattern: UInt8 in [0xFF, 0x01] {
                var copy = sparse
                copy[i] ^= pattern
                if parseError(copy) != nil { failures += 1 }
            }
        }
        XCTAssertGreaterThan(failures, 0)
    }

    /// Random 1-4 byte patches over the header, reservation map, structure
    /// and strings blocks of a real 1 MiB dump, parsed in place: every
    /// outcome is a tree or a typed error. Deterministic seed.
    func testRandomPatchesOfARealDumpNeverTrap() {
        var bytes = real
        let end = Int(real.be32(at: 12) + real.be32(at: 32))
        var rng = SplitMix64(seed: 0xFD7)
        var rejected = 0
        for _ in 0..<3000 {
            var saved: [(Int, UInt8)] = []
            for _ in 0..<(1 + rng.next() % 4) {
                let at = Int(rng.next() % UInt64(end))
                saved.append((at, bytes[at]))
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            if parseError(bytes) != nil { rejected += 1 }
            for (at, value) in saved.reversed() { bytes[at] = value }
        }
        XCTAssertEqual(bytes, real)
        XCTAssertGreaterThan(rejected, 100)
    }

    func testTableCapacities() {
        var r = FDTBuilder.minimal()
        r.reservations = Array(repeating: (0x1000, 0x1000), count: 17)
        XCTAssertEqual(parseError(r.blob()), .tooManyReservedRegions(capacity: 16))

        func bridge(_ extra: (inout FDTBuilder) -> Void) -> [UInt8] {
            var b = FDTBuilder()
            b.begin("")
            b.begin("iommu@0")
            b.property("phandle", cells: [1])
            b.property("#iommu-cells", cells: [1])
            b.end()
            b.begin("pcie@10000000")
            b.property("compatible", string: "pci-host-ecam-generic")
            b.property("#address-cells", cells: [3])
            b.property("#size-cells", cells: [2])
            b.property("reg", cells: [0, 0x1000_0000, 0x1000_0000])
            extra(&b)
            b.end()
            b.end()
            return b.blob()
        }
        let tooManyMaps = bridge { b in
            b.property("iommu-map", cells: (0...PCIHostBridge.iommuMapCapacity).flatMap {
                [UInt32($0) << 8, 1, UInt32($0) << 8, 0x100] as [UInt32]
            })
        }
        XCTAssertEqual(parseError(tooManyMaps), .tooManyIOMMUMapEntries(capacity: 16))
        let nineWindows = bridge { b in
            b.property("ranges", cells: (0..<9).flatMap { [0x0200_0000, 0, UInt32($0) << 20, 0, UInt32($0) << 20, 0, 0x10_0000] as [UInt32] })
        }
        XCTAssertEqual(parseError(nineWindows), .tooManyPCIWindows(capacity: 8))
        let shortMap = bridge { b in b.property("iommu-map", cells: [0, 1, 0]) }
        guard case .propertyLengthNotMultiple(_, 12, 16)? = parseError(shortMap) else {
            return XCTFail("expected propertyLengthNotMultiple for a 3-cell iommu-map")
        }
        XCTAssertNil(parseError(bridge { _ in }))
    }
}
