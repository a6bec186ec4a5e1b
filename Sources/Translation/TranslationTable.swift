import AArch64

/// The VMSAv8-64 table engine (4 KiB granule), one for both formats: it reads and
/// writes raw words through the bits stage 1 and stage 2 share (`VMSAv8Entry`), and
/// a leaf's format-specific attributes reach it already packed. The image thus
/// holds one engine, whichever formats its tables use; the typed
/// `TranslationTable<Stage2Descriptor>` (the P2M) and `TranslationTable<Stage1Descriptor>`
/// (SMMU stage-1 tables) are thin views of it that take their own format's attributes.
///
/// It owns a tree of table pages and edits it through `PhysicalMemory`, taking pages
/// from a `TablePageSource` and reporting everything else to a `TableEditSink`.
/// Inputs and outputs are frame numbers (the P2M calls them GFN and MFN; an SMMU
/// stage-1 table calls them IOVA and PA frames).
///
/// Every multi-entry edit has two phases (Hafnium's `mm_*_prepare`/`commit`):
/// `prepare*` walks read-only, finds conflicts and counts the table pages the edit
/// will allocate, and throws without writing anything; `commit*` then applies the
/// edit and cannot fail, because the pages it allocates were counted against the
/// pool, which nobody else touches in between (the caller holds the table's lock).
///
/// A run of consecutive frames is walked once per table it touches: each level
/// iterates its entries over the sub-range it covers and recurses once per entry,
/// so a leaf table sees one call that writes up to 512 descriptors in a tight loop.
/// Blocks are used whenever input, output and remaining length allow (1 GiB at
/// level 1, 2 MiB at level 2). A block that an edit covers only in part is split
/// into a fully populated next-level table with break-before-make (Arm ARM "Using
/// break-before-make when updating translation table entries"): entry invalid,
/// `invalidateNow`, then the table, filled and edited while unlinked, is linked. If
/// `invalidateNow` is not confirmed, the entry stays invalid (`breakNotMade`).
///
/// Every table page's count of valid entries lives in its pool
/// (`TableEditSink.validEntries`), and every path that writes a descriptor keeps
/// it: an unmap knows that a table emptied from the count alone, without reading
/// the table, and frees it through the flush like any other unlinked page.
public struct TableEngine: Sendable {
    /// The engine's view of every descriptor it handles, of either stage.
    public typealias Descriptor = VMSAv8Entry

    public let geometry: TableGeometry
    /// The root table (first of `geometry.rootTables` concatenated pages).
    public let root: MFN
    let rootIndexMask: UInt64

    /// A table rooted at `root` (zeroed, `geometry.rootTables` contiguous pages aligned
    /// to their total size; see `allocateRoot`). The value is a handle: the pages
    /// belong to whoever owns it, and exactly one owner may edit them.
    public init(geometry: TableGeometry, root: MFN) {
        precondition(root.raw & UInt64(geometry.rootTables - 1) == 0, "concatenated root must be aligned to its size")
        self.geometry = geometry
        self.root = root
        self.rootIndexMask = UInt64(geometry.rootTables * TableLevel.entriesPerTable - 1)
    }

    /// Allocate a zeroed (possibly concatenated) root for `geometry` from `pool`.
    public static func allocateRoot<Pool: TablePageSource>(
        _ geometry: TableGeometry, pool: inout Pool
    ) throws(TableEditError) -> MFN {
        let count = geometry.rootTables
        let frame = count == 1 ? pool.allocateTablePage() : pool.allocateContiguousTablePages(count)
        guard let frame else { throw .tablePoolExhausted(needed: count, available: pool.availableTablePages) }
        return frame
    }

    // MARK: Addressing

    @inline(__always) static func pageShift(_ level: Int) -> UInt64 {
        UInt64(TableLevel.bitsPerLevel * (TableLevel.leafLevel - level))
    }
    @inline(__always) static func span(_ level: Int) -> UInt64 { 1 &<< pageShift(level) }
    static var indexMask: UInt64 { UInt64(TableLevel.entriesPerTable - 1) }

    /// Physical address of the entry translating input frame `f` in table `t` at `level`.
    @inline(__always) func entryAddress(_ t: MFN, _ level: Int, _ f: UInt64) -> PhysAddr {
        let mask = level == geometry.startLevel ? rootIndexMask : Self.indexMask
        return PhysAddr(raw: t.raw << PageSize.shift4K &+ ((f >> Self.pageShift(level)) & mask) &* TableLevel.descriptorBytes)
    }
    @inline(__always) static func child(_ d: UInt64) -> MFN { Descriptor.outputFrame(raw: d) }

    /// `delta` entries of table page `page` became valid (negative: invalid).
    @inline(__always)
    static func countEntries<S: TableEditSink & ~Copyable>(_ page: MFN, _ delta: Int, sink: inout S) {
        sink.setValidEntries(page, sink.validEntries(page) &+ delta)
    }

    /// Check an input range: non-empty, no wrap, inside the input size. The check
    /// is inline (it runs on every edit); which error it is, is not.
    @inline(__always)
    public func validateInput(_ input: UInt64, count: UInt64) throws(TableEditError) {
        let (end, wrapped) = input.addingReportingOverflow(count)
        guard count != 0, !wrapped, end <= geometry.inputFrameLimit else {
            throw inputError(input, count: count)
        }
    }
    @inline(never)
    func inputError(_ input: UInt64, count: UInt64) -> TableEditError {
        if count == 0 { return .zeroCount }
        let (end, wrapped) = input.addingReportingOverflow(count)
        if wrapped { return .rangeWraps(input, count: count) }
        let limit = geometry.inputFrameLimit
        return .inputBeyondLimit(input >= limit ? input : end - 1, limit: limit)
    }
    /// Check an output range: no wrap, inside the output size.
    @inline(__always)
    public func validateOutput(_ output: MFN, count: UInt64) throws(TableEditError) {
        let limit = geometry.outputFrameLimit
        let (end, wrapped) = output.raw.addingReportingOverflow(count)
        guard !wrapped, output.raw < limit, end <= limit else {
            throw .outputBeyondLimit(wrapped || output.raw >= limit ? output : MFN(raw: end - 1), limit: MFN(raw: limit))
        }
    }

    // MARK: Lookup

    /// The leaf translating input frame `input`: its raw descriptor, level, and the
    /// output frame for `input` itself (inside a block, offset accordingly).
    public func lookup<M: PhysicalMemory>(_ input: UInt64, memory: M) -> TableLookup? {
        guard input < geometry.inputFrameLimit else { return nil }
        var t = root
        var level = geometry.startLevel
        while true {
            let d = memory.load64(entryAddress(t, level, input))
            guard Descriptor.isValid(raw: d) else { return nil }
            if Descriptor.isTable(raw: d, atLevel: level) {
                t = Self.child(d)
                level += 1
                continue
            }
            // A block encoding at level 0 or a table encoding at level 3 would be the
            // engine's own corruption: it never writes either.
            precondition(level >= TableLevel.firstBlockLevel)
            let offset = input & (Self.span(level) - 1)
            return TableLookup(descriptor: d, level: level,
                               output: MFN(raw: Descriptor.outputFrame(raw: d).raw &+ offset))
        }
    }

    // MARK: Map

    /// Phase 1 of a map: validate, find conflicts, count table pages. Writes nothing.
    public func prepareMap<M: PhysicalMemory>(
        _ input: UInt64, to output: MFN, count: UInt64, attributes: Descriptor.LeafAttributes,
        replace: Bool, largestBlock: PageOrder = .block1G, memory: M, availablePages: Int
    ) throws(TableEditError) -> MapPlan {
        var cache = LeafPathCache()
        return try prepareMap(input, to: output, count: count, attributes: attributes, replace: replace,
                              largestBlock: largestBlock, memory: memory, availablePages: availablePages,
                              cache: &cache)
    }

