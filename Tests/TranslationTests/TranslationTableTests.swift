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
        /// Whether `invalidateNow` confirms (an IOMMU that lost its wait does not).
        var confirms = true
        var notMade: [(UInt64, UInt64)] = []
        mutating func invalidateNow(_ input: UInt64, count: UInt64) -> Bool {
            now.append((input, count))
            return confirms
        }
        mutating func breakNotMade(_ input: UInt64, count: UInt64) { notMade.append((input, count)) }
        mutating func leafRemoved(_ input: UInt64, output: MFN, count: UInt64, descriptor: UInt64) {
            removed.append((input, output.raw, count))
        }
        mutating func tableUnlinked(_ frame: MFN, clearedEntry: Int) { unlinked.append(frame.raw) }
        mutating func leafRewritten(_ input: UInt64, count: UInt64, old: UInt64, new: UInt64) { rewritten += 1 }
        mutating func allocateTablePage() -> MFN { pool.allocateTablePage()! }
        var availableTablePages: Int { pool.availableTablePages }
        func validEntries(_ table: MFN) -> Int { pool.validEntryCount(table) }
        mutating func setValidEntries(_ table: MFN, _ count: Int) { pool.setValidEntryCount(table, count) }
    }

    let dma = Stage1Attributes(attributeIndex: MAIR.indexNormalWriteBack, access: .readWrite, shareability: .inner,
                               notGlobal: true, privilegedExecuteNever: true, unprivilegedExecuteNever: true)
    let dmaRO = Stage1Attributes(attributeIndex: MAIR.indexNormalWriteBack, access: .readOnly, shareability: .inner,
                                 notGlobal: true, privilegedExecuteNever: true, unprivilegedExecuteNever: true)

    /// The engine on its own: a split whose break-before-make invalidation the
    /// sink does not confirm takes no table page and leaves the block invalid,
    /// reported removed whole; a type change of a block does the same.
    func testUnconfirmedBreakLeavesTheBlockInvalid() throws {
        let memory = FakeMemory(frames: 64)
        var sink = RecordingSink(pool: FakePool(memory: memory))
        let geometry = try TableGeometry(stage1InputBits: 48, outputBits: 44)
        let table = TranslationTable<Stage1Descriptor>(
            geometry: geometry, root: try TranslationTable<Stage1Descriptor>.allocateRoot(geometry, pool: &sink.pool))
        try table.map(0x1000, to: MFN(raw: 0x5000), count: 1024, attributes: dma, replace: false,
                      memory: memory, sink: &sink)
        let pages = sink.availableTablePages
        sink.confirms = false
        try table.unmap(0x1005, count: 1, memory: memory, sink: &sink)
        XCTAssertEqual(sink.now.map { $0.0 }, [0x1000])
        XCTAssertEqual(sink.notMade.map { $0.0 }, [0x1000])
        XCTAssertEqual(sink.notMade.map { $0.1 }, [512])
        XCTAssertEqual(sink.removed.map { $0.0 }, [0x1000])
        XCTAssertEqual(sink.removed.map { $0.1 }, [0x5000])
        XCTAssertEqual(sink.removed.map { $0.2 }, [512])
        XCTAssertNil(table.lookup(0x1006, memory: memory))
        XCTAssertEqual(sink.availableTablePages, pages, "no split table taken")
        let rewrite = { (d: UInt64) -> UInt64? in
            d & ~Stage1Descriptor.attributeMask | self.dmaRO.bits | Stage1Descriptor.accessFlag
        }
        let plan = try table.prepareUpdate(0x1210, count: 2, memory: memory, availablePages: sink.availableTablePages,
                                           rewrite: rewrite)
        table.commitUpdate(plan, memory: memory, sink: &sink, rewrite: rewrite)
        XCTAssertEqual(sink.notMade.map { $0.0 }, [0x1000, 0x1200])
        XCTAssertNil(table.lookup(0x1211, memory: memory))
        XCTAssertEqual(sink.rewritten, 0)
        XCTAssertEqual(sink.availableTablePages, pages)
    }

    /// `commitMapFromRoot`/`commitUnmapFromRoot` (the SMMU mirror's commits) are the
    /// general walk: after the same edits, the table translates every input as the
    /// commits with their shortcuts along the plan's path leave it (fresh tables,
    /// a leaf run, a block, a merge into a block, a split, a replacement with
    /// break-before-make, tables emptied and unlinked), with the same reports and
    /// the same table pages in use.
    func testCommitsFromTheRootEditAsThePathCommitsDo() throws {
        let geometry = try TableGeometry(stage1InputBits: 39, outputBits: 44)
        func run(fromRoot: Bool) throws -> (RecordingSink, [[TableLookup?]]) {
            let memory = FakeMemory(frames: 64)
            var sink = RecordingSink(pool: FakePool(memory: memory))
            let table = TranslationTable<Stage1Descriptor>(
                geometry: geometry, root: try TranslationTable<Stage1Descriptor>.allocateRoot(geometry, pool: &sink.pool))
            var snapshots: [[TableLookup?]] = []
            func snapshot() {
                snapshots.append(stride(from: UInt64(0x3_ff00), to: 0x4_0800, by: 1).map { table.lookup($0, memory: memory) })
            }
            let maps: [(UInt64, UInt64, UInt64)] = [
                (0x4_0005, 0x9_0005, 1),      // fresh tables down to a leaf
                (0x4_0006, 0x9_0006, 3),      // a run in that leaf table
                (0x4_0200, 0x9_0200, 512),    // a 2 MiB block
                (0x4_0400, 0x9_0400, 300),    // a leaf table, filled below...
                (0x4_0400 + 300, 0x9_0400 + 300, 212),  // ...to a full uniform table: merged into a block
                (0x4_0205, 0xa_0000, 2),      // into the block: split with break-before-make
                (0x4_0005, 0xb_0005, 1),      // replace a page with another output
            ]
            for (input, output, count) in maps {
                let plan = try table.prepareMap(input, to: MFN(raw: output), count: count, attributes: dma,
                                                replace: true, memory: memory,
                                                availablePages: sink.availableTablePages)
                if fromRoot {
                    table.commitMapFromRoot(plan, memory: memory, sink: &sink)
                } else {
                    table.commitMap(plan, memory: memory, sink: &sink)
                }
                snapshot()
            }
            let unmaps: [(UInt64, UInt64)] = [(0x4_0005, 4), (0x4_0400, 512), (0x4_0210, 3), (0x4_0000, 0x1000)]
            for (input, count) in unmaps {
                let plan = try table.prepareUnmap(input, count: count, memory: memory,
                                                  availablePages: sink.availableTablePages)
                if fromRoot {
                    table.commitUnmapFromRoot(plan, memory: memory, sink: &sink)
                } else {
                    table.commitUnmap(plan, memory: memory, sink: &sink)
                }
                snapshot()
            }
            return (sink, snapshots)
        }
        let (path, pathSnapshots) = try run(fromRoot: false)
        let (walk, walkSnapshots) = try run(fromRoot: true)
        XCTAssertEqual(walkSnapshots.count, 11)
        for (i, (w, p)) in zip(walkSnapshots, pathSnapshots).enumerated() {
            let differs = w.indices.first { w[$0] != p[$0] }
            XCTAssertNil(differs, "after edit \(i): input 0x3ff00 + \(differs ?? 0) translates differently")
        }
        XCTAssertEqual(pathSnapshots[4][0x500].map { $0.level }, 2, "the filled leaf table was merged into a block")
        XCTAssertEqual(pathSnapshots[5][0x305].map { $0.level }, 3, "the block was split")
        XCTAssertTrue(walkSnapshots[10].allSatisfy { $0 == nil }, "the last unmap cleared the range")
        XCTAssertEqual(walk.availableTablePages, path.availableTablePages)
        XCTAssertEqual(walk.unlinked.count, path.unlinked.count)
        XCTAssertEqual(walk.now.map { [$0.0, $0.1] }, path.now.map { [$0.0, $0.1] })
        XCTAssertEqual(walk.removed.map { [$0.0, $0.1, $0.2] }.sorted { $0.lexicographicallyPrecedes($1) },
                       path.removed.map { [$0.0, $0.1, $0.2] }.sorted { $0.lexicographicallyPrecedes($1) })
        // The same pages owed an invalidation (the walks may cut the ranges differently).
        func owed(_ ranges: [(UInt64, UInt64)]) -> Set<UInt64> {
            Set(ranges.flatMap { $0.0..<$0.0 + $0.1 })
        }
        XCTAssertEqual(owed(walk.later), owed(path.later))
        XCTAssertFalse(walk.now.isEmpty, "a break-before-make was exercised")
        XCTAssertFalse(walk.unlinked.isEmpty, "an emptied table was unlinked")
    }

    func testStage1MapLookupSplitAndTeardown() throws {
        let memory = FakeMemory(frames: 64)
        var sink = RecordingSink(pool: FakePool(memory: memory))
        let geometry = try TableGeometry(stage1InputBits: 48, outputBits: 44)
        let table = TranslationTable<Stage1Descriptor>(
            geometry: geometry, root: try TranslationTable<Stage1Descriptor>.allocateRoot(geometry, pool: &sink.pool))
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
        let plan = try table.prepareUpdate(0x1010, count: 2, memory: memory, availablePages: sink.availableTablePages,
                                           rewrite: rewrite)
        XCTAssertEqual(plan.tablePagesNeeded, 1)
        table.commitUpdate(plan, memory: memory, sink: &sink, rewrite: rewrite)
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

    func testInputAndOutputValidation() throws {
        let memory = FakeMemory(frames: 8)
        var pool = FakePool(memory: memory)
        let geometry = try TableGeometry(stage1InputBits: 32, outputBits: 40)
        let table = TranslationTable<Stage1Descriptor>(geometry: geometry,
                                                   root: try TranslationTable<Stage1Descriptor>.allocateRoot(geometry, pool: &pool))
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

    /// Edits inside one existing leaf table take a short path (`leafPath`): one walk
    /// down, then that table's entries, then the same merges or unlinks on the way
    /// up. It must do exactly what the general per-level recursion does. Two
    /// identical tables get the same seeded sequence of short and long maps
    /// (insert-only and replacing, pages only or blocks allowed, mergeable or not)
    /// and unmaps, one through the public prepare/commit calls, the other through
    /// the general recursion; every prepare outcome, every table word and every sink
    /// report must agree, and the short path must have been taken often.
    func testOneLeafTablePathMatchesTheGeneralRecursion() throws {
        let a = FakeMemory(frames: 16), b = FakeMemory(frames: 16)
        var sa = RecordingSink(pool: FakePool(memory: a)), sb = RecordingSink(pool: FakePool(memory: b))
        let geometry = try TableGeometry(stage1InputBits: 39, outputBits: 44)
        typealias Table = TranslationTable<Stage1Descriptor>
        let ta = Table(geometry: geometry, root: try Table.allocateRoot(geometry, pool: &sa.pool))
        // The general recursion is the engine's own (the typed table only forwards).
        let tb = Table(geometry: geometry, root: try Table.allocateRoot(geometry, pool: &sb.pool)).engine
        var x: UInt64 = 0x2545_F491_4F6C_DD1D
        func next() -> UInt64 {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return x
        }
        let counts: [UInt64] = [1, 1, 1, 2, 3, 17, 64, 511, 512, 700]
        var shortPath = 0
        for step in 0..<2000 {
            // Two leaf tables' worth of input, 1 GiB-aligned so 2 MiB blocks can form
            // and the level-2 table above them empties now and then.
            let input = 0x4_0000 + next() % 1024
            let count = counts[Int(next() % UInt64(counts.count))]
            if ta.leafPath(input, count: count, memory: a) != nil { shortPath += 1 }
            assertOneWalkMatchesTheSeparateWalks(ta, input, count: count, memory: a, step: step)
            if next() % 2 == 0 {
                var planA: RangePlan? = nil
                let pa: Result<Int, TableEditError> = Result { () throws(TableEditError) in
                    let plan = try ta.prepareUnmap(input, count: count, memory: a, availablePages: sa.availableTablePages)
                    let needed = plan.tablePagesNeeded
                    planA = consume plan
                    return needed
                }
                let pb = tb.planPartialBlocks(TableEngine.PlanNode.existing(tb.root), level: geometry.startLevel, first: input,
                                              end: input + count, memory: b) { _ in true }
                XCTAssertEqual(pa, .success(pb), "unmap prepare, step \(step)")
                guard let plan = planA.take() else { return XCTFail("unmap prepare failed, step \(step)") }
                ta.commitUnmap(plan, memory: a, sink: &sa)
                _ = tb.applyUnmap(tb.root, level: geometry.startLevel, first: input, end: input + count, linked: true,
                                  memory: b, sink: &sb)
            } else {
                let replace = next() % 2 == 0
                let largest: PageOrder = next() % 2 == 0 ? .page4K : .block2M
                // Mostly one contiguous 2 MiB-aligned output (mergeable), sometimes not.
                let output = MFN(raw: input + (next() % 8 == 0 ? 0x1_0000 + next() % 512 : 0x1_0000))
                let attributes = next() % 4 == 0 ? dmaRO : dma
                var planA: MapPlan? = nil
                let pa: Result<Int, TableEditError> = Result { () throws(TableEditError) in
                    let plan = try ta.prepareMap(input, to: output, count: count, attributes: attributes, replace: replace,
                                                 largestBlock: largest, memory: a, availablePages: sa.availableTablePages)
                    let needed = plan.tablePagesNeeded
                    planA = consume plan
                    return needed
                }
                var plan = MapPlan(input: input, output: output.raw, count: count, replace: replace,
                                   firstLeafLevel: largest == .page4K ? 3 : 2, templates: InlineArray(repeating: 0),
                                   tablePagesNeeded: 0)
                for level in 0...TableLevel.leafLevel {
                    plan.templates[level] = Stage1Descriptor.leafTemplate(level: level, attributes: attributes)
                }
                let pb: Result<Int, TableEditError> = Result { () throws(TableEditError) in
                    try tb.planMap(TableEngine.PlanNode.existing(tb.root), level: geometry.startLevel, first: input, end: input + count,
                                   out: output.raw, plan: plan, memory: b)
                }
                XCTAssertEqual(pa, pb, "map prepare, step \(step)")
                if let planA = planA.take() {
                    ta.commitMap(planA, memory: a, sink: &sa)
                    tb.applyMap(tb.root, level: geometry.startLevel, first: input, end: input + count, out: output.raw,
                                plan: plan, linked: true, fresh: false, memory: b, sink: &sb)
                }
            }
            XCTAssertTrue(a.words == b.words, "tables, step \(step)")
            XCTAssertEqual(a.stores, b.stores, "descriptor writes, step \(step)")
            XCTAssertEqual(sa.later.map { [$0.0, $0.1] }, sb.later.map { [$0.0, $0.1] }, "deferred invalidations, step \(step)")
            XCTAssertEqual(sa.now.map { [$0.0, $0.1] }, sb.now.map { [$0.0, $0.1] }, "break-before-make, step \(step)")
            XCTAssertEqual(sa.removed.map { [$0.0, $0.1, $0.2] }, sb.removed.map { [$0.0, $0.1, $0.2] },
                           "removed leaves, step \(step)")
            XCTAssertEqual(sa.unlinked, sb.unlinked, "unlinked tables, step \(step)")
            if a.words != b.words { return }
            for f in sa.unlinked { sa.pool.freeTablePage(MFN(raw: f)) }
            for f in sb.unlinked { sb.pool.freeTablePage(MFN(raw: f)) }
            sa.unlinked.removeAll()
            sb.unlinked.removeAll()
        }
        XCTAssertGreaterThan(shortPath, 500, "the short path was exercised")
    }

    /// `leafOrMissingPath` (the P2M's one walk for a short map) finds what
    /// `leafPath`, `missingTableLevel` and `path(to:)` find separately: the same
    /// level, the same tables and entries along the path, and the cache filled
    /// exactly when the leaf table exists.
    func assertOneWalkMatchesTheSeparateWalks<D: VMSAv8Descriptor>(
        _ table: TranslationTable<D>, _ input: UInt64, count: UInt64, memory: FakeMemory, step: Int
    ) {
        var cache = LeafPathCache()
        let one = table.leafOrMissingPath(input, count: count, memory: memory, cache: &cache)
        let expected: (path: LeafPath, level: Int)?
        if let leaf = table.leafPath(input, count: count, memory: memory) {
            expected = (leaf, TableLevel.leafLevel)
        } else if let level = table.missingTableLevel(input, count: count, memory: memory) {
            expected = table.path(to: level, input, memory: memory).map { ($0, level) }
            XCTAssertNotNil(expected, "path to the missing table's parent, step \(step)")
        } else {
            expected = nil
        }
        XCTAssertEqual(one?.level, expected?.level, "level, step \(step)")
        XCTAssertEqual(cache.isEmpty, one?.level != TableLevel.leafLevel, "cache filled for a leaf table, step \(step)")
        guard let one, let expected else { return }
        for level in table.geometry.startLevel...one.level {
            XCTAssertEqual(one.path.table(level), expected.path.table(level), "table at \(level), step \(step)")
            if level < one.level {
                XCTAssertEqual(one.path.entry(level), expected.path.entry(level), "entry at \(level), step \(step)")
            }
        }
    }

    /// A single-page unmap that empties its leaf table, and with it the only table
    /// above, unlinks both on the way up (never the root), each after its entry was
    /// cleared and its range recorded for invalidation.
    func testSinglePageUnmapUnlinksEmptiedTablesUpToTheRoot() throws {
        let memory = FakeMemory(frames: 8)
        var sink = RecordingSink(pool: FakePool(memory: memory))
        let geometry = try TableGeometry(stage1InputBits: 39, outputBits: 44)
        typealias Table = TranslationTable<Stage1Descriptor>
        let table = Table(geometry: geometry, root: try Table.allocateRoot(geometry, pool: &sink.pool))
        try table.map(0x4_0123, to: MFN(raw: 0x9_0123), count: 1, attributes: dma, replace: false,
                      memory: memory, sink: &sink)
        let path = try XCTUnwrap(table.leafPath(0x4_0123, count: 1, memory: memory))
        XCTAssertEqual(path.table(geometry.startLevel), table.root)
        let stores = memory.stores
        try table.unmap(0x4_0123, count: 1, memory: memory, sink: &sink)
        XCTAssertEqual(memory.stores - stores, 3, "the leaf, then the two table descriptors above it")
        XCTAssertEqual(sink.unlinked, [path.leafTable.raw, path.table(geometry.startLevel + 1).raw])
        XCTAssertEqual(sink.later.map { [$0.0, $0.1] }, [[0x4_0123, 1], [0x4_0123, 1], [0x4_0123, 1]])
        XCTAssertEqual(sink.removed.map { [$0.0, $0.1, $0.2] }, [[0x4_0123, 0x9_0123, 1]])
        XCTAssertTrue(memory.words[0..<512].allSatisfy { $0 == 0 }, "root empty again")
        XCTAssertNil(table.lookup(0x4_0123, memory: memory))
    }

    /// Over a random sequence of maps (insert-only and replacing, pages and blocks)
    /// and unmaps, with tables filling, splitting, merging and
    /// emptying, every table page's kept valid-entry count equals a recount, and an
    /// emptied table is unlinked exactly when its count reaches zero: no table in
    /// the tree is ever empty, and the unlinked pages are freed only after being
    /// reported (the caller's flush).
    func testValidEntryCountsEqualARecountOverRandomEdits() throws {
        let memory = FakeMemory(frames: 96)
        var sink = RecordingSink(pool: FakePool(memory: memory))
        let geometry = try TableGeometry(stage1InputBits: 39, outputBits: 44)
        typealias Table = TranslationTable<Stage1Descriptor>
        let table = Table(geometry: geometry, root: try Table.allocateRoot(geometry, pool: &sink.pool))
        var x: UInt64 = 0xC0FF_EE00_0012
        func next() -> UInt64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
        var emptiedTables = 0
        for step in 0..<1500 {
            // Two 1 GiB areas, so level-1 entries and their tables come and go too.
            let base = (next() % 2) << 18 + (next() % 3) << 9
            let first = base + (next() % 2 == 0 ? 0 : next() % 512)
            let count: UInt64 = [1, 1, 7, 300, 512, 1024][Int(next() % 6)]
            let output = MFN(raw: 0x10_0000 + (next() % 2 == 0 ? first : first + next() % 4))
            do {
                if next() % 2 == 0 {
                    try table.map(first, to: output, count: count, attributes: next() % 4 == 0 ? dmaRO : dma,
                                  replace: next() % 2 == 0, memory: memory, sink: &sink)
                } else {
                    try table.unmap(first, count: count, memory: memory, sink: &sink)
                }
            } catch TableEditError.alreadyMapped {
            } catch TableEditError.tablePoolExhausted {
            }
            auditValidEntryCounts(table, memory: memory, pool: sink.pool, "step \(step)")
            emptiedTables += sink.unlinked.count
            for f in sink.unlinked { sink.pool.freeTablePage(MFN(raw: f)) }
            sink.unlinked.removeAll()
        }
        XCTAssertGreaterThan(emptiedTables, 50, "tables were emptied and unlinked")
        var cursor: UInt64 = 0, budget = Int.max
        XCTAssertTrue(table.teardown(cursor: &cursor, budget: &budget, memory: memory, sink: &sink))
    }

    /// One aligned 2 MiB block into an invalid entry of an existing level-2 table,
    /// and its unmap, each take the one-entry path: one descriptor store, one
    /// removal report and one range for the flush, and nothing scanned.
    func testOneBlockIntoAnExistingTableIsOneStore() throws {
        let memory = FakeMemory(frames: 8)
        var sink = RecordingSink(pool: FakePool(memory: memory))
        let geometry = try TableGeometry(stage1InputBits: 39, outputBits: 44)
        typealias Table = TranslationTable<Stage1Descriptor>
        let table = Table(geometry: geometry, root: try Table.allocateRoot(geometry, pool: &sink.pool))
        try table.map(0x4_0123, to: MFN(raw: 0x9_0123), count: 1, attributes: dma, replace: false,
                      memory: memory, sink: &sink)
        let plan = try table.prepareMap(0x4_0400, to: MFN(raw: 0x7_0000), count: 512, attributes: dma, replace: false,
                                        memory: memory, availablePages: sink.availableTablePages)
        XCTAssertEqual(plan.pathLevel, 2)
        XCTAssertEqual(plan.tablePagesNeeded, 0)
        var stores = memory.stores
        table.commitMap(plan, memory: memory, sink: &sink)
        XCTAssertEqual(memory.stores - stores, 1)
        XCTAssertEqual(table.lookup(0x4_0401, memory: memory)?.level, 2)
        XCTAssertEqual(table.lookup(0x4_0401, memory: memory)?.output, MFN(raw: 0x7_0001))
        // Insert-only over it is refused by the same path's walk, and writes nothing.
        stores = memory.stores
        XCTAssertThrowsError(try table.map(0x4_0400, to: MFN(raw: 0x7_0000), count: 512, attributes: dma,
                                           replace: false, memory: memory, sink: &sink))
        XCTAssertEqual(memory.stores, stores)
        try table.unmap(0x4_0400, count: 512, memory: memory, sink: &sink)
        XCTAssertEqual(memory.stores - stores, 1)
        XCTAssertEqual(sink.removed.map { [$0.0, $0.1, $0.2] }, [[0x4_0400, 0x7_0000, 512]])
        XCTAssertEqual(sink.later.map { [$0.0, $0.1] }, [[0x4_0400, 512]])
        XCTAssertNil(table.lookup(0x4_0400, memory: memory))
        XCTAssertEqual(table.lookup(0x4_0123, memory: memory)?.output, MFN(raw: 0x9_0123), "the page beside it stays")
        auditValidEntryCounts(table, memory: memory, pool: sink.pool)
    }
}
