import XCTest
import Platform

final class CPUAffinitiesTests: XCTestCase {
    private func affinities(_ bytes: [UInt8]) throws -> Result<[UInt64], FDTError> {
        try withTree(bytes) { t in
            Result { () throws(FDTError) in Array(try t.cpuAffinities()) }
        }
    }

    private func tree(addressCells: UInt32, cpus: [[UInt8]?], extraNonCPU: Bool = false) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.begin("cpus")
        b.property("#address-cells", be32(addressCells))
        b.property("#size-cells", be32(0))
        for (i, reg) in cpus.enumerated() {
            b.begin("cpu@\(i)")
            b.property("device_type", Array("cpu".utf8) + [0])
            if let reg { b.property("reg", reg) }
            b.end()
        }
        if extraNonCPU {
            b.begin("cpu-map")
            b.end()
        }
        b.end()
        b.end()
        return b.blob()
    }
    private func be32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
    private func be64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * $0)) } }

    /// QEMU virt -smp 2: /cpus has #address-cells = 1, cpu@0 and cpu@1, and a cpu-map.
    func testQEMUDumps() throws {
        XCTAssertEqual(try affinities(Fixture.bytes("virt-m1g-smp2.dtb")).get(), [0, 1])
        XCTAssertEqual(try affinities(Fixture.bytes(Fixture.virt1G)).get(), [0])
    }

    func testTwoCellsAndNonCPUChildren() throws {
        XCTAssertEqual(try affinities(tree(addressCells: 2, cpus: [be64(0x1_0000_0100), be64(0x0000_0101)], extraNonCPU: true)).get(),
                       [0x1_0000_0100, 0x101])
    }

    func testHostileCPUNodes() throws {
        guard case .failure(.missingReg) = try affinities(tree(addressCells: 1, cpus: [nil])) else { return XCTFail("no reg") }
        guard case .failure(.propertyLengthNotMultiple(node: _, length: 8, tupleBytes: 4)) =
                try affinities(tree(addressCells: 1, cpus: [be64(1)])) else { return XCTFail("8-byte reg with 1 cell") }
        guard case .failure(.addressCellsUnsupported(node: _, cells: 3)) =
                try affinities(tree(addressCells: 3, cpus: [be32(0)])) else { return XCTFail("3 cells") }
        guard case .failure(.cpuAffinityMalformed(node: _, mpidr: 0x8000_0000)) =
                try affinities(tree(addressCells: 1, cpus: [be32(0x8000_0000)])) else { return XCTFail("bit 31 is not affinity") }
        guard case .failure(.tooManyCPUs(capacity: 8)) =
                try affinities(tree(addressCells: 1, cpus: (0..<9).map { be32(UInt32($0)) })) else { return XCTFail("nine CPUs") }
    }
}