    /// `prepareMap` with the owner's `LeafPathCache`: an edit inside the leaf table
    /// the previous one used skips the walk (pass the same cache to `commitMap`).
    public func prepareMap<M: PhysicalMemory>(
        _ input: UInt64, to output: MFN, count: UInt64, attributes: Descriptor.LeafAttributes,
        replace: Bool, largestBlock: PageOrder = .block1G, memory: M, availablePages: Int,
        cache: inout LeafPathCache
    ) throws(TableEditError) -> MapPlan {
        try validateInput(input, count: count)
        try validateOutput(output, count: count)
        precondition(largestBlock == .page4K || largestBlock == .block2M || largestBlock == .block1G,
                     "a leaf order of the 4 KiB granule")
        let firstLeafLevel = Self.firstLeafLevel(largestBlock)
        var plan = MapPlan(input: input, output: output.raw, count: count, replace: replace,
                           // A literal: the host optimizer leaves `InlineArray(repeating:)` as a
                           // loop through a generic initializer, on every map.
                           firstLeafLevel: firstLeafLevel, templates: [0, 0, 0, 0], tablePagesNeeded: 0)
        // Two encodings cover every level (blocks differ from pages only in kind);
        // level 0 holds no leaf, and its template is never read.
        let block = Descriptor.leafTemplate(level: TableLevel.firstBlockLevel, attributes: attributes)
        plan.templates[1] = block
        plan.templates[2] = block
        plan.templates[3] = Descriptor.leafTemplate(level: TableLevel.leafLevel, attributes: attributes)
        if let path = leafPath(input, count: count, memory: memory, cache: &cache) {
            // The whole run lands in one existing leaf table: only an insert-only map
            // has something to check, and no table page is needed.
            if !replace { try checkLeavesInvalid(path.leafTable, first: input, end: input + count, memory: memory) }
            plan.pathLevel = TableLevel.leafLevel
            return plan
        }
        if let level = missingTableLevel(input, count: count, memory: memory) {
            // The whole run lands in one leaf table that does not exist yet, below an
            // invalid entry at `level`: new tables from there down, all invalid, so
            // nothing to check, and no merge (the run is short of a whole table).
            let needed = TableLevel.leafLevel - level
            guard needed <= availablePages else { throw .tablePoolExhausted(needed: needed, available: availablePages) }
            plan.pathLevel = level
            plan.buildsTables = true
            plan.tablePagesNeeded = needed
            return plan
        }
        if let (_, level) = blockPath(input, to: output.raw, count: count, firstLeafLevel: firstLeafLevel,
                                      memory: memory) {
            // Exactly one block, into an invalid entry of an existing table: one
            // store, nothing to check or allocate (what the recursion would find).
            plan.pathLevel = level
            return plan
        }
        let needed = try planMap(.existing(root), level: geometry.startLevel, first: input,
                                 end: input + count, out: output.raw, plan: plan, memory: memory)
        guard needed <= availablePages else { throw .tablePoolExhausted(needed: needed, available: availablePages) }
        plan.tablePagesNeeded = needed
        return plan
    }

