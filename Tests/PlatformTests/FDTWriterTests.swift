import AArch64
import Foundation
import HostFakes
import XCTest
@testable import Platform

final class FDTWriterTests: XCTestCase {
    /// Writes with `body` into a buffer of `capacity` bytes pre-filled with 0xA5;
    /// returns the blob, or the error and the untouched header check.
    private func write(capacity: Int, _ body: (inout FDTWriter) throws(FDTWriteError) -> Void) -> Result<[UInt8], FDTWriteError> {
        var storage = [UInt8](repeating: 0xA5, count: capacity)
        let result: Result<Int, FDTWriteError> = storage.withUnsafeMutableBytes { raw in
            do throws(FDTWriteError) {
                var writer = try FDTWriter(buffer: raw, bootCPU: 1)
                try body(&writer)
                return .success(try writer.finish())
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let size): return .success(Array(storage[0..<size]))
        case .failure(let error):
            // A failed write leaves the header bytes as they were: no magic, no blob.
            XCTAssertEqual(Array(storage.prefix(min(40, capacity))), [UInt8](repeating: 0xA5, count: min(40, capacity)))
            return .failure(error)
        }
    }

    private func sample(_ w: inout FDTWriter) throws(FDTWriteError) {
        try w.addReservation(MemoryRange(base: PhysAddr(raw: 0x4800_0000), size: 0x10_0000)!)
        try w.beginNode("")
        try w.property("#address-cells", u32: 2)
        try w.property("#size-cells", u32: 2)
        try w.property("compatible", string: "linux,dummy-virt")
        try w.beginNode("memory", unitAddress: 0x4000_0000)
        try w.property("device_type", string: "memory")
        try w.property("reg", address: 0x4000_0000, size: 0x4000_0000, addressCells: 2, sizeCells: 2)
        try w.endNode()
        try w.beginNode("chosen")
        try w.emptyProperty("no-map")
        try w.property("reg", address: 0x1234, size: 0x10, addressCells: 1, sizeCells: 1)
        try w.endNode()
        try w.endNode()
    }

    func testExactBytesOfASmallTree() throws {
        let blob = try write(capacity: 4096) { (w: inout FDTWriter) throws(FDTWriteError) in
            try w.beginNode("")
            try w.property("a-b", u32: 0x1122_3344)
            try w.property("a-b", u32: 5)
            try w.endNode()
        }.get()
        // Header, one-entry map (terminator only), struct, strings "a-b\0".
        let expected: [UInt8] = [
            0xD0, 0x0D, 0xFE, 0xED, 0, 0, 0, 0x6C, 0, 0, 0, 0x38, 0, 0, 0, 0x68,
            0, 0, 0, 0x28, 0, 0, 0, 17, 0, 0, 0, 16, 0, 0, 0, 1,
            0, 0, 0, 4, 0, 0, 0, 0x30,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 1, 0, 0, 0, 0,
            0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44,
            0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5,
            0, 0, 0, 2, 0, 0, 0, 9,
            0x61, 0x2D, 0x62, 0,
        ]
        XCTAssertEqual(blob, expected)
    }

    func testWrittenTreeParsesAndReadsBack() throws {
        let blob = try write(capacity: 4096) { (w: inout FDTWriter) throws(FDTWriteError) in try sample(&w) }.get()
        try withTree(blob) { tree in
            XCTAssertEqual(tree.header.bootCPU, 1)
            XCTAssertEqual(Array(tree.memoryReservations), [MemoryRange(base: PhysAddr(raw: 0x4800_0000), size: 0x10_0000)!])
            let memory = try XCTUnwrap(tree.node(atPath: "/memory@40000000"))
            let reg = try XCTUnwrap(tree.property("reg", of: memory))
            XCTAssertEqual(Array(tree.value(of: reg)), [0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0])
            let chosen = try XCTUnwrap(tree.node(atPath: "/chosen"))
            XCTAssertTrue(tree.hasProperty("no-map", chosen))
            XCTAssertEqual(Array(tree.value(of: try XCTUnwrap(tree.property("reg", of: chosen)))),
                           [0, 0, 0x12, 0x34, 0, 0, 0, 0x10])
            XCTAssertTrue(tree.isCompatible(tree.root, with: "linux,dummy-virt"))
            let platform = try PlatformDescription(tree)
            XCTAssertEqual(Array(platform.memoryBanks), [MemoryRange(base: PhysAddr(raw: 0x4000_0000), size: 0x4000_0000)!])
        }
    }

    func testDtcDecompilesTheWrittenTree() throws {
        let blob = try write(capacity: 4096) { (w: inout FDTWriter) throws(FDTWriteError) in try sample(&w) }.get()
        let dts = try dtc(blob)
        XCTAssertTrue(dts.contains("/memreserve/\t0x0000000048000000 0x0000000000100000;"), dts)
        XCTAssertTrue(dts.contains("memory@40000000 {"), dts)
        XCTAssertTrue(dts.contains("reg = <0x00 0x40000000 0x00 0x40000000>;"), dts)
        XCTAssertTrue(dts.contains("compatible = \"linux,dummy-virt\";"), dts)
    }

    func testUnitAddressesAreLowercaseHexWithoutLeadingZeros() throws {
        let table: [(UInt64, String)] = [(0, "n@0"), (0xA, "n@a"), (0x4000_0000, "n@40000000"),
                                         (0xFFFF_FFFF_FFFF_FFFF, "n@ffffffffffffffff"), (0x10, "n@10")]
        for (address, name) in table {
            let blob = try write(capacity: 512) { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode("")
                try w.beginNode("n", unitAddress: address)
                try w.endNode()
                try w.endNode()
            }.get()
            try withTree(blob) { tree in
                let child = try XCTUnwrap(Array(tree.children(of: tree.root)).first)
                XCTAssertEqual(String(decoding: tree.name(of: child), as: UTF8.self), name)
            }
        }
    }

