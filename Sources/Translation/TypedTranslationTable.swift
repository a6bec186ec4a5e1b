import AArch64

/// A translation table of one descriptor format: `TranslationTable<Stage2Descriptor>`
/// for the P2M, `TranslationTable<Stage1Descriptor>` for SMMU stage-1 tables.
///
/// Only a leaf's attributes differ between the formats, so the format is checked
/// here, where attributes enter (`prepareMap`, `map` take `Descriptor.LeafAttributes`),
/// and everything else is the one `TableEngine`: every member forwards to it inline,
/// so the image holds the engine once, not once per format.
public struct TranslationTable<Descriptor: VMSAv8Descriptor>: Sendable {
    public let engine: TableEngine

    /// See `TableEngine.init(geometry:root:)`.
    @_transparent public init(geometry: TableGeometry, root: MFN) {
        engine = TableEngine(geometry: geometry, root: root)
    }

    @_transparent public var geometry: TableGeometry { engine.geometry }
    @_transparent public var root: MFN { engine.root }

    @_transparent public static func allocateRoot<Pool: TablePageSource>(
        _ geometry: TableGeometry, pool: inout Pool
    ) throws(TableEditError) -> MFN {
        try TableEngine.allocateRoot(geometry, pool: &pool)
    }
    @_transparent public static func firstLeafLevel(_ largestBlock: PageOrder) -> Int {
        TableEngine.firstLeafLevel(largestBlock)
    }

    // MARK: Typed: a leaf's attributes in this format