    /// Phase 2 of a map: apply a plan from `prepareMap` made under the same lock.
    public func commitMap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming MapPlan, memory: M, sink: inout S
    ) {
        commitMap(plan, memory: memory, sink: &sink, cache: LeafPathCache())
    }

    /// `commitMap` with the cache its `prepareMap` was given.
    public func commitMap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming MapPlan, memory: M, sink: inout S, cache: LeafPathCache
    ) {
        // The walk finds what the prepare found: nothing edits the table between a
        // prepare and its commit (the caller holds the lock throughout). Walking
        // again (a load per level) is cheaper than carrying the path in the plan,
        // and the cache, which the prepare filled for a leaf run, spares even that.
        let pathLevel = plan.pathLevel
        if pathLevel != 0, let path = cache.path(pathLevel, plan.input) ?? path(to: pathLevel, plan.input, memory: memory) {
            if plan.buildsTables {
                commitNewTables(path, at: pathLevel, plan.input, to: plan.output, count: plan.count,
                                template: plan.templates[TableLevel.leafLevel], memory: memory, sink: &sink)
                return
            }
            if pathLevel == TableLevel.leafLevel {
                commitLeafMap(path, plan.input, to: plan.output, count: plan.count,
                              template: plan.templates[TableLevel.leafLevel], replace: plan.replace,
                              firstLeafLevel: plan.firstLeafLevel, memory: memory, sink: &sink)
                return
            }
            commitBlockMap(path, at: pathLevel, plan.input, to: plan.output, template: plan.templates[pathLevel],
                           firstLeafLevel: plan.firstLeafLevel, memory: memory, sink: &sink)
            return
        }
        applyMap(root, level: geometry.startLevel, first: plan.input, end: plan.input + plan.count,
                 out: plan.output, plan: plan, linked: true, fresh: false, memory: memory, sink: &sink)
    }

    /// `commitMap` as the general walk from the root, without the shortcuts along
    /// the plan's path (they edit the same entries the same way): for an editor
    /// whose commits are rare, one small instantiation of the engine (the SMMU's
    /// stage-1 mirror) instead of every shortcut's.
    public func commitMapFromRoot<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming MapPlan, memory: M, sink: inout S
    ) {
        applyMap(root, level: geometry.startLevel, first: plan.input, end: plan.input + plan.count,
                 out: plan.output, plan: plan, linked: true, fresh: false, memory: memory, sink: &sink)
    }

    /// What `applyMap` does on its way back up from `pathLevel` through the table
    /// entries of `path`: merge each table a map filled uniformly into a block.
    @inline(__always)
    func mergeUpward<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ path: LeafPath, from pathLevel: Int, _ input: UInt64, firstLeafLevel: Int, memory: M, sink: inout S
    ) {
        var level = pathLevel - 1
        while level >= max(geometry.startLevel, firstLeafLevel) {
            mergeIfUniform(path.table(level + 1), at: path.entry(level), level: level,
                           base: input & ~(Self.span(level) - 1), memory: memory, sink: &sink)
            level -= 1
        }
    }

    /// The level of the invalid entry under which the leaf table that would hold
    /// all of [input, input+count) is missing (the run short of a whole leaf
    /// table), or nil if that table exists, a block is in the way, or the run
    /// spans tables. Input already validated.
    @inline(__always)
    public func missingTableLevel<M: PhysicalMemory>(_ input: UInt64, count: UInt64, memory: M) -> Int? {
        let leafTableShift = Self.pageShift(TableLevel.leafLevel - 1)
        guard count < Self.span(TableLevel.leafLevel - 1),
              input >> leafTableShift == (input + count - 1) >> leafTableShift else { return nil }
        var t = root
        var level = geometry.startLevel
        while level < TableLevel.leafLevel {
            let d = memory.load64(entryAddress(t, level, input))
            if !Descriptor.isValid(raw: d) { return level }
            guard Descriptor.isTable(raw: d, atLevel: level) else { return nil }
            t = Self.child(d)
            level += 1
        }
        return nil
    }

    /// Phase 2 of a map whose run lands in a missing leaf table (`missingTableLevel`
    /// gave `level`): what `applyMap` does there. It takes the new tables top down,
    /// writes the run into the leaf one, then links each into the one above, the
    /// last into the invalid entry of the existing table at `level`.
    public func commitNewTables<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ path: LeafPath, at level: Int, _ input: UInt64, to output: UInt64, count: UInt64, template: UInt64,
        memory: M, sink: inout S
    ) {
        var tables = LeafPath()
        for l in level + 1...TableLevel.leafLevel { tables.setTable(l, sink.allocateTablePage()) }
        applyLeafRun(tables.leafTable, first: input, end: input + count, out: output, template: template,
                     replace: false, linked: false, fresh: true, memory: memory, sink: &sink)
        var l = TableLevel.leafLevel - 1
        while l > level {
            link(tables.table(l + 1), at: entryAddress(tables.table(l), l, input), replacing: 0, memory: memory, sink: &sink)
            l -= 1
        }
        // Into an invalid entry: nothing to break first.
        link(tables.table(level + 1), at: entryAddress(path.table(level), level, input), replacing: 0,
             memory: memory, sink: &sink)
    }

    // MARK: The cached leaf table

    /// Phase 1 of a map of [input, input+count) → output that lies in the leaf table
    /// `cache` leads to (`LeafPathCache.path(covering:count:)` gave `path`): what
    /// `prepareMap` checks there, in its order, without building a plan. Writes nothing.
    @inline(__always)
    public func prepareLeafMap<M: PhysicalMemory>(
        _ path: LeafPath, _ input: UInt64, to output: MFN, count: UInt64, replace: Bool, largestBlock: PageOrder,
        memory: M
    ) throws(TableEditError) {
        // The input is valid: a non-empty run inside an existing leaf table.
        try validateOutput(output, count: count)
        precondition(largestBlock == .page4K || largestBlock == .block2M || largestBlock == .block1G,
                     "a leaf order of the 4 KiB granule")
        if !replace { try checkLeavesInvalid(path.leafTable, first: input, end: input + count, memory: memory) }
    }

    /// Phase 2 of a map inside one leaf table (`commitMap` of a plan whose path
    /// level is 3): the run of leaves, then the merges on the way up.
    @inline(__always)
    public func commitLeafMap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ path: LeafPath, _ input: UInt64, to output: UInt64, count: UInt64, template: UInt64, replace: Bool,
        firstLeafLevel: Int, memory: M, sink: inout S
    ) {
        applyLeafRun(path.leafTable, first: input, end: input + count, out: output, template: template,
                     replace: replace, linked: true, fresh: false, memory: memory, sink: &sink)
        mergeUpward(path, from: TableLevel.leafLevel, input, firstLeafLevel: firstLeafLevel, memory: memory,
                    sink: &sink)
    }

    /// The existing table at `level` (1 or 2) whose invalid entry takes the one block
    /// [input, input+count) → output exactly (`singleBlockLevel`), and its path; nil
    /// otherwise. What `prepareMap` finds before its one-store plan; input and output
    /// already validated.
    @inline(__always)
    public func blockPath<M: PhysicalMemory>(
        _ input: UInt64, to output: UInt64, count: UInt64, firstLeafLevel: Int, memory: M
    ) -> (path: LeafPath, level: Int)? {
        guard let level = singleBlockLevel(input, output, count: count, firstLeafLevel: firstLeafLevel),
              let path = self.path(to: level, input, memory: memory),
              !Descriptor.isValid(raw: memory.load64(entryAddress(path.table(level), level, input))) else { return nil }
        return (path, level)
    }

    /// Phase 2 of a one-block map that `blockPath` found (`commitMap` of a plan whose
    /// path level is 1 or 2): one store, then the merges on the way up.
    @inline(__always)
    public func commitBlockMap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ path: LeafPath, at level: Int, _ input: UInt64, to output: UInt64, template: UInt64, firstLeafLevel: Int,
        memory: M, sink: inout S
    ) {
        let entry = entryAddress(path.table(level), level, input)
        memory.store64(entry, template | output << PageSize.shift4K)
        Self.countEntries(entry.frame, 1, sink: &sink)
        mergeUpward(path, from: level, input, firstLeafLevel: firstLeafLevel, memory: memory, sink: &sink)
    }

    /// The table at `level` (1 or 2) of which [input, input+count) is exactly one
    /// whole entry, and its path (what `prepareUnmap` finds before its one-entry
    /// plan); nil otherwise. Input already validated.
    @inline(__always)
    public func wholeEntryPath<M: PhysicalMemory>(_ input: UInt64, count: UInt64, memory: M) -> (path: LeafPath, level: Int)? {
        guard let level = singleBlockLevel(input, 0, count: count, firstLeafLevel: TableLevel.firstBlockLevel),
              let path = self.path(to: level, input, memory: memory) else { return nil }
        return (path, level)
    }

    /// The first level whose leaves `largestBlock` allows (1: 1 GiB, 2: 2 MiB, 3: pages).
    @inline(__always)
    public static func firstLeafLevel(_ largestBlock: PageOrder) -> Int {
        max(TableLevel.firstBlockLevel, TableLevel.leafLevel - Int(largestBlock.raw) / TableLevel.bitsPerLevel)
    }

    // MARK: One leaf table

    /// The path to the existing leaf table that holds all of [input, input+count),
    /// a part of it short of the whole table, or nil if the run covers or crosses a
    /// whole leaf table or meets an invalid entry or a block above it. Most
    /// single-page and short-run edits take this path: one load per level in a tight
    /// loop, instead of the general per-level recursion, which is built for runs that
    /// fan out over many entries. Along it, the general recursion would find a table
    /// descriptor at every level and no entry it could replace whole (that needs the
    /// whole table's span), so it would do exactly what the callers do with the path.
    /// Input already validated.
    @inline(__always)
    func leafPath<M: PhysicalMemory>(_ input: UInt64, count: UInt64, memory: M) -> LeafPath? {
        var cache = LeafPathCache()
        return leafPath(input, count: count, memory: memory, cache: &cache)
    }

    /// `leafPath`, answered from `cache` when it holds the path to the same leaf
    /// table, and kept there when it walked to one. The caller owns the cache and
    /// must invalidate it whenever a table page leaves the tree (see `LeafPathCache`).
    @inline(__always)
    public func leafPath<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M, cache: inout LeafPathCache
    ) -> LeafPath? {
        let leafTableShift = Self.pageShift(TableLevel.leafLevel - 1)
        let key = input >> leafTableShift
        guard count < Self.span(TableLevel.leafLevel - 1), key == (input + count - 1) >> leafTableShift else {
            return nil
        }
        if key == cache.key { return cache.path }
        if key == cache.otherKey { return cache.otherPath }
        guard let path = path(to: TableLevel.leafLevel, input, memory: memory) else { return nil }
        cache.fill(key, path)
        return path
    }

    /// `leafPath` and `missingTableLevel` in one walk, for a run short of a whole
    /// leaf table: the path to its existing leaf table (level 3, kept in `cache` as
    /// `leafPath` keeps it), or the path to the existing table whose invalid entry
    /// at `level` is where that leaf table is missing (what `path(to: level)` gives);
    /// nil if the run spans tables or a block is in the way. Input already validated.
    @inline(__always)
    public func leafOrMissingPath<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M, cache: inout LeafPathCache
    ) -> (path: LeafPath, level: Int)? {
        let leafTableShift = Self.pageShift(TableLevel.leafLevel - 1)
        let key = input >> leafTableShift
        guard count < Self.span(TableLevel.leafLevel - 1), key == (input + count - 1) >> leafTableShift else {
            return nil
        }
        if key == cache.key { return (cache.path, TableLevel.leafLevel) }
        if key == cache.otherKey { return (cache.otherPath, TableLevel.leafLevel) }
        var path = LeafPath()
        var t = root
        var level = geometry.startLevel
        while level < TableLevel.leafLevel {
            let address = entryAddress(t, level, input)
            let d = memory.load64(address)
            if !Descriptor.isValid(raw: d) {
                path.setTable(level, t)
                return (path, level)
            }
            guard Descriptor.isTable(raw: d, atLevel: level) else { return nil }
            path.record(level: level, table: t, entry: address)
            t = Self.child(d)
            level += 1
        }
        path.setTable(TableLevel.leafLevel, t)
        cache.fill(key, path)
        return (path, TableLevel.leafLevel)
    }

    /// The path through table descriptors to the existing table at `target` that
    /// holds input `input`'s entry, or nil if an invalid entry or a block comes
    /// first. Input already validated.
    @inline(__always)
    public func path<M: PhysicalMemory>(to target: Int, _ input: UInt64, memory: M) -> LeafPath? {
        var path = LeafPath()
        var t = root
        var level = geometry.startLevel
        while level < target {
            let address = entryAddress(t, level, input)
            let d = memory.load64(address)
            guard Descriptor.isValid(raw: d), Descriptor.isTable(raw: d, atLevel: level) else { return nil }
            path.record(level: level, table: t, entry: address)
            t = Self.child(d)
            level += 1
        }
        path.setTable(target, t)
        return path
    }

    /// The block level (2: 2 MiB, 1: 1 GiB) at which [input, input+count) → output
    /// is exactly one entry, a block that `firstLeafLevel` allows, or nil. Never
    /// above the start level (a 1 GiB range under a level-2 root spans entries).
    @inline(__always)
    public func singleBlockLevel(_ input: UInt64, _ output: UInt64, count: UInt64, firstLeafLevel: Int) -> Int? {
        var level = TableLevel.leafLevel - 1
        while level >= max(max(TableLevel.firstBlockLevel, firstLeafLevel), geometry.startLevel) {
            let span = Self.span(level)
            if count == span { return (input | output) & (span - 1) == 0 ? level : nil }
            level -= 1
        }
        return nil
    }

    /// An insert-only map's check of a leaf table: the first valid entry is a conflict.
    @inline(__always)
    func checkLeavesInvalid<M: PhysicalMemory>(_ t: MFN, first: UInt64, end: UInt64, memory: M) throws(TableEditError) {
        var address = entryAddress(t, TableLevel.leafLevel, first)
        for f in first..<end {
            if Descriptor.isValid(raw: memory.load64(address)) { throw .alreadyMapped(f) }
            address = address.adding(TableLevel.descriptorBytes)
        }
    }

    /// Both phases at once.
    public func map<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ input: UInt64, to output: MFN, count: UInt64, attributes: Descriptor.LeafAttributes, replace: Bool,
        memory: M, sink: inout S
    ) throws(TableEditError) {
        let plan = try prepareMap(input, to: output, count: count, attributes: attributes, replace: replace,
                                  memory: memory, availablePages: sink.availableTablePages)
        commitMap(plan, memory: memory, sink: &sink)
    }

    /// A node of the tree as the planner sees it: a table that exists, one that the
    /// edit would allocate (all invalid), or one that splitting a block would create.
    enum PlanNode {
        case existing(MFN)
        case empty
        case split(block: UInt64)
    }

    @inline(__always)
    func plannedEntry<M: PhysicalMemory>(_ node: PlanNode, _ level: Int, _ f: UInt64, _ memory: M) -> UInt64 {
        switch node {
        case .existing(let t): memory.load64(entryAddress(t, level, f))
        case .empty: 0
        case .split(let block): Descriptor.splitEntry(raw: block, childLevel: level, index: (f >> Self.pageShift(level)) & Self.indexMask)
        }
    }

    /// Whether a leaf for [f, entryEnd) → o can be written at `level`.
    @inline(__always)
    func canWriteLeaf(_ level: Int, _ f: UInt64, _ entryEnd: UInt64, _ o: UInt64, _ plan: borrowing MapPlan) -> Bool {
        if level == TableLevel.leafLevel { return true }
        let span = Self.span(level)
        return level >= plan.firstLeafLevel && f & (span - 1) == 0 && entryEnd - f == span && o & (span - 1) == 0
    }

    /// A valid block `d` at `level` already maps input `f` to `o` with the plan's attributes.
    @inline(__always)
    static func blockAlreadyMaps(_ d: UInt64, _ level: Int, _ f: UInt64, _ o: UInt64, _ plan: borrowing MapPlan) -> Bool {
        d & ~Descriptor.outputAddressMask == plan.templates[level]
            && Descriptor.outputFrame(raw: d).raw &+ (f & (span(level) - 1)) == o
    }

    func planMap<M: PhysicalMemory>(
        _ node: PlanNode, level: Int, first: UInt64, end: UInt64, out: UInt64, plan: borrowing MapPlan, memory: M
    ) throws(TableEditError) -> Int {
        if level == TableLevel.leafLevel {
            // Leaves need no pages; only an insert-only map into an existing table must look.
            guard !plan.replace, case .existing(let t) = node else { return 0 }
            try checkLeavesInvalid(t, first: first, end: end, memory: memory)
            return 0
        }
        let span = Self.span(level)
        var needed = 0
        var f = first
        while f < end {
            let entryEnd = min((f | (span - 1)) + 1, end)
            let o = out + (f - first)
            let d = plannedEntry(node, level, f, memory)
            if canWriteLeaf(level, f, entryEnd, o, plan) {
                if Descriptor.isValid(raw: d) && !plan.replace {
                    if Descriptor.isTable(raw: d, atLevel: level) {
                        if let hit = firstValidLeaf(Self.child(d), level: level + 1, base: f & ~(span - 1), memory: memory) {
                            throw .alreadyMapped(hit)
                        }
                    } else {
                        throw .alreadyMapped(f)
                    }
                }
            } else if !Descriptor.isValid(raw: d) {
                needed += 1 + (try planMap(.empty, level: level + 1, first: f, end: entryEnd, out: o, plan: plan, memory: memory))
            } else if Descriptor.isTable(raw: d, atLevel: level) {
                needed += try planMap(.existing(Self.child(d)), level: level + 1, first: f, end: entryEnd, out: o,
                                      plan: plan, memory: memory)
            } else if !plan.replace {
                // Insert-only: a valid block is a conflict even if it maps the same frames.
                throw .alreadyMapped(f)
            } else if !Self.blockAlreadyMaps(d, level, f, o, plan) {
                needed += 1 + (try planMap(.split(block: d), level: level + 1, first: f, end: entryEnd, out: o,
                                           plan: plan, memory: memory))
            }
            f = entryEnd
        }
        return needed
    }

    /// The first valid leaf under table `t` (at `level`, covering inputs from `base`).
    func firstValidLeaf<M: PhysicalMemory>(_ t: MFN, level: Int, base: UInt64, memory: M) -> UInt64? {
        let span = Self.span(level)
        for i in 0..<UInt64(TableLevel.entriesPerTable) {
            let f = base + i * span
            let d = memory.load64(entryAddress(t, level, f))
            guard Descriptor.isValid(raw: d) else { continue }
            if !Descriptor.isTable(raw: d, atLevel: level) { return f }
            if let hit = firstValidLeaf(Self.child(d), level: level + 1, base: f, memory: memory) { return hit }
        }
        return nil
    }


    /// Fill an unlinked table with the next-level image of block `d`.
    func fillSplit<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ t: MFN, childLevel: Int, block d: UInt64, memory: M, sink: inout S
    ) {
        var address = t.address
        for i in 0..<UInt64(TableLevel.entriesPerTable) {
            memory.store64(address, Descriptor.splitEntry(raw: d, childLevel: childLevel, index: i))
            address = address.adding(TableLevel.descriptorBytes)
        }
        sink.setValidEntries(t, TableLevel.entriesPerTable)
    }

    /// Break-before-make for splitting valid block `d` at `address` (covering inputs
    /// from `base`), before its table is filled: in a linked table, write it invalid and
    /// invalidate it (in an unlinked one nobody walks it). Returns false if that
    /// invalidation was not confirmed: the entry then stays invalid, the whole block
    /// is reported removed, and the split table must not be made.
    @inline(__always)
    func breakBlock<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ d: UInt64, at address: PhysAddr, base: UInt64, level: Int, linked: Bool, memory: M, sink: inout S
    ) -> Bool {
        guard linked else { return true }
        memory.store64(address, 0)
        if sink.invalidateNow(base, count: Self.span(level)) { return true }
        Self.countEntries(address.frame, -1, sink: &sink)
        sink.leafRemoved(base, output: Descriptor.outputFrame(raw: d), count: Self.span(level), descriptor: d)
        sink.breakNotMade(base, count: Self.span(level))
        return false
    }

    /// Link a filled table at `address`, in place of `d`: an invalid entry, a block
    /// `breakBlock` broke and invalidated, or a block in a table nobody walks yet.
    @inline(__always)
    func link<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ t: MFN, at address: PhysAddr, replacing d: UInt64, memory: M, sink: inout S
    ) {
        sink.tableLinking(t)
        memory.orderStoresForWalkers()
        if !Descriptor.isValid(raw: d) { Self.countEntries(address.frame, 1, sink: &sink) }
        memory.store64(address, Descriptor.rawTable(t))
    }

    func applyMap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ t: MFN, level: Int, first: UInt64, end: UInt64, out: UInt64, plan: borrowing MapPlan, linked: Bool, fresh: Bool,
        memory: M, sink: inout S
    ) {
        if level == TableLevel.leafLevel {
            applyLeafRun(t, first: first, end: end, out: out, template: plan.templates[TableLevel.leafLevel],
                         replace: plan.replace, linked: linked, fresh: fresh, memory: memory, sink: &sink)
            return
        }
        let span = Self.span(level)
        var f = first
        while f < end {
            let entryEnd = min((f | (span - 1)) + 1, end)
            let o = out + (f - first)
            let address = entryAddress(t, level, f)
            let d = fresh ? 0 : memory.load64(address)
            if canWriteLeaf(level, f, entryEnd, o, plan) {
                let new = plan.templates[level] | o << PageSize.shift4K
                if d != new {
                    var made = true
                    if Descriptor.isValid(raw: d) {
                        // Valid to valid with another output or size: break before make.
                        // Unconfirmed, the entry stays invalid and all it mapped leaves.
                        memory.store64(address, 0)
                        made = !linked || sink.invalidateNow(f, count: span)
                        if Descriptor.isTable(raw: d, atLevel: level) {
                            removeSubtree(Self.child(d), level: level + 1, base: f, replacement: made ? o : nil,
                                          memory: memory, sink: &sink)
                        } else if !made || Descriptor.outputFrame(raw: d).raw != o {
                            sink.leafRemoved(f, output: Descriptor.outputFrame(raw: d), count: span, descriptor: d)
                        }
                        if !made {
                            Self.countEntries(address.frame, -1, sink: &sink)
                            sink.breakNotMade(f, count: span)
                        }
                    } else {
                        Self.countEntries(address.frame, 1, sink: &sink)
                    }
                    if made { memory.store64(address, new) }
                }
            } else if !Descriptor.isValid(raw: d) {
                let child = sink.allocateTablePage()
                applyMap(child, level: level + 1, first: f, end: entryEnd, out: o, plan: plan, linked: false, fresh: true,
                         memory: memory, sink: &sink)
                link(child, at: address, replacing: 0, memory: memory, sink: &sink)
            } else if Descriptor.isTable(raw: d, atLevel: level) {
                let child = Self.child(d)
                applyMap(child, level: level + 1, first: f, end: entryEnd, out: o, plan: plan, linked: linked,
                         fresh: false, memory: memory, sink: &sink)
                if linked && level >= plan.firstLeafLevel {
                    mergeIfUniform(child, at: address, level: level, base: f & ~(span - 1), memory: memory, sink: &sink)
                }
            } else if !Self.blockAlreadyMaps(d, level, f, o, plan),
                      breakBlock(d, at: address, base: f & ~(span - 1), level: level, linked: linked, memory: memory,
                                 sink: &sink) {
                let child = sink.allocateTablePage()
                fillSplit(child, childLevel: level + 1, block: d, memory: memory, sink: &sink)
                applyMap(child, level: level + 1, first: f, end: entryEnd, out: o, plan: plan, linked: false, fresh: false,
                         memory: memory, sink: &sink)
                link(child, at: address, replacing: d, memory: memory, sink: &sink)
            }
            f = entryEnd
        }
    }

    /// Re-merge: once a map leaves table `t` (linked at `address`, a level-`level`
    /// entry) holding 512 leaves with consecutive outputs, identical attributes and an
    /// output aligned to a level-`level` block, replace it by that block. The block
    /// maps exactly what the table did, so no leaf is reported removed; the table is
    /// swapped out with break-before-make (a change of size; Arm ARM, break-before-make) and
    /// unlinked. Entries 511 and 0 are checked first, so a table that is not full
    /// costs one or two loads.
    func mergeIfUniform<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ t: MFN, at address: PhysAddr, level: Int, base: UInt64, memory: M, sink: inout S
    ) {
        // Only a full table can merge; its count says so without a load from it.
        guard sink.validEntries(t) == TableLevel.entriesPerTable else { return }
        let childLevel = level + 1
        let step = Self.span(childLevel) << PageSize.shift4K
        let last = memory.load64(t.address.adding(UInt64(TableLevel.entriesPerTable - 1) * TableLevel.descriptorBytes))
        let first = memory.load64(t.address)
        guard Descriptor.isValid(raw: first), !Descriptor.isTable(raw: first, atLevel: childLevel),
              last == first &+ UInt64(TableLevel.entriesPerTable - 1) &* step,
              Descriptor.outputFrame(raw: first).raw & (Self.span(level) - 1) == 0 else { return }
        var scan = t.address
        var expected = first
        for _ in 0..<TableLevel.entriesPerTable {
            guard memory.load64(scan) == expected else { return }
            scan = scan.adding(TableLevel.descriptorBytes)
            expected &+= step
        }
        let block = Descriptor.asLeaf(raw: first, atLevel: level)
        let link = memory.load64(address)
        memory.store64(address, 0)
        guard sink.invalidateNow(base, count: Self.span(level)) else {
            // Not confirmed: skip the merge and put the identical table descriptor
            // back. The table and its leaves are unchanged, so whatever a walker may
            // still cache from before the break is what it finds again.
            memory.store64(address, link)
            return
        }
        memory.store64(address, block)
        unlink(t, sink: &sink)
    }

    /// The leaf-table loop: one descriptor store per page. An insert-only map was
    /// proved to find only invalid entries, and a fresh table is all invalid, so
    /// those write blindly; a replacing map breaks every changed valid entry first,
    /// invalidates the run once, then makes.
    @inline(__always)
    func applyLeafRun<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ t: MFN, first: UInt64, end: UInt64, out: UInt64, template: UInt64, replace: Bool, linked: Bool, fresh: Bool,
        memory: M, sink: inout S
    ) {
        let start = entryAddress(t, TableLevel.leafLevel, first)
        if fresh || !replace {
            var address = start
            var value = template | out << PageSize.shift4K
            for _ in first..<end {
                memory.store64(address, value)
                address = address.adding(TableLevel.descriptorBytes)
                value &+= PageSize.bytes4K
            }
            Self.countEntries(t, Int(end &- first), sink: &sink)
            return
        }
        var broken = 0
        var made = 0
        var address = start
        var o = out
        for f in first..<end {
            let d = memory.load64(address)
            let new = template | o << PageSize.shift4K
            if !Descriptor.isValid(raw: d) {
                made &+= 1
            } else if d != new {
                // Break: clear only the valid bit (walkers ignore every other
                // bit of an invalid descriptor), so the old entry can still be
                // reported if the invalidation is not confirmed.
                memory.store64(address, d & ~Descriptor.validBit)
                broken &+= 1
                if Descriptor.outputFrame(raw: d).raw != o {
                    sink.leafRemoved(f, output: Descriptor.outputFrame(raw: d), count: 1, descriptor: d)
                }
            }
            address = address.adding(TableLevel.descriptorBytes)
            o &+= 1
        }
        if made != 0 { Self.countEntries(t, made, sink: &sink) }
        if broken != 0 && linked && !sink.invalidateNow(first, count: end - first) {
            // Not confirmed: make nothing of this run. Each broken leaf stays invalid
            // (cleared now) and leaves; those whose output changed were reported above.
            address = start
            o = out
            for f in first..<end {
                let d = memory.load64(address)
                if d != 0 && !Descriptor.isValid(raw: d) {
                    let old = d | Descriptor.validBit
                    if Descriptor.outputFrame(raw: old).raw == o {
                        sink.leafRemoved(f, output: MFN(raw: o), count: 1, descriptor: old)
                    }
                    memory.store64(address, 0)
                }
                address = address.adding(TableLevel.descriptorBytes)
                o &+= 1
            }
            Self.countEntries(t, -(made + broken), sink: &sink)
            sink.breakNotMade(first, count: end - first)
            return
        }
        address = start
        o = out
        for _ in first..<end {
            let new = template | o << PageSize.shift4K
            if memory.load64(address) != new { memory.store64(address, new) }
            address = address.adding(TableLevel.descriptorBytes)
            o &+= 1
        }
    }

    /// Report every leaf under unlinked table `t` as removed (except those whose output
    /// equals `replacement`'s at the same input) and unlink every table page of it.
    func removeSubtree<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ t: MFN, level: Int, base: UInt64, replacement: UInt64?, memory: M, sink: inout S
    ) {
        let span = Self.span(level)
        var address = t.address
        if level == TableLevel.leafLevel && replacement == nil {
            // The common case (unmapping whole leaf tables): one report per run.
            var run = LeafRun<Descriptor>()
            for i in 0..<UInt64(TableLevel.entriesPerTable) {
                let d = memory.load64(address)
                address = address.adding(TableLevel.descriptorBytes)
                if Descriptor.isValid(raw: d) { run.add(base + i, d, sink: &sink) }
            }
            run.flush(sink: &sink)
            unlink(t, sink: &sink)
            return
        }
        for i in 0..<UInt64(TableLevel.entriesPerTable) {
            let d = memory.load64(address)
            address = address.adding(TableLevel.descriptorBytes)
            guard Descriptor.isValid(raw: d) else { continue }
            let f = base + i * span
            if Descriptor.isTable(raw: d, atLevel: level) {
                removeSubtree(Self.child(d), level: level + 1, base: f,
                              replacement: replacement.map { $0 + i * span }, memory: memory, sink: &sink)
            } else if replacement.map({ $0 + i * span }) != Descriptor.outputFrame(raw: d).raw {
                sink.leafRemoved(f, output: Descriptor.outputFrame(raw: d), count: span, descriptor: d)
            }
        }
        unlink(t, sink: &sink)
    }

    @inline(__always)
    func unlink<S: TableEditSink & ~Copyable>(_ t: MFN, clearedEntry: Int = 0, sink: inout S) {
        sink.tableUnlinked(t, clearedEntry: clearedEntry)
    }

    // MARK: Unmap

    /// Phase 1 of an unmap: validate and count the pages needed to split blocks the
    /// range covers only in part.
    public func prepareUnmap<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M, availablePages: Int
    ) throws(TableEditError) -> RangePlan {
        var cache = LeafPathCache()
        return try prepareUnmap(input, count: count, memory: memory, availablePages: availablePages, cache: &cache)
    }

    /// `prepareUnmap` with the owner's `LeafPathCache` (pass it to `commitUnmap` too).
    public func prepareUnmap<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M, availablePages: Int, cache: inout LeafPathCache
    ) throws(TableEditError) -> RangePlan {
        try validateInput(input, count: count)
        // Inside one existing leaf table there is no block to split, nor when the
        // range is one whole aligned entry of a table that exists.
        if leafPath(input, count: count, memory: memory, cache: &cache) != nil {
            return RangePlan(input: input, count: count, tablePagesNeeded: 0, pathLevel: TableLevel.leafLevel)
        }
        if let (_, level) = wholeEntryPath(input, count: count, memory: memory) {
            return RangePlan(input: input, count: count, tablePagesNeeded: 0, pathLevel: level)
        }
        let needed = planPartialBlocks(.existing(root), level: geometry.startLevel, first: input, end: input + count,
                                       memory: memory) { _ in true }
        guard needed <= availablePages else { throw .tablePoolExhausted(needed: needed, available: availablePages) }
        return RangePlan(input: input, count: count, tablePagesNeeded: needed)
    }

    /// Phase 2 of an unmap: apply a plan from `prepareUnmap` made under the same lock.
    public func commitUnmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming RangePlan, memory: M, sink: inout S
    ) {
        commitUnmap(plan, memory: memory, sink: &sink, cache: LeafPathCache())
    }

    /// `commitUnmap` with the cache its `prepareUnmap` was given.
    public func commitUnmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming RangePlan, memory: M, sink: inout S, cache: LeafPathCache
    ) {
        let input = plan.input, count = plan.count, pathLevel = plan.pathLevel
        guard pathLevel != 0,
              let path = cache.path(pathLevel, input) ?? path(to: pathLevel, input, memory: memory) else {
            _ = applyUnmap(root, level: geometry.startLevel, first: input, end: input + count, linked: true,
                           memory: memory, sink: &sink)
            return
        }
        commitUnmap(along: path, level: pathLevel, input, count: count, memory: memory, sink: &sink)
    }

    /// `commitUnmap` as the general walk from the root (see `commitMapFromRoot`).
    public func commitUnmapFromRoot<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming RangePlan, memory: M, sink: inout S
    ) {
        _ = applyUnmap(root, level: geometry.startLevel, first: plan.input, end: plan.input + plan.count, linked: true,
                       memory: memory, sink: &sink)
    }

    /// Phase 2 of an unmap of [input, input+count) that lies in one table of `path`
    /// (the leaf table at `pathLevel` 3, else one whole entry of the table there).
    /// For a leaf run there is no phase 1 beyond finding the path: no block to split.
    public func commitUnmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        along path: LeafPath, level pathLevel: Int, _ input: UInt64, count: UInt64, memory: M, sink: inout S
    ) {
        // What `applyUnmap` does along the path the prepare found (still the
        // tree's: nothing edits between prepare and commit): clear the leaves or
        // the one entry, then, level by level upwards, unlink each table the edit
        // emptied (never the root).
        if pathLevel == TableLevel.leafLevel {
            commitLeafUnmap(path, input, count: count, memory: memory, sink: &sink)
            return
        }
        let entry = entryAddress(path.table(pathLevel), pathLevel, input)
        let d = memory.load64(entry)
        guard Descriptor.isValid(raw: d) else { return }
        memory.store64(entry, 0)
        Self.countEntries(entry.frame, -1, sink: &sink)
        sink.invalidateLater(input, count: count)
        if Descriptor.isTable(raw: d, atLevel: pathLevel) {
            removeSubtree(Self.child(d), level: pathLevel + 1, base: input, replacement: nil, memory: memory,
                          sink: &sink)
        } else {
            sink.leafRemoved(input, output: Descriptor.outputFrame(raw: d), count: count, descriptor: d)
        }
        unlinkEmptied(path, below: pathLevel, input, memory: memory, sink: &sink)
    }

    /// `commitUnmap(along:)` of a run in the leaf table at the end of `path`.
    @inline(__always)
    public func commitLeafUnmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ path: LeafPath, _ input: UInt64, count: UInt64, memory: M, sink: inout S
    ) {
        guard clearLeaves(path.leafTable, first: input, end: input + count, linked: true, memory: memory,
                          sink: &sink) else { return }  // nothing was mapped there
        unlinkEmptied(path, below: TableLevel.leafLevel, input, memory: memory, sink: &sink)
    }

    /// After an unmap cleared entries of the table at `pathLevel` on `path`: level
    /// by level upwards, unlink each table the edit emptied (never the root).
    @inline(__always)
    func unlinkEmptied<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ path: LeafPath, below pathLevel: Int, _ input: UInt64, memory: M, sink: inout S
    ) {
        var level = pathLevel - 1
        while level >= geometry.startLevel {
            let child = path.table(level + 1)
            guard sink.validEntries(child) == 0 else { return }
            let entry = path.entry(level)
            memory.store64(entry, 0)
            Self.countEntries(entry.frame, -1, sink: &sink)
            sink.invalidateLater(input, count: 1)
            // The entry just cleared in `child`: its cache line is hot.
            unlink(child, clearedEntry: Int((input >> Self.pageShift(level + 1)) & Self.indexMask), sink: &sink)
            level -= 1
        }
    }

    public func unmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ input: UInt64, count: UInt64, memory: M, sink: inout S
    ) throws(TableEditError) {
        let plan = try prepareUnmap(input, count: count, memory: memory, availablePages: sink.availableTablePages)
        commitUnmap(plan, memory: memory, sink: &sink)
    }

    /// Pages needed to split the blocks that [first, end) covers in part and that
    /// `affects` says the edit would change.
    func planPartialBlocks<M: PhysicalMemory>(
        _ node: PlanNode, level: Int, first: UInt64, end: UInt64, memory: M, affects: (UInt64) -> Bool
    ) -> Int {
        if level == TableLevel.leafLevel { return 0 }
        let span = Self.span(level)
        var needed = 0
        var f = first
        while f < end {
            let entryEnd = min((f | (span - 1)) + 1, end)
            let d = plannedEntry(node, level, f, memory)
            if Descriptor.isValid(raw: d) && entryEnd - f != span {
                if Descriptor.isTable(raw: d, atLevel: level) {
                    needed += planPartialBlocks(.existing(Self.child(d)), level: level + 1, first: f, end: entryEnd,
                                                memory: memory, affects: affects)
                } else if affects(d) {
                    needed += 1 + planPartialBlocks(.split(block: d), level: level + 1, first: f, end: entryEnd,
                                                    memory: memory, affects: affects)
                }
            }
            f = entryEnd
        }
        return needed
    }

    /// Returns whether an entry of `t` was cleared (so `t` may now be empty).
    func applyUnmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ t: MFN, level: Int, first: UInt64, end: UInt64, linked: Bool, memory: M, sink: inout S
    ) -> Bool {
        if level == TableLevel.leafLevel {
            return clearLeaves(t, first: first, end: end, linked: linked, memory: memory, sink: &sink)
        }
        let span = Self.span(level)
        var cleared = false
        var f = first
        while f < end {
            let entryEnd = min((f | (span - 1)) + 1, end)
            let address = entryAddress(t, level, f)
            let d = memory.load64(address)
            if Descriptor.isValid(raw: d) {
                if entryEnd - f == span {
                    // The whole entry goes: clear it, leave its subtree intact for walkers
                    // that still hold it until the flush, and account for what it held.
                    memory.store64(address, 0)
                    Self.countEntries(address.frame, -1, sink: &sink)
                    cleared = true
                    if linked { sink.invalidateLater(f, count: span) }
                    if Descriptor.isTable(raw: d, atLevel: level) {
                        removeSubtree(Self.child(d), level: level + 1, base: f, replacement: nil, memory: memory, sink: &sink)
                    } else {
                        sink.leafRemoved(f, output: Descriptor.outputFrame(raw: d), count: span, descriptor: d)
                    }
                } else if Descriptor.isTable(raw: d, atLevel: level) {
                    let child = Self.child(d)
                    if applyUnmap(child, level: level + 1, first: f, end: entryEnd, linked: linked,
                                  memory: memory, sink: &sink),
                       sink.validEntries(child) == 0 {
                        // An emptied table goes too. Its leaves' invalidations cover the
                        // walk-cache entries for the table descriptor (TLBI by IPA hits
                        // every cached level used to translate that IPA).
                        memory.store64(address, 0)
                        Self.countEntries(address.frame, -1, sink: &sink)
                        cleared = true
                        if linked { sink.invalidateLater(f, count: 1) }
                        unlink(child, clearedEntry: Int((f >> Self.pageShift(level + 1)) & Self.indexMask),
                               sink: &sink)
                    }
                } else if breakBlock(d, at: address, base: f & ~(span - 1), level: level, linked: linked,
                                     memory: memory, sink: &sink) {
                    let child = sink.allocateTablePage()
                    fillSplit(child, childLevel: level + 1, block: d, memory: memory, sink: &sink)
                    _ = applyUnmap(child, level: level + 1, first: f, end: entryEnd, linked: false,
                                   memory: memory, sink: &sink)
                    link(child, at: address, replacing: d, memory: memory, sink: &sink)
                } else {
                    cleared = true
                }
            }
            f = entryEnd
        }
        return cleared
    }

    /// `applyUnmap` in a leaf table: clear the valid leaves of [first, end), report
    /// them in runs, count them; returns whether any was.
    @inline(__always)
    func clearLeaves<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ t: MFN, first: UInt64, end: UInt64, linked: Bool, memory: M, sink: inout S
    ) -> Bool {
        var run = LeafRun<Descriptor>()
        var address = entryAddress(t, TableLevel.leafLevel, first)
        for f in first..<end {
            let d = memory.load64(address)
            if Descriptor.isValid(raw: d) {
                memory.store64(address, 0)
                run.add(f, d, sink: &sink)
            }
            address = address.adding(TableLevel.descriptorBytes)
        }
        let cleared = run.seen
        run.flush(sink: &sink)
        if cleared {
            Self.countEntries(t, -run.cleared, sink: &sink)
            if linked { sink.invalidateLater(first, count: end - first) }
        }
        return cleared
    }

    // MARK: Attribute updates

    /// Phase 1 of an in-place attribute update over [input, input+count): `rewrite`
    /// returns the new descriptor for a valid leaf (same output and kind) or nil to
    /// leave it. Counts the pages needed to split blocks covered in part that would change.
    public func prepareUpdate<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M, availablePages: Int, rewrite: (UInt64) -> UInt64?
    ) throws(TableEditError) -> RangePlan {
        try validateInput(input, count: count)
        let needed = planPartialBlocks(.existing(root), level: geometry.startLevel, first: input, end: input + count,
                                       memory: memory) { rewrite($0) != nil }
        guard needed <= availablePages else { throw .tablePoolExhausted(needed: needed, available: availablePages) }
        return RangePlan(input: input, count: count, tablePagesNeeded: needed)
    }

    /// Phase 2 of an attribute update. Changing permissions or software bits of a leaf
    /// in place keeps its output and size, so it needs no break-before-make (the Arm ARM's
    /// break-before-make rules list the changes that do); the old entries are invalidated
    /// at the flush. `rewrite` must be the one the plan was made with.
    public func commitUpdate<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming RangePlan, memory: M, sink: inout S, rewrite: (UInt64) -> UInt64?
    ) {
        applyUpdate(root, level: geometry.startLevel, first: plan.input, end: plan.input + plan.count, linked: true,
                    memory: memory, sink: &sink, rewrite: rewrite)
    }

    func applyUpdate<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ t: MFN, level: Int, first: UInt64, end: UInt64, linked: Bool, memory: M, sink: inout S,
        rewrite: (UInt64) -> UInt64?
    ) {
        let span = Self.span(level)
        var f = first
        while f < end {
            let entryEnd = min((f | (span - 1)) + 1, end)
            let address = entryAddress(t, level, f)
            let d = memory.load64(address)
            if Descriptor.isValid(raw: d) {
                if Descriptor.isTable(raw: d, atLevel: level) {
                    applyUpdate(Self.child(d), level: level + 1, first: f, end: entryEnd, linked: linked,
                                memory: memory, sink: &sink, rewrite: rewrite)
                } else if let new = rewrite(d) {
                    precondition(new & Descriptor.outputAndKindMask
                                 == d & Descriptor.outputAndKindMask,
                                 "an update keeps output and kind")
                    if entryEnd - f == span {
                        if new != d {
                            memory.store64(address, new)
                            if linked { sink.invalidateLater(f, count: span) }
                            sink.leafRewritten(f, count: span, old: d, new: new)
                        }
                    } else if breakBlock(d, at: address, base: f & ~(span - 1), level: level, linked: linked,
                                         memory: memory, sink: &sink) {
                        let child = sink.allocateTablePage()
                        fillSplit(child, childLevel: level + 1, block: d, memory: memory, sink: &sink)
                        applyUpdate(child, level: level + 1, first: f, end: entryEnd, linked: false,
                                    memory: memory, sink: &sink, rewrite: rewrite)
                        link(child, at: address, replacing: d, memory: memory, sink: &sink)
                    }
                }
            }
            f = entryEnd
        }
    }

    // MARK: Teardown

    /// Remove every mapping from input frame `cursor` upwards, visiting at most
    /// `budget` entries, reporting leaves and unlinked tables to `sink`. Returns true
    /// once everything is gone, root pages included (the table is then dead: its
    /// pages are in the sink's hands).
    public func teardown<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        cursor: inout UInt64, budget: inout Int, memory: M, sink: inout S
    ) -> Bool {
        guard teardownTable(root, level: geometry.startLevel, end: geometry.inputFrameLimit,
                            cursor: &cursor, budget: &budget, memory: memory, sink: &sink) else { return false }
        for i in 0..<UInt64(geometry.rootTables) { unlink(root.adding(i), sink: &sink) }
        return true
    }

    func teardownTable<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ t: MFN, level: Int, end: UInt64, cursor: inout UInt64, budget: inout Int, memory: M, sink: inout S
    ) -> Bool {
        let span = Self.span(level)
        while cursor < end {
            guard budget > 0 else { return false }
            let address = entryAddress(t, level, cursor)
            let base = cursor & ~(span - 1)
            let d = memory.load64(address)
            if Descriptor.isValid(raw: d) {
                if Descriptor.isTable(raw: d, atLevel: level) {
                    guard teardownTable(Self.child(d), level: level + 1, end: base + span, cursor: &cursor,
                                        budget: &budget, memory: memory, sink: &sink) else { return false }
                    memory.store64(address, 0)
                    Self.countEntries(address.frame, -1, sink: &sink)
                    sink.invalidateLater(base, count: 1)
                    unlink(Self.child(d), sink: &sink)
                } else {
                    memory.store64(address, 0)
                    Self.countEntries(address.frame, -1, sink: &sink)
                    sink.invalidateLater(base, count: span)
                    sink.leafRemoved(base, output: Descriptor.outputFrame(raw: d), count: span, descriptor: d)
                }
            }
            budget -= 1
            cursor = base + span
        }
        return true
    }
}

