import XCTest
import AArch64
@testable import Translation

/// The engine on its own, with the stage-1 format (what the SMMU stage-1 mirror uses):
/// one engine, two formats.
final class TranslationTableTests: XCTestCase {
    /// The smallest sink: a pool, and lists of what was reported.
    struct RecordingSink: TableEditSink {
        var pool: FakePool
        var later: [(UInt64, UInt64)] = []
        var now: [(UInt64, UInt64)] = []
        var removed: [(UInt64, UInt64, UInt64)] = []
        var unlinked: [UInt64] = []
        var rewritten = 0
        mutating func invalidateLater(_ input: UInt64, count: UInt64) { later.append((input, count)) }
        mutating func invalidateNow(_ input: UInt64, count: UInt64) { now.append((input, count)) }
        mutating func leafRemoved(_ input: UInt64, output: MFN, count: UInt64, descriptor: UInt64) {
            removed.append((input, output.raw, count))
        }
        mutating func tableUnlinked(_ frame: MFN) { unlinked.append(frame.raw) }
        mutating func leafRewritten(_ input: UInt64, count: UInt64, old: UInt64, new: UInt64) { rewritten += 1 }
        mutating func allocateTablePage() -> MFN { pool.allocateTablePage()! }
        var availableTablePages: Int { pool.availableTablePages }
    }

    let dma = Stage1Attributes(attributeIndex: MAIR.indexNormalWriteBack, access: .readWrite, shareability: .inner,
                               notGlobal: true, privilegedExecuteNever: true, unprivilegedExecuteNever: true)
    let dmaRO = Stage1Attributes(attributeIndex: MAIR.indexNormalWriteBack, access: .readOnly, shareability: .inner,
                                 notGlobal: true, privilegedExecuteNever: true, unprivilegedExecuteNever: true)

    func testStage1MapLookupSplitAndTeardown() throws {
        let memory = FakeMemory(frames: 64)
        var sink = RecordingSink(pool: FakePool(memory: memory))
        let geometry = try TableGeometry(stage1InputBits: 48, outputBits: 44)
        let table = TranslationTable<Stage1Format>(
            geometry: geometry, root: try TranslationTable<Stage1Format>.allocateRoot(geometry, pool: &sink.pool))
        // 600 pages at IOVA frame 0x1000 → PA frame 0x5000 (aligned): one 2 MiB block + 88 pages.
        try table.map(0x1000, to: MFN(raw: 0x5000), count: 600, attributes: dma, replace: false,
                      memory: memory, sink: &sink)
        let block = try XCTUnwrap(table.lookup(0x1000, memory: memory))
        XCTAssertEqual(block.level, 2)
        XCTAssertEqual(block.descriptor, Stage1Descriptor.leaf(MFN(raw: 0x5000), level: 2, attributes: dma).raw)
        // nG | AF | SH inner | AP RW (01) | AttrIndx 0 | block, PXN | UXN.
        XCTAssertEqual(block.descriptor, 0x0060_0000_0500_0F41)
        let page = try XCTUnwrap(table.lookup(0x1200, memory: memory))
        XCTAssertEqual(page.descriptor, 0x0060_0000_0520_0F43)
        XCTAssertEqual(page.output, MFN(raw: 0x5200))
        // Write-protect part of the block in place: split, only that part rewritten.
        let rewrite = { (d: UInt64) -> UInt64? in
            d & ~Stage1Descriptor.attributeMask | self.dmaRO.bits | Stage1Descriptor.accessFlag
        }
        let needed = try table.prepareUpdate(0x1010, count: 2, memory: memory, availablePages: sink.availableTablePages,
                                             rewrite: rewrite)
        XCTAssertEqual(needed, 1)
        table.commitUpdate(0x1010, count: 2, memory: memory, sink: &sink, rewrite: rewrite)
        XCTAssertEqual(sink.now.map { $0.1 }, [512])  // break-before-make of the block
        XCTAssertEqual(Stage1Descriptor(raw: try XCTUnwrap(table.lookup(0x1011, memory: memory)).descriptor).access, .readOnly)
        XCTAssertEqual(Stage1Descriptor(raw: try XCTUnwrap(table.lookup(0x1012, memory: memory)).descriptor).access, .readWrite)
        XCTAssertEqual(try XCTUnwrap(table.lookup(0x1012, memory: memory)).descriptor, 0x0060_0000_0501_2F43)
        XCTAssertEqual(sink.rewritten, 2)
        // Unmap everything, then tear down: every page back.
        try table.unmap(0x1000, count: 600, memory: memory, sink: &sink)
        XCTAssertNil(table.lookup(0x1000, memory: memory))
        XCTAssertEqual(sink.removed.reduce(0) { $0 + $1.2 }, 600)
        var cursor: UInt64 = 0, budget = Int.max
        XCTAssertTrue(table.teardown(cursor: &cursor, budget: &budget, memory: memory, sink: &sink))
        for f in sink.unlinked { sink.pool.freeTablePage(MFN(raw: f)) }
        XCTAssertEqual(sink.pool.availableTablePages, 64)
    }

    func testSplitEntryKeepsAttributesAndAdvancesOutput() {
        let block = Stage2Descriptor.leaf(MFN(raw: 0x4_0000), level: 1, attributes: P2MType.grantMapRO.stage2Attributes()).raw
        let child = VMSADescriptor.splitEntry(block, childLevel: 2, index: 3)
        XCTAssertEqual(child, Stage2Descriptor.leaf(MFN(raw: 0x4_0600), level: 2, attributes: P2MType.grantMapRO.stage2Attributes()).raw)
        let page = VMSADescriptor.splitEntry(child, childLevel: 3, index: 511)
        XCTAssertEqual(page, Stage2Descriptor.leaf(MFN(raw: 0x4_07FF), level: 3, attributes: P2MType.grantMapRO.stage2Attributes()).raw)
    }

    func testInputAndOutputValidation() throws {
        let memory = FakeMemory(frames: 8)
        var pool = FakePool(memory: memory)
        let geometry = try TableGeometry(stage1InputBits: 32, outputBits: 40)
        let table = TranslationTable<Stage1Format>(geometry: geometry,
                                                   root: try TranslationTable<Stage1Format>.allocateRoot(geometry, pool: &pool))
        XCTAssertThrowsError(try table.validateInput(0, count: 0)) { XCTAssertEqual($0 as? TableEditError, .zeroCount) }
        XCTAssertThrowsError(try table.validateInput(1 << 20, count: 1)) {
            XCTAssertEqual($0 as? TableEditError, .inputBeyondLimit(1 << 20, limit: 1 << 20))
        }
        XCTAssertThrowsError(try table.validateInput(UInt64.max, count: 2)) {
            XCTAssertEqual($0 as? TableEditError, .rangeWraps(UInt64.max, count: 2))
        }
        XCTAssertThrowsError(try table.validateOutput(MFN(raw: (1 << 28) - 1), count: 2)) {
            XCTAssertEqual($0 as? TableEditError, .outputBeyondLimit(MFN(raw: 1 << 28), limit: MFN(raw: 1 << 28)))
        }
        XCTAssertNoThrow(try table.validateInput((1 << 20) - 4, count: 4))
    }
}
