import XCTest
import AArch64
@testable import Platform

final class FDTRegTests: XCTestCase {
    func tree(rootCells: [UInt32]?, reg: [UInt32]) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        if let rootCells {
            b.property("#address-cells", cells: [rootCells[0]])
            b.property("#size-cells", cells: [rootCells[1]])
        }
        b.begin("dev@0")
        b.property("reg", cells: reg)
        b.end()
        b.end()
        return b.blob()
    }

    func regs(_ blob: [UInt8]) throws -> [MemoryRange] {
        try withTree(blob) { tree in
            let dev = try XCTUnwrap(tree.node(atPath: "/dev"))
            return Array(try XCTUnwrap(try tree.reg(of: dev)))
        }
    }

    func regError(_ blob: [UInt8]) -> FDTError? {
        blob.withUnsafeBytes { raw -> FDTError? in
            do throws(FDTError) {
                let tree = try FlattenedDeviceTree(raw)
                _ = try tree.reg(of: tree.node(atPath: "/dev")!)
                return nil
            } catch { return error }
        }
    }

    func testCellCombinations() throws {
        let table: [([UInt32]?, [UInt32], [(UInt64, UInt64)])] = [
            // Spec defaults when the parent is silent: 2 address cells, 1 size cell.
            (nil, [0x1, 0x2000_0000, 0x1000], [(0x1_2000_0000, 0x1000)]),
            ([1, 1], [0x1000, 0x10, 0x2000, 0x20], [(0x1000, 0x10), (0x2000, 0x20)]),
            ([2, 2], [0x80, 0, 0x1, 0], [(0x80_0000_0000, 0x1_0000_0000)]),
            ([1, 0], [0x1234], [(0x1234, 0)]),
            ([2, 1], [], []),
        ]
        for (cells, reg, expected) in table {
            XCTAssertEqual(try regs(tree(rootCells: cells, reg: reg)),
                           expected.map { MemoryRange(base: PhysAddr($0.0), size: $0.1)! }, "\(String(describing: cells))")
        }
    }

    func testRejections() throws {
        let devOffset = try withTree(tree(rootCells: [1, 1], reg: [])) { tree in tree.node(atPath: "/dev")!.offset }
        XCTAssertEqual(regError(tree(rootCells: [3, 1], reg: [0, 0, 0, 0])),
                       .addressCellsUnsupported(node: devOffset, cells: 3))
        XCTAssertEqual(regError(tree(rootCells: [0, 1], reg: [0])),
                       .addressCellsUnsupported(node: devOffset, cells: 0))
        XCTAssertEqual(regError(tree(rootCells: [1, 3], reg: [0, 0, 0, 0])),
                       .sizeCellsUnsupported(node: devOffset, cells: 3))
        XCTAssertEqual(regError(tree(rootCells: [0x4000_0000, 0x4000_0000], reg: [0])),
                       .addressCellsUnsupported(node: devOffset, cells: 0x4000_0000))
        XCTAssertEqual(regError(tree(rootCells: [1, 1], reg: [0x1000, 0x10, 0x2000])),
                       .propertyLengthNotMultiple(node: devOffset, length: 12, tupleBytes: 8))
        XCTAssertEqual(regError(tree(rootCells: [2, 2], reg: [0xFFFF_FFFF, 0xFFFF_F000, 0, 0x1001])),
                       .regionOverflows(base: 0xFFFF_FFFF_FFFF_F000, size: 0x1001))
    }

    func testTranslationThroughNestedBuses() throws {
        var b = FDTBuilder()
        b.begin("")
        b.property("#address-cells", cells: [2])
        b.property("#size-cells", cells: [2])
        b.begin("outer")
        b.property("#address-cells", cells: [1])
        b.property("#size-cells", cells: [1])
        // outer child 0x0 -> CPU 0x1_0000_0000 (64 MiB)
        b.property("ranges", cells: [0x0, 0x1, 0x0, 0x0400_0000])
        b.begin("inner")
        b.property("#address-cells", cells: [1])
        b.property("#size-cells", cells: [1])
        // inner 0x0 -> outer 0x0010_0000 (1 MiB); second entry unused.
        b.property("ranges", cells: [0x9000_0000, 0x0, 0x1000, 0x0, 0x0010_0000, 0x0010_0000])
        b.begin("dev@100")
        b.property("reg", cells: [0x100, 0x100])
        b.end()
        b.begin("outside@200000")
        b.property("reg", cells: [0x20_0000, 0x100])
        b.end()
        b.end()
        b.end()
        b.end()
        try withTree(b.blob()) { tree in
            let dev = try XCTUnwrap(tree.node(atPath: "/outer/inner/dev"))
            XCTAssertEqual(try tree.firstCPURange(of: dev), MemoryRange(base: PhysAddr(0x1_0010_0100), size: 0x100))
            let outside = try XCTUnwrap(tree.node(atPath: "/outer/inner/outside"))
            let inner = try XCTUnwrap(tree.node(atPath: "/outer/inner"))
            XCTAssertThrowsError(try tree.firstCPURange(of: outside)) { error in
                XCTAssertEqual(error as? FDTError, .untranslatableAddress(node: inner.offset))
            }
        }
    }

    /// Walks hand `reg` lists around as `FDTReg?`: three words with no extra
    /// tag byte, so they pass and return in registers.
    func testRegAndOptionalRegAreThreeWords() {
        XCTAssertEqual(MemoryLayout<FDTReg>.size, 24)
        XCTAssertEqual(MemoryLayout<FDTReg?>.size, 24)
    }
}