    func testMisuseIsATypedErrorAndWritesNoHeader() {
        let cases: [(String, (inout FDTWriter) throws(FDTWriteError) -> Void, FDTWriteError)] = [
            ("end without node", { (w: inout FDTWriter) throws(FDTWriteError) in try w.endNode() }, .unbalancedEndNode),
            ("no root", { (_: inout FDTWriter) throws(FDTWriteError) in }, .missingRoot),
            ("open node", { (w: inout FDTWriter) throws(FDTWriteError) in try w.beginNode("") }, .unclosedNode(depth: 1)),
            ("second root", { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode(""); try w.endNode(); try w.beginNode("x") }, .secondRoot),
            ("property outside", { (w: inout FDTWriter) throws(FDTWriteError) in try w.property("a", u32: 1) },
             .propertyOutsideNode),
            ("property after child", { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode(""); try w.beginNode("c"); try w.endNode(); try w.property("ab", u32: 1) },
             .propertyAfterChildNode),
            ("reservation late", { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode(""); try w.addReservation(MemoryRange(base: PhysAddr(raw: 0), size: 1)!) }, .outOfOrder),
            ("NUL in name", { (w: inout FDTWriter) throws(FDTWriteError) in try w.beginNode("a\0b") }, .badName),
            ("@ in prefix", { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode(""); try w.beginNode("a@b", unitAddress: 1) }, .badName),
            ("empty property name", { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode(""); try w.emptyProperty("") }, .badName),
            ("NUL in string", { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode(""); try w.property("ab", string: "x\0y") }, .badName),
            ("3 cells", { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode(""); try w.property("reg", address: 0, size: 0, addressCells: 3, sizeCells: 1) },
             .unsupportedCells(3)),
            ("0 size cells", { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode(""); try w.property("reg", address: 0, size: 0, addressCells: 1, sizeCells: 0) },
             .unsupportedCells(0)),
            ("address too wide", { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode(""); try w.property("reg", address: 1 << 32, size: 0, addressCells: 1, sizeCells: 1) },
             .valueDoesNotFitCells(1 << 32, cells: 1)),
            ("size too wide", { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode(""); try w.property("reg", address: 0, size: 1 << 32, addressCells: 2, sizeCells: 1) },
             .valueDoesNotFitCells(1 << 32, cells: 1)),
            ("too deep", { (w: inout FDTWriter) throws(FDTWriteError) in
                for _ in 0...32 { try w.beginNode("d") } }, .nestingTooDeep(limit: 32)),
        ]
        for (label, body, expected) in cases {
            switch write(capacity: 8192, body) {
            case .success: XCTFail(label)
            case .failure(let error): XCTAssertEqual(error, expected, label)
            }
        }
    }

    func testEveryBufferTooSmallToHoldTheTreeIsATypedError() throws {
        let full = try write(capacity: 4096) { (w: inout FDTWriter) throws(FDTWriteError) in try sample(&w) }.get()
        // Every capacity below the blob's size fails cleanly; the exact size succeeds.
        for capacity in 0..<full.count {
            switch write(capacity: capacity, { (w: inout FDTWriter) throws(FDTWriteError) in try sample(&w) }) {
            case .success: XCTFail("capacity \(capacity) of \(full.count) succeeded")
            case .failure(let error): XCTAssertEqual(error, .bufferTooSmall(capacity: capacity))
            }
        }
        XCTAssertEqual(try write(capacity: full.count) { (w: inout FDTWriter) throws(FDTWriteError) in try sample(&w) }.get(), full)
    }

    func testRandomTreesRoundTripThroughTheParser() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<200 {
            var expectedNodes = 1
            let blob = try write(capacity: 1 << 16) { (w: inout FDTWriter) throws(FDTWriteError) in
                try w.beginNode("")
                var depth = 1
                for _ in 0..<(rng.next() % 40) {
                    switch rng.next() % 4 {
                    case 0 where depth < 8:
                        try w.beginNode("n", unitAddress: rng.next() % 0x1_0000)
                        depth += 1
                        expectedNodes += 1
                    case 1 where depth > 1:
                        try w.endNode()
                        depth -= 1
                    default:
                        // Properties only where no child has begun yet is not
                        // tracked here: a refusal is the right answer then.
                        do throws(FDTWriteError) {
                            try w.property("p", u32: UInt32(truncatingIfNeeded: rng.next()))
                        } catch {
                            XCTAssertEqual(error, .propertyAfterChildNode)
                        }
                    }
                }
                while depth > 0 { try w.endNode(); depth -= 1 }
            }.get()
            try withTree(blob) { tree in
                XCTAssertEqual(Array(tree.nodes).count, expectedNodes)
            }
        }
    }
}

/// Runs dtc on a blob and returns the DTS text.
func dtc(_ blob: [UInt8]) throws -> String {
    let input = FileManager.default.temporaryDirectory.appendingPathComponent("hvmem-\(UUID().uuidString).dtb")
    try Data(blob).write(to: input)
    defer { try? FileManager.default.removeItem(at: input) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/dtc")
    process.arguments = ["-q", "-I", "dtb", "-O", "dts", input.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0)
    return String(decoding: output, as: UTF8.self)
}

