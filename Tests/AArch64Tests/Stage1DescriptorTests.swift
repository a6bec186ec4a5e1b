import XCTest
import AArch64

/// Stage-1 descriptor bits pinned to Arm ARM "Translation table descriptor formats" and stage-1 access permissions.
final class Stage1DescriptorTests: XCTestCase {
    func testLeafEncodingsTable() {
        struct Row { let level: Int; let mfn: UInt64; let attributes: Stage1Attributes; let raw: UInt64; let line: UInt }
        let rows: [Row] = [
            // page | AttrIndx 0 | AP EL1 RW (00) | SH inner | AF | nG | PXN | UXN
            Row(level: 3, mfn: 0x4_0123,
                attributes: .init(attributeIndex: 0, access: .privilegedReadWrite, shareability: .inner, notGlobal: true,
                                  privilegedExecuteNever: true, unprivilegedExecuteNever: true),
                raw: 0x0060_0000_4012_3F03, line: #line),
            // 2 MiB block | AttrIndx 2 | AP RO all ELs (11) | non-shareable | AF
            Row(level: 2, mfn: 0x9000,
                attributes: .init(attributeIndex: 2, access: .readOnly, shareability: .nonShareable, notGlobal: false,
                                  privilegedExecuteNever: false, unprivilegedExecuteNever: false),
                raw: 0x0000_0000_0900_04C9, line: #line),
            // 1 GiB block | AttrIndx 7 | AP RW all ELs (01) | outer | AF | UXN only | SW 0b1010
            Row(level: 1, mfn: 0x4_0000,
                attributes: .init(attributeIndex: 7, access: .readWrite, shareability: .outer, notGlobal: false,
                                  privilegedExecuteNever: false, unprivilegedExecuteNever: true, softwareBits: 0b1010),
                raw: 0x0540_0000_4000_065D, line: #line),
            // page | AttrIndx 1 | AP EL1 RO (10) | PXN only
            Row(level: 3, mfn: 0x3,
                attributes: .init(attributeIndex: 1, access: .privilegedReadOnly, shareability: .inner, notGlobal: false,
                                  privilegedExecuteNever: true, unprivilegedExecuteNever: false),
                raw: 0x0020_0000_0000_3787, line: #line),
        ]
        for row in rows {
            let d = Stage1Descriptor.leaf(MFN(raw: row.mfn), level: row.level, attributes: row.attributes)
            XCTAssertEqual(d.raw, row.raw, String(d.raw, radix: 16), line: row.line)
            XCTAssertTrue(d.isLeaf(atLevel: row.level), line: row.line)
            XCTAssertEqual(d.outputFrame, MFN(raw: row.mfn), line: row.line)
            XCTAssertEqual(d.attributes, row.attributes, line: row.line)
        }
    }

    func testFieldDecoding() {
        let d = Stage1Descriptor(raw: 0x0060_0000_4012_3F03)
        XCTAssertEqual(d.attributeIndex, 0)
        XCTAssertEqual(d.access, .privilegedReadWrite)
        XCTAssertEqual(d.shareability, .inner)
        XCTAssertTrue(d.isNotGlobal)
        XCTAssertTrue(d.accessFlag)
        XCTAssertEqual(Stage1Descriptor(raw: 0x0540_0000_4000_065D).attributes.softwareBits, 0b1010)
    }

    func testTableDescriptorHasNoHierarchicalAttributes() {
        let t = Stage1Descriptor.table(MFN(raw: 0x8_0001))
        XCTAssertEqual(t.raw, 0x0000_0000_8000_1003)
        XCTAssertTrue(t.isTable(atLevel: 1))
        XCTAssertEqual(Stage1Descriptor.nonSecureBit, 1 << 5)
        XCTAssertEqual(Stage1Descriptor.privilegedExecuteNever, 1 << 53)
        XCTAssertEqual(Stage1Descriptor.unprivilegedExecuteNever, 1 << 54)
    }
}