/// Coalesces removed pages (consecutive inputs and outputs, same attributes) into one
/// `leafRemoved` report, so a sink sees runs, not pages.
struct LeafRun<Descriptor: VMSAv8Descriptor> {
    var input: UInt64 = 0
    var count: UInt64 = 0
    /// The first descriptor of the run, advanced by one page per page added.
    var next: UInt64 = 0
    var first: UInt64 = 0
    /// Leaves added so far, runs flushed or not.
    var cleared = 0
    var seen: Bool { cleared != 0 }

    @inline(__always)
    mutating func add<S: TableEditSink & ~Copyable>(_ f: UInt64, _ d: UInt64, sink: inout S) {
        cleared &+= 1
        if count != 0 && f == input &+ count && d == next {
            count &+= 1
            next &+= PageSize.bytes4K
            return
        }
        flush(sink: &sink)
        input = f
        count = 1
        first = d
        next = d &+ PageSize.bytes4K
    }

    @inline(__always)
    mutating func flush<S: TableEditSink & ~Copyable>(sink: inout S) {
        guard count != 0 else { return }
        sink.leafRemoved(input, output: Descriptor.outputFrame(raw: first), count: count, descriptor: first)
        count = 0
    }
}

/// The tables and table entries from the root down to one table, by level
/// (`TranslationTable.path(to:)`). Plain fields rather than arrays so the optimizer
/// keeps the path in registers: it is built on every single-page edit.
public struct LeafPath: Sendable {
    /// Table page (MFN raw) at levels 0-2 and the leaf table (level 3).
    var table0: UInt64 = 0, table1: UInt64 = 0, table2: UInt64 = 0, leaf: UInt64 = 0
    /// Address of the table descriptor taken at levels 0-2.
    var entry0: UInt64 = 0, entry1: UInt64 = 0, entry2: UInt64 = 0

