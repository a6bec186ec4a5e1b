import XCTest
import AArch64
import Platform

final class InitialRamdiskTests: XCTestCase {
    private func tree(start: [UInt8]?, end: [UInt8]?) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.begin("chosen")
        if let start { b.property("linux,initrd-start", start) }
        if let end { b.property("linux,initrd-end", end) }
        b.end()
        b.end()
        return b.blob()
    }
    private func be32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }
    private func be64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * $0)) } }

    private func initrd(_ blob: [UInt8]) throws -> Result<MemoryRange?, FDTError> {
        try withTree(blob) { t in Result { () throws(FDTError) in try t.initialRamdisk() } }
    }

    /// QEMU writes one cell each (`-initrd` at 1 GiB: 0x48000000).
    func testOneAndTwoCells() throws {
        XCTAssertEqual(try initrd(tree(start: be32(0x4800_0000), end: be32(0x480F_9EB1))).get(),
                       MemoryRange(base: PhysAddr(raw: 0x4800_0000), size: 0xF_9EB1))
        XCTAssertEqual(try initrd(tree(start: be64(0x8_0000_0000), end: be64(0x8_0010_0000))).get(),
                       MemoryRange(base: PhysAddr(raw: 0x8_0000_0000), size: 0x10_0000))
    }

    func testAbsentIsNil() throws {
        XCTAssertNil(try initrd(tree(start: nil, end: nil)).get())
        XCTAssertNil(try initrd(tree(start: be32(0x4800_0000), end: nil)).get())
    }

    func testHostileValuesAreTypedErrors() throws {
        guard case .failure(.regionOverflows(base: 0x4800_1000, size: _)) = try initrd(tree(start: be32(0x4800_1000), end: be32(0x4800_0000))) else {
            return XCTFail("an end before the start must be refused")
        }
        guard case .failure(.propertyLengthNotMultiple(node: _, length: 3, tupleBytes: 8)) = try initrd(tree(start: [1, 2, 3], end: be32(0))) else {
            return XCTFail("a 3-byte value must be refused")
        }
    }
}
