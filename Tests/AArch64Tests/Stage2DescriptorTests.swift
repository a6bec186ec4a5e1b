import XCTest
import AArch64

/// Stage-2 descriptor bits pinned to Arm ARM "Translation table descriptor formats" (4 KiB granule).
final class Stage2DescriptorTests: XCTestCase {
    func testLeafEncodingsTable() {
        struct Row { let level: Int; let mfn: UInt64; let attributes: Stage2Attributes; let raw: UInt64; let line: UInt }
        let rows: [Row] = [
            // page 0b11 | MemAttr 0b1111 | S2AP RO 0b01 | SH inner 0b11 | AF (the STYLE.md example)
            Row(level: 3, mfn: 0x4_0123,
                attributes: .init(memory: .normalWriteBack, access: .readOnly, shareability: .inner, executeNever: .executable, softwareBits: 0),
                raw: 0x0000_0000_4012_377F, line: #line),
            // page, RW, SW = 1
            Row(level: 3, mfn: 0x4_0123,
                attributes: .init(memory: .normalWriteBack, access: .readWrite, shareability: .inner, executeNever: .executable, softwareBits: 1),
                raw: 0x0080_0000_4012_37FF, line: #line),
            // 2 MiB block 0b01 | MemAttr nGnRE 0b0001 | RW | SH outer 0b10 | AF | XN[1] | SW = 3
            Row(level: 2, mfn: 0x9000,
                attributes: .init(memory: .deviceNGnRE, access: .readWrite, shareability: .outer, executeNever: .never, softwareBits: 3),
                raw: 0x01C0_0000_0900_06C5, line: #line),
            // 1 GiB block, Normal NC 0b0101, XN, SW = 4
            Row(level: 1, mfn: 0x4_0000,
                attributes: .init(memory: .normalNonCacheable, access: .readWrite, shareability: .outer, executeNever: .never, softwareBits: 4),
                raw: 0x0240_0000_4000_06D5, line: #line),
            // Device-nGnRnE 0b0000, no access, non-shareable
            Row(level: 3, mfn: 0x1,
                attributes: .init(memory: .deviceNGnRnE, access: .none, shareability: .nonShareable, executeNever: .never, softwareBits: 0),
                raw: 0x0040_0000_0000_1403, line: #line),
            // write-only, FEAT_XNX per-EL execute-never: XN = 0b01 (bit 53) and 0b11
            Row(level: 3, mfn: 0x2,
                attributes: .init(memory: .normalWriteBack, access: .writeOnly, shareability: .inner, executeNever: .neverAtEL1, softwareBits: 15),
                raw: 0x07A0_0000_0000_27BF, line: #line),
            Row(level: 3, mfn: 0x2,
                attributes: .init(memory: .normalWriteBack, access: .writeOnly, shareability: .inner, executeNever: .neverAtEL0, softwareBits: 0),
                raw: 0x0060_0000_0000_27BF, line: #line),
        ]
        for row in rows {
            let d = Stage2Descriptor.leaf(MFN(raw: row.mfn), level: row.level, attributes: row.attributes)
            XCTAssertEqual(d.raw, row.raw, String(d.raw, radix: 16), line: row.line)
            XCTAssertTrue(d.isValid, line: row.line)
            XCTAssertTrue(d.isLeaf(atLevel: row.level), line: row.line)
            XCTAssertFalse(d.isTable(atLevel: row.level), line: row.line)
            XCTAssertEqual(d.outputFrame, MFN(raw: row.mfn), line: row.line)
            XCTAssertEqual(d.attributes, row.attributes, line: row.line)
            XCTAssertTrue(d.accessFlag, line: row.line)
        }
    }

    /// Splitting a block and merging back, the engine's two structural rewrites:
    /// only the output and bits [1:0] may change, every attribute bit stays.
    func testSplitMergeAndAttributeRewrites() {
        let grantRO = Stage2Attributes(memory: .normalWriteBack, access: .readOnly, shareability: .inner,
                                       executeNever: .never, softwareBits: 9)
        // 1 GiB block 0b01 | WB 0b1111 | S2AP RO | SH inner | AF | XN[1] | SW = 9
        let block = Stage2Descriptor.leaf(MFN(raw: 0x4_0000), level: 1, attributes: grantRO)
        XCTAssertEqual(block.raw, 0x04C0_0000_4000_077D)
        // level-2 entry 3 of its split: 3 x 2 MiB further, still a block
        let child = block.splitEntry(childLevel: 2, index: 3)
        XCTAssertEqual(child.raw, 0x04C0_0000_4060_077D)
        // level-3 entry 511 of that: a page (0b11)
        let page = child.splitEntry(childLevel: 3, index: 511)
        XCTAssertEqual(page.raw, 0x04C0_0000_407F_F77F)
        XCTAssertTrue(page.isTableOrPage)
        XCTAssertFalse(child.isTableOrPage)
        XCTAssertTrue(Stage2Descriptor.table(MFN(raw: 0x4_0000)).isTableOrPage)
        // merging a page run back into a block keeps everything but bit 1
        XCTAssertEqual(page.asLeaf(atLevel: 2).raw, 0x04C0_0000_407F_F77D)
        XCTAssertEqual(child.asLeaf(atLevel: 3).raw, 0x04C0_0000_4060_077F)
        // an in-place type change: output, kind and AF kept, every attribute replaced
        let ramRW = Stage2Attributes(memory: .normalWriteBack, access: .readWrite, shareability: .inner,
                                     executeNever: .executable, softwareBits: 1)
        XCTAssertEqual(page.replacingAttributes(ramRW).raw, 0x0080_0000_407F_F7FF)
        XCTAssertEqual(Stage2Descriptor.outputAndKindMask, 0x0000_FFFF_FFFF_F003)
    }

    func testFieldDecoding() {
        let d = Stage2Descriptor(raw: 0x01C0_0000_0900_06C5)
        XCTAssertEqual(d.memoryAttribute, .deviceNGnRE)
        XCTAssertEqual(d.access, .readWrite)
        XCTAssertEqual(d.shareability, .outer)
        XCTAssertEqual(d.executeNever, .never)
        XCTAssertEqual(d.softwareBits, 3)
        // MemAttr 0b0010 is not one this component writes.
        XCTAssertNil(Stage2Descriptor(raw: 0b0010 << 2 | 1).memoryAttribute)
    }

    func testTableDescriptor() {
        let t = Stage2Descriptor.table(MFN(raw: 0x8_0001))
        XCTAssertEqual(t.raw, 0x0000_0000_8000_1003)
        XCTAssertTrue(t.isTable(atLevel: 0))
        XCTAssertTrue(t.isTable(atLevel: 2))
        // The same bits at level 3 are a page, not a table.
        XCTAssertFalse(t.isTable(atLevel: 3))
        XCTAssertTrue(t.isLeaf(atLevel: 3))
        XCTAssertEqual(t.outputFrame, MFN(raw: 0x8_0001))
    }

    func testInvalidAndFieldPositions() {
        XCTAssertFalse(Stage2Descriptor.invalid.isValid)
        XCTAssertEqual(Stage2Descriptor.accessFlag, 1 << 10)
        XCTAssertEqual(Stage2Descriptor.contiguousBit, 1 << 52)
        XCTAssertEqual(Stage2Descriptor.outputAddressMask, 0x0000_FFFF_FFFF_F000)
        // Output bits above 47 are dropped, not smeared into attributes.
        let d = Stage2Descriptor.table(MFN(raw: 1 << 36 | 5))
        XCTAssertEqual(d.raw, 0x5003)
    }
}