    @inline(__always) mutating func record(level: Int, table: MFN, entry: PhysAddr) {
        switch level {
        case 0: (table0, entry0) = (table.raw, entry.raw)
        case 1: (table1, entry1) = (table.raw, entry.raw)
        default: (table2, entry2) = (table.raw, entry.raw)
        }
    }
    @inline(__always) mutating func setTable(_ level: Int, _ table: MFN) {
        switch level {
        case 0: table0 = table.raw
        case 1: table1 = table.raw
        case 2: table2 = table.raw
        default: leaf = table.raw
        }
    }
    @inline(__always) func table(_ level: Int) -> MFN {
        switch level {
        case 0: MFN(raw: table0)
        case 1: MFN(raw: table1)
        case 2: MFN(raw: table2)
        default: MFN(raw: leaf)
        }
    }
    @inline(__always) func entry(_ level: Int) -> PhysAddr {
        switch level {
        case 0: PhysAddr(raw: entry0)
        case 1: PhysAddr(raw: entry1)
        default: PhysAddr(raw: entry2)
        }
    }
    var leafTable: MFN { MFN(raw: leaf) }
}

/// The paths to the leaf tables of the last two single-table edits that walked,
/// kept by the table's owner so that the next edit in one of those leaf tables (a
/// run of one-page calls, or a move that alternates between a source and a
/// destination range) does not walk the tree again.
///
/// They stay right for as long as no table page has left the tree since they were
/// filled: the engine changes a table descriptor (the only entries on a path)
/// only by clearing or replacing it together with unlinking the table below it
/// (`TableEditSink.tableUnlinked`), and a table page is freed only after it was
/// unlinked. So the owner invalidates both on every `tableUnlinked`, and nowhere else.
public struct LeafPathCache: Sendable {
    /// The leaf table's input frames >> 9 (the 512 frames it translates); `.max`:
    /// empty (no input frame reaches it). The path filled last.
    var key: UInt64 = .max
    var path = LeafPath()
    /// The path filled before it, and its key.
    var otherKey: UInt64 = .max
    var otherPath = LeafPath()