    @_transparent public func prepareMap<M: PhysicalMemory>(
        _ input: UInt64, to output: MFN, count: UInt64, attributes: Descriptor.LeafAttributes,
        replace: Bool, largestBlock: PageOrder = .block1G, memory: M, availablePages: Int
    ) throws(TableEditError) -> MapPlan {
        try engine.prepareMap(input, to: output, count: count, attributes: VMSAv8AttributeBits(attributes),
                              replace: replace, largestBlock: largestBlock, memory: memory,
                              availablePages: availablePages)
    }
    @_transparent public func prepareMap<M: PhysicalMemory>(
        _ input: UInt64, to output: MFN, count: UInt64, attributes: Descriptor.LeafAttributes,
        replace: Bool, largestBlock: PageOrder = .block1G, memory: M, availablePages: Int,
        cache: inout LeafPathCache
    ) throws(TableEditError) -> MapPlan {
        try engine.prepareMap(input, to: output, count: count, attributes: VMSAv8AttributeBits(attributes),
                              replace: replace, largestBlock: largestBlock, memory: memory,
                              availablePages: availablePages, cache: &cache)
    }
    @_transparent public func map<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ input: UInt64, to output: MFN, count: UInt64, attributes: Descriptor.LeafAttributes, replace: Bool,
        memory: M, sink: inout S
    ) throws(TableEditError) {
        try engine.map(input, to: output, count: count, attributes: VMSAv8AttributeBits(attributes),
                       replace: replace, memory: memory, sink: &sink)
    }

    // MARK: The engine's, unchanged (see each in `TableEngine`)

    @_transparent func entryAddress(_ t: MFN, _ level: Int, _ f: UInt64) -> PhysAddr {
        engine.entryAddress(t, level, f)
    }
    @_transparent public func validateInput(_ input: UInt64, count: UInt64) throws(TableEditError) {
        try engine.validateInput(input, count: count)
    }
    @_transparent public func validateOutput(_ output: MFN, count: UInt64) throws(TableEditError) {
        try engine.validateOutput(output, count: count)
    }
    @_transparent public func lookup<M: PhysicalMemory>(_ input: UInt64, memory: M) -> TableLookup? {
        engine.lookup(input, memory: memory)
    }
    @_transparent public func commitMap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming MapPlan, memory: M, sink: inout S
    ) {
        engine.commitMap(plan, memory: memory, sink: &sink)
    }
    @_transparent public func commitMap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming MapPlan, memory: M, sink: inout S, cache: LeafPathCache
    ) {
        engine.commitMap(plan, memory: memory, sink: &sink, cache: cache)
    }
    @_transparent public func commitMapFromRoot<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming MapPlan, memory: M, sink: inout S
    ) {
        engine.commitMapFromRoot(plan, memory: memory, sink: &sink)
    }
    @_transparent public func missingTableLevel<M: PhysicalMemory>(_ input: UInt64, count: UInt64, memory: M) -> Int? {
        engine.missingTableLevel(input, count: count, memory: memory)
    }
    @_transparent public func commitNewTables<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ path: LeafPath, at level: Int, _ input: UInt64, to output: UInt64, count: UInt64, template: UInt64,
        memory: M, sink: inout S
    ) {
        engine.commitNewTables(path, at: level, input, to: output, count: count, template: template,
                               memory: memory, sink: &sink)
    }
    @_transparent public func prepareLeafMap<M: PhysicalMemory>(
        _ path: LeafPath, _ input: UInt64, to output: MFN, count: UInt64, replace: Bool, largestBlock: PageOrder,
        memory: M
    ) throws(TableEditError) {
        try engine.prepareLeafMap(path, input, to: output, count: count, replace: replace,
                                  largestBlock: largestBlock, memory: memory)
    }
    @_transparent public func commitLeafMap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ path: LeafPath, _ input: UInt64, to output: UInt64, count: UInt64, template: UInt64, replace: Bool,
        firstLeafLevel: Int, memory: M, sink: inout S
    ) {
        engine.commitLeafMap(path, input, to: output, count: count, template: template, replace: replace,
                             firstLeafLevel: firstLeafLevel, memory: memory, sink: &sink)
    }
    @_transparent public func blockPath<M: PhysicalMemory>(
        _ input: UInt64, to output: UInt64, count: UInt64, firstLeafLevel: Int, memory: M
    ) -> (path: LeafPath, level: Int)? {
        engine.blockPath(input, to: output, count: count, firstLeafLevel: firstLeafLevel, memory: memory)
    }
    @_transparent public func commitBlockMap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ path: LeafPath, at level: Int, _ input: UInt64, to output: UInt64, template: UInt64, firstLeafLevel: Int,
        memory: M, sink: inout S
    ) {
        engine.commitBlockMap(path, at: level, input, to: output, template: template,
                              firstLeafLevel: firstLeafLevel, memory: memory, sink: &sink)
    }
    @_transparent public func wholeEntryPath<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M
    ) -> (path: LeafPath, level: Int)? {
        engine.wholeEntryPath(input, count: count, memory: memory)
    }
    @_transparent func leafPath<M: PhysicalMemory>(_ input: UInt64, count: UInt64, memory: M) -> LeafPath? {
        engine.leafPath(input, count: count, memory: memory)
    }
    @_transparent public func leafPath<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M, cache: inout LeafPathCache
    ) -> LeafPath? {
        engine.leafPath(input, count: count, memory: memory, cache: &cache)
    }
    @_transparent public func leafOrMissingPath<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M, cache: inout LeafPathCache
    ) -> (path: LeafPath, level: Int)? {
        engine.leafOrMissingPath(input, count: count, memory: memory, cache: &cache)
    }
    @_transparent public func path<M: PhysicalMemory>(to target: Int, _ input: UInt64, memory: M) -> LeafPath? {
        engine.path(to: target, input, memory: memory)
    }
    @_transparent public func singleBlockLevel(
        _ input: UInt64, _ output: UInt64, count: UInt64, firstLeafLevel: Int
    ) -> Int? {
        engine.singleBlockLevel(input, output, count: count, firstLeafLevel: firstLeafLevel)
    }
    @_transparent public func prepareUnmap<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M, availablePages: Int
    ) throws(TableEditError) -> RangePlan {
        try engine.prepareUnmap(input, count: count, memory: memory, availablePages: availablePages)
    }
    @_transparent public func prepareUnmap<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M, availablePages: Int, cache: inout LeafPathCache
    ) throws(TableEditError) -> RangePlan {
        try engine.prepareUnmap(input, count: count, memory: memory, availablePages: availablePages, cache: &cache)
    }
    @_transparent public func commitUnmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming RangePlan, memory: M, sink: inout S
    ) {
        engine.commitUnmap(plan, memory: memory, sink: &sink)
    }
    @_transparent public func commitUnmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming RangePlan, memory: M, sink: inout S, cache: LeafPathCache
    ) {
        engine.commitUnmap(plan, memory: memory, sink: &sink, cache: cache)
    }
    @_transparent public func commitUnmapFromRoot<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming RangePlan, memory: M, sink: inout S
    ) {
        engine.commitUnmapFromRoot(plan, memory: memory, sink: &sink)
    }
    @_transparent public func commitUnmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        along path: LeafPath, level pathLevel: Int, _ input: UInt64, count: UInt64, memory: M, sink: inout S
    ) {
        engine.commitUnmap(along: path, level: pathLevel, input, count: count, memory: memory, sink: &sink)
    }
    @_transparent public func commitLeafUnmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ path: LeafPath, _ input: UInt64, count: UInt64, memory: M, sink: inout S
    ) {
        engine.commitLeafUnmap(path, input, count: count, memory: memory, sink: &sink)
    }
    @_transparent public func unmap<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ input: UInt64, count: UInt64, memory: M, sink: inout S
    ) throws(TableEditError) {
        try engine.unmap(input, count: count, memory: memory, sink: &sink)
    }
    @_transparent public func prepareUpdate<M: PhysicalMemory>(
        _ input: UInt64, count: UInt64, memory: M, availablePages: Int, rewrite: (UInt64) -> UInt64?
    ) throws(TableEditError) -> RangePlan {
        try engine.prepareUpdate(input, count: count, memory: memory, availablePages: availablePages, rewrite: rewrite)
    }
    @_transparent public func commitUpdate<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        _ plan: consuming RangePlan, memory: M, sink: inout S, rewrite: (UInt64) -> UInt64?
    ) {
        engine.commitUpdate(plan, memory: memory, sink: &sink, rewrite: rewrite)
    }
    @_transparent public func teardown<M: PhysicalMemory, S: TableEditSink & ~Copyable>(
        cursor: inout UInt64, budget: inout Int, memory: M, sink: inout S
    ) -> Bool {
        engine.teardown(cursor: &cursor, budget: &budget, memory: memory, sink: &sink)
    }
}