    public init() {}

    /// Forget both paths (a table page left the tree).
    @inline(__always) public mutating func invalidate() {
        key = .max
        otherKey = .max
    }
    public var isEmpty: Bool { key == .max && otherKey == .max }

    /// The cached path to the leaf table that translates the frames `leafKey` << 9
    /// up to the next 512 (`leafKey` below `.max`).
    @inline(__always) func cached(_ leafKey: UInt64) -> LeafPath? {
        if leafKey == key { return path }
        if leafKey == otherKey { return otherPath }
        return nil
    }

    /// Keep the path a walk found to leaf table `leafKey` (which `cached` did not
    /// hold); the one filled before becomes the other, and the other is dropped.
    /// Unconditional moves: a branch on which slot to fill would be mispredicted
    /// on a random run.
    @inline(__always) mutating func fill(_ leafKey: UInt64, _ newPath: LeafPath) {
        otherKey = key
        otherPath = path
        key = leafKey
        path = newPath
    }

    /// The cached path, if it leads to the leaf table (`level` 3) that holds `input`.
    @inline(__always) func path(_ level: Int, _ input: UInt64) -> LeafPath? {
        level == TableLevel.leafLevel ? cached(input >> UInt64(TableLevel.bitsPerLevel)) : nil
    }

    /// The cached path, if its leaf table holds all of a non-empty [input, input+count)
    /// short of the whole table (the run `leafPath` finds). Such a run is valid input (inside an existing table, so inside the input
    /// size, and it cannot wrap).
    @inline(__always) public func path(covering input: UInt64, count: UInt64) -> LeafPath? {
        let shift = UInt64(TableLevel.bitsPerLevel)
        let first = input >> shift
        guard count != 0, count < UInt64(TableLevel.entriesPerTable), first == (input &+ count &- 1) >> shift else {
            return nil
        }
        return cached(first)
    }
}

/// A leaf found by `TranslationTable.lookup`.
public struct TableLookup: Equatable, Sendable {
    public var descriptor: UInt64
    public var level: Int
    /// The output frame for the looked-up input (block base plus offset).
    public var output: MFN
    public var order: PageOrder { PageOrder(leafLevel: level) }
}

/// The result of `prepareMap`, consumed by `commitMap`: a token that the edit was
/// checked and its table pages counted, spent by the one commit it allows.
public struct MapPlan: ~Copyable, Sendable {
    public internal(set) var input: UInt64
    var output: UInt64
    public internal(set) var count: UInt64
    var replace: Bool
    /// Blocks only at this level or deeper (1: up to 1 GiB, 2: up to 2 MiB, 3: pages only).
    var firstLeafLevel: Int
    var templates: InlineArray<4, UInt64>
    public internal(set) var tablePagesNeeded: Int
    /// The level of the one table the whole edit lands in (3: a leaf run; 1 or 2:
    /// one block into an invalid entry); 0: the general walk.
    var pathLevel = 0
    /// The invalid entry at `pathLevel` gets new tables down to a leaf table that
    /// takes the whole run (`TranslationTable.missingTableLevel`).
    var buildsTables = false
}

/// The result of `prepareUnmap` or `prepareUpdate`, consumed by `commitUnmap` or
/// `commitUpdate`: the range was checked and the pages to split blocks counted.
public struct RangePlan: ~Copyable, Sendable {
    public let input: UInt64
    public let count: UInt64
    public let tablePagesNeeded: Int
    /// As `MapPlan.pathLevel` (an unmap's one entry may hold anything).
    var pathLevel = 0
}
