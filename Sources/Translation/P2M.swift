import AArch64

/// The P2M: one domain's stage-2 translation, GFN → MFN with Xen's p2m types.
///
/// ## API (for the page-state layer, the SMMU driver and the hypervisor)
/// ```
/// var p2m = try P2M<Plain>(configuration: .init(vmid: 1, ipaBits: 40, paRange: .bits40, vmidWidth: .bits8),
///                          memory: mem, pool: pool, tlb: tlb)               // no hooks
/// var batch = FlushBatch(releaser: NoHeldReferences())
/// try lock.withLock { (held: borrowing P2MLockHeld) throws(P2MError) in
///     try p2m.map(gfn, to: mfn, count: 512, as: .ramRW, flushing: &batch, holding: held)  // insert-only by default
///     try p2m.map(gfn, to: mfn, count: n, as: .ramRW, policy: .replace, flushing: &batch, holding: held)
///     try p2m.unmap(gfn, count: n, flushing: &batch, holding: held)
///     try p2m.changeType(gfn, count: n, from: .ramRW, to: .ramRO, flushing: &batch, holding: held)
///     p2m.lookup(gfn)                                    // -> P2MMapping(mfn, type, order)?
///     let stats = try p2m.commit(&batch, holding: held)  // TLBI + IOMMU + wait, then release
///     // (throws P2MFlushError, keeping it all, if the IOMMU did not confirm)
///     while p2m.relinquish(budget: 512, flushing: &batch, holding: held) == .more { ... }  // bounded teardown
/// }
/// p2m.vttbr, p2m.vtcr, p2m.root               // for VTTBR_EL2 and an SMMU stage-2 STE
/// ```
/// The hardware and the hooks are the `Environment`'s associated types; the hooks
/// default to no-op types (`NoIOMMU`, `NoEntryListener`, `NoChangeObserver`;
/// `NoHeldReferences` for batches):
/// - `Listener: P2MEntryListener`: every leaf run that leaves the P2M (Xen's
///   `p2m_put_l3_page`); it may hand references to `batch.holdReference`.
/// - `Observer: P2MChangeObserver`: the change stream for a stage-1 IOMMU mirror:
///   `prepare(P2MPlannedChange)` before anything is written, then `apply(P2MChange)`.
/// - `IOMMU: IOMMUInvalidator`: gets the same GFN ranges as the CPU at commit and at
///   break-before-make, then a completion wait, which may fail (`IOMMUSyncError`):
///   `commit` then throws `P2MFlushError` and the batch keeps everything it owes.
/// - `FlushBatch<Releaser>`: references held until invalidation completed;
///   `batch.removedMappings` tells a caller that a page it frees itself must wait
///   for `commit` (XSA-346).
///
/// ## Guarantees
/// - All-or-nothing: each operation validates and plans first (conflicts, table pages
///   needed, observer reservation) and writes nothing unless all of it will succeed;
///   the commit phase has no failure point. Errors are typed (`P2MError`). The one
///   exception is `breakNotConfirmed`: an IOMMU wait inside break-before-make failed,
///   and the broken entries stay invalid (see that case for the state it leaves).
/// - Break-before-make (Arm ARM "Using break-before-make when updating translation table entries"): a valid entry is replaced by one with a
///   different output or size only after it was written invalid and its range was
///   invalidated (CPU and IOMMU) and waited for. Blocks are split this way. If the
///   IOMMU's wait fails, the new entry is not made (the range stays owed).
/// - Blocks: the largest of 1 GiB / 2 MiB / 4 KiB that GFN, MFN and remaining count allow
///   (capped by `largestBlock:`); a table that a map leaves fully populated with one
///   contiguous, uniform run is merged back into a block (2 MiB, then 1 GiB).
/// - Nothing removed is reused before the flush: ranges, unlinked table pages and held
///   references wait in the `FlushBatch` until `commit` (DESIGN.md rule 1, seed 000).
///
/// ## Lock discipline
/// The P2M is `~Copyable`, and every edit (`map`, `unmap`, `changeType`, `commit`,
/// `relinquish`) takes `holding: borrowing P2MLockHeld`, the witness that the
/// domain's `P2MLock` is held (from `acquire` or `withLock`; nothing else can make
/// one), so an edit without the lock does not compile. The parts whose state the
/// two-phase edits rely on (pool, TLB, hooks, the table engine) cannot be reached
/// for writing from outside this module. The holder must `commit` the `FlushBatch`
/// before releasing the lock (Xen: `p2m_write_lock` … flush … `p2m_write_unlock`). There are no lock-free readers:
/// `lookup` from the stage-2 fault path takes the same lock, because a concurrent
/// split exposes a transiently invalid block. The table pool is the P2M's own, which
/// is what makes prepare-then-commit sound: nobody can take a page between the two
/// phases. Hooks run with the lock held and must not call back into this P2M.
public struct P2M<Environment: P2MEnvironment>: ~Copyable {
    public typealias Memory = Environment.Memory
    public typealias Pool = Environment.Pool
    public typealias TLB = Environment.TLB
    public typealias IOMMU = Environment.IOMMU
    public typealias Listener = Environment.Listener
    public typealias Observer = Environment.Observer

    public let configuration: P2MConfiguration
    public let vtcr: VTCR
    public let vttbr: VTTBR
    /// The engine over this P2M's stage-2 tables: edited only through the P2M's
    /// own (lock-taking) operations.
    let table: TranslationTable<Stage2Descriptor>
    public let memory: Memory
    // Readable for statistics and tests; written only by the P2M's operations,
    // under the lock they demand (a pool taken from outside between prepare and
    // commit would break the commit's no-failure promise).
    public internal(set) var pool: Pool
    public internal(set) var tlb: TLB
    public internal(set) var iommu: IOMMU
    public internal(set) var listener: Listener
    public internal(set) var observer: Observer
    /// Table pages linked into the tree (root pages included).
    public internal(set) var tablePagesInUse: Int
    /// Break-before-make invalidations issued inside operations (not by `commit`).
    public internal(set) var breakBeforeMakeInvalidations = 0
    public internal(set) var isRelinquished = false
    var relinquishCursor: UInt64 = 0
    /// The path to the leaf table the last one-table map or unmap used (a run of
    /// one-page calls walks once per leaf table). Invalidated by the session on
    /// every unlinked table page, which is every change above a leaf table.
    var leafCache = LeafPathCache()
    /// `leafTemplates`' last answer and its (type, access) key; `.max`: none yet.
    var leafTemplateKey: UInt16 = .max
    var leafTemplateValue: UInt64 = 0
    var blockTemplateValue: UInt64 = 0

    // What a `P2MSession` writes, in place. The session's methods are inlinable so
    // that a client module (the release benchmark) specialises the engine's sink
    // calls as the board's single-module build does; inlinable code cannot use
    // the internal setters above, so it goes through these.
    @usableFromInline var sessionPool: Pool { _read { yield pool } _modify { yield &pool } }
    @usableFromInline var sessionListener: Listener { _read { yield listener } _modify { yield &listener } }
    @usableFromInline var sessionObserver: Observer { _read { yield observer } _modify { yield &observer } }
    @usableFromInline var sessionTablePagesInUse: Int { _read { yield tablePagesInUse } _modify { yield &tablePagesInUse } }
    @usableFromInline var sessionLeafCache: LeafPathCache { _read { yield leafCache } _modify { yield &leafCache } }

    public init(configuration: P2MConfiguration, memory: Memory, pool: Pool, tlb: TLB,
                iommu: IOMMU, listener: Listener, observer: Observer) throws(P2MError) {
        // Every check in one call that takes none of the owned arguments: a single
        // failure exit here releases them, where one exit per check repeated that
        // code on the board.
        var pool = pool
        let (vtcr, vttbr, geometry, root) = try Self.makeRoot(configuration, pool: &pool)
        self.configuration = configuration
        self.vtcr = vtcr
        self.vttbr = vttbr
        self.table = TranslationTable(geometry: geometry, root: root)
        self.memory = memory
        self.pool = pool
        self.tlb = tlb
        self.iommu = iommu
        self.listener = listener
        self.observer = observer
        self.tablePagesInUse = vtcr.rootTables
    }

    /// The VTCR, VTTBR, geometry and root tables of a new P2M for `configuration`,
    /// the root taken from `pool`; on failure nothing is taken. Transparent: `init`
    /// is its one caller.
    @_transparent
    static func makeRoot(
        _ configuration: P2MConfiguration, pool: inout Pool
    ) throws(P2MError) -> (VTCR, VTTBR, TableGeometry, MFN) {
        let vtcr: VTCR
        do { vtcr = try VTCR(ipaBits: configuration.ipaBits, paRange: configuration.paRange,
                             vmidWidth: configuration.vmidWidth) } catch { throw .configuration(error) }
        guard configuration.vmid <= configuration.vmidWidth.maxVMID else {
            throw .configuration(.vmidTooWide(vmid: configuration.vmid, width: configuration.vmidWidth))
        }
        let geometry = TableGeometry(vtcr: vtcr, paRange: configuration.paRange)
        let root: MFN
        do { root = try TranslationTable<Stage2Descriptor>.allocateRoot(geometry, pool: &pool) } catch { throw P2MError(error) }
        let vttbr: VTTBR
        do { vttbr = try VTTBR(root: root, vmid: configuration.vmid, vtcr: vtcr, vmidWidth: configuration.vmidWidth) } catch {
            // An index loop: a range's iterator is a function of its own on the board.
            var i: UInt64 = 0
            while i < UInt64(vtcr.rootTables) {
                pool.freeTablePage(root.adding(i))
                i &+= 1
            }
            throw .configuration(error)
        }
        return (vtcr, vttbr, geometry, root)
    }

    public var vmid: UInt16 { configuration.vmid }
    public var root: MFN { table.root }
    /// The shape of the stage-2 tables (start level, concatenated root, IPA and PA sizes).
    public var geometry: TableGeometry { table.geometry }

    // MARK: Lookup

    /// What `gfn` maps to, with the size of the leaf that maps it. Caller holds the lock.
    /// Inline: a call would pass the whole P2M, which callers reaching it through
    /// a pointer copy first.
    @inline(__always)
    public func lookup(_ gfn: GFN) -> P2MMapping? {
        let descriptor: UInt64, mfn: MFN, order: PageOrder
        if let path = leafCache.inPlacePath(covering: gfn.raw, count: 1) {
            // A cached leaf table holds its entry (see `LeafPathCache`): one load,
            // not a walk. At level 3 a valid entry is a page. The entry's index is
            // the low 9 bits of the GFN: a P2M's root is never at level 3 (VTCR
            // starts at level 0...2), so the leaf table is a single page (an
            // inline address, not the engine's call with its copy of the table).
            let index = gfn.raw & UInt64(TableLevel.entriesPerTable &- 1)
            descriptor = memory.load64(path.leafTable.address.adding(index &* TableLevel.descriptorBytes))
            guard Stage2Descriptor.isValid(raw: descriptor) else { return nil }
            (mfn, order) = (Stage2Descriptor.outputFrame(raw: descriptor), .page4K)
        } else {
            guard let leaf = table.lookup(gfn.raw, memory: memory) else { return nil }
            (descriptor, mfn, order) = (leaf.descriptor, leaf.output, leaf.order)
        }
        // One type decode (and one trap) for both ways to the leaf.
        guard let type = P2MType(softwareBits: Stage2Descriptor(raw: descriptor).softwareBits) else {
            preconditionFailure("P2M leaf without a p2m type")
        }
        return P2MMapping(mfn: mfn, type: type, order: order)
    }

    // MARK: Map

    /// Map `count` pages from `gfn` to consecutive frames from `mfn`, as `type`,
    /// restricted by `access`. Uses the largest blocks alignment allows.
    /// `.insertOnly` refuses if anything in the range is mapped; `.replace` replaces
    /// (break-before-make; the listener sees every replaced leaf whose MFN changes).
    /// `largestBlock` caps the leaf size (e.g. `.page4K` for memory that will be
    /// shared page by page, so later changes need no split).
    public mutating func map<R: PageReferenceReleaser>(
        _ gfn: GFN, to mfn: MFN, count: UInt64, as type: P2MType, access: P2MAccess = .all,
        policy: P2MMapPolicy = .insertOnly, largestBlock: PageOrder = .block1G, flushing batch: inout FlushBatch<R>,
        holding lock: borrowing P2MLockHeld
    ) throws(P2MError) {
        guard !isRelinquished else { throw .relinquished }
        guard type != .invalid else { throw .cannotMapInvalidType }
        if let path = leafCache.inPlacePath(covering: gfn.raw, count: count) {
            try mapAlong(path, level: TableLevel.leafLevel, buildingTables: false, gfn, to: mfn, count: count,
                         as: type, access: access, policy: policy, largestBlock: largestBlock, flushing: &batch)
        } else {
            try mapUncached(gfn, to: mfn, count: count, as: type, access: access, policy: policy,
                            largestBlock: largestBlock, flushing: &batch)
        }
        // Every path ends here once its edit is made (one call site, not one per path).
        observer.apply(.mapped(gfn, mfn, count: count, type: type, access: access))
    }

    /// A map that lands in one table of `path`: the edit of a plan whose path level
    /// is `level`, without the plan (or the template's rebuild). Either a run in the
    /// existing leaf table (`level` 3), which makes the checks of such a plan here,
    /// or, checked by the caller, one block into an invalid entry of the table at
    /// `level` 1 or 2, or (`buildingTables`) a run into new tables linked into an
    /// invalid entry of the table at `level`. One function for the three (the board
    /// keeps one copy; the host inlines each with its kind). Like every map path,
    /// it leaves `observer.apply` to `map`.
    @inline(__always)
    mutating func mapAlong<R: PageReferenceReleaser>(
        _ path: LeafPath, level: Int, buildingTables: Bool, _ gfn: GFN, to mfn: MFN, count: UInt64, as type: P2MType,
        access: P2MAccess, policy: P2MMapPolicy, largestBlock: PageOrder, flushing batch: inout FlushBatch<R>
    ) throws(P2MError) {
        if level == TableLevel.leafLevel && !buildingTables {
            do {
                try table.prepareLeafMap(path, gfn.raw, to: mfn, count: count, replace: policy == .replace,
                                         largestBlock: largestBlock, memory: memory)
            } catch { throw P2MError(error) }
        }
        let templates = try beginMap(gfn, to: mfn, count: count, as: type, access: access, policy: policy,
                                     flushing: &batch)
        let engine = table, memory = memory
        let replace = policy == .replace
        let firstLeafLevel = TranslationTable<Stage2Descriptor>.firstLeafLevel(largestBlock)
        // A replacing map breaks valid leaves first: if the IOMMU does not confirm
        // their invalidation, they stay invalid and the map ends incomplete. (The
        // other two write into an invalid entry: nothing to break.)
        try commitEdit(&batch, gfn, count: count) { session in
            if buildingTables {
                engine.commitNewTables(path, at: level, gfn.raw, to: mfn.raw, count: count, template: templates.page,
                                       memory: memory, sink: &session)
            } else if level == TableLevel.leafLevel {
                engine.commitLeafMap(path, gfn.raw, to: mfn.raw, count: count, template: templates.page,
                                     replace: replace, firstLeafLevel: firstLeafLevel, memory: memory, sink: &session)
            } else {
                engine.commitBlockMap(path, at: level, gfn.raw, to: mfn.raw, template: templates.block,
                                      firstLeafLevel: firstLeafLevel, memory: memory, sink: &session)
            }
        }
    }

    /// `map` when the cached path does not hold the run: a short run walks once to
    /// its leaf table (caching the path, and maps there as `map` does with a cached
    /// one) or to where that table is missing; one block into an existing table
    /// is one store; everything else makes a plan. Out of line, so that the cached
    /// path keeps its values in registers.
    @inline(never)
    mutating func mapUncached<R: PageReferenceReleaser>(
        _ gfn: GFN, to mfn: MFN, count: UInt64, as type: P2MType, access: P2MAccess, policy: P2MMapPolicy,
        largestBlock: PageOrder, flushing batch: inout FlushBatch<R>
    ) throws(P2MError) {
        let short = count < TableLevel.pagesPerEntry(TableLevel.leafLevel - 1)
        let blockSpan = count >= PageOrder.block2M.pages && count.nonzeroBitCount == 1
        if short || blockSpan {
            // The checks `prepareMap` starts with, in its order, once for the paths
            // below (a run into an existing leaf table checks the output again).
            do {
                try table.validateInput(gfn.raw, count: count)
                try table.validateOutput(mfn, count: count)
            } catch { throw P2MError(error) }
            precondition(largestBlock == .page4K || largestBlock == .block2M || largestBlock == .block1G,
                         "a leaf order of the 4 KiB granule")
        }
        if short {
            // One walk finds the run's leaf table or where it is missing.
            if let (path, level) = table.leafOrMissingPath(gfn.raw, count: count, memory: memory, cache: &leafCache) {
                if level == TableLevel.leafLevel {
                    try mapAlong(path, level: level, buildingTables: false, gfn, to: mfn, count: count, as: type,
                                 access: access, policy: policy, largestBlock: largestBlock, flushing: &batch)
                    return
                }
                // The leaf table is missing below an invalid entry at `level` of the
                // last table on `path`: the checks (those above, and the pool's) and
                // the edit of a plan whose path level is `level` and that builds
                // tables, without the plan. The path
                // stays right through `beginMap`: neither the observer's reservation
                // nor the invalidation it may complete edits the tree (unlinked table
                // pages are freed only by `commit`).
                let needed = TableLevel.leafLevel &- level, available = pool.availableTablePages  // level 0...2
                guard needed <= available else { throw .tablePoolExhausted(needed: needed, available: available) }
                try mapAlong(path, level: level, buildingTables: true, gfn, to: mfn, count: count, as: type,
                             access: access, policy: policy, largestBlock: largestBlock, flushing: &batch)
                return
            }
        }
        if blockSpan {
            // A 2 MiB or 1 GiB span: one block into an invalid entry of an existing
            // table is one store; the same checks and edit as below, without a plan.
            let firstLeafLevel = TranslationTable<Stage2Descriptor>.firstLeafLevel(largestBlock)
            if let (path, level) = table.blockPath(gfn.raw, to: mfn.raw, count: count, firstLeafLevel: firstLeafLevel,
                                                   memory: memory) {
                try mapAlong(path, level: level, buildingTables: false, gfn, to: mfn, count: count, as: type,
                             access: access, policy: policy, largestBlock: largestBlock, flushing: &batch)
                return
            }
        }
        try mapWalking(gfn, to: mfn, count: count, as: type, access: access, policy: policy, largestBlock: largestBlock,
                       flushing: &batch)
    }

    /// `map` through the table walk and a plan. Out of line, so that the path
    /// above keeps its values in registers.
    @inline(never)
    mutating func mapWalking<R: PageReferenceReleaser>(
        _ gfn: GFN, to mfn: MFN, count: UInt64, as type: P2MType, access: P2MAccess, policy: P2MMapPolicy,
        largestBlock: PageOrder, flushing batch: inout FlushBatch<R>
    ) throws(P2MError) {
        let plan: MapPlan
        do {
            plan = try table.prepareMap(gfn.raw, to: mfn, count: count, attributes: type.stage2Attributes(access: access),
                                        replace: policy == .replace, largestBlock: largestBlock, memory: memory,
                                        availablePages: pool.availableTablePages, cache: &leafCache)
        } catch { throw P2MError(error) }
        try beginMap(gfn, to: mfn, count: count, as: type, access: access, policy: policy, flushing: &batch)
        let cache = leafCache  // what the prepare left there; the commit may invalidate it
        try endEdit(Self.runPlannedMap(&self, &batch, plan, cache: cache), gfn, count: count)
    }

    /// `runSession` for a planned map, the plan handed to the engine by value: a
    /// closure cannot consume what it captures, which cost the board an Optional
    /// plan and its copies, and the closure with its context. Transparent:
    /// `mapWalking` is its one caller.
    @_transparent
    static func runPlannedMap<R: PageReferenceReleaser>(
        _ p2m: UnsafeMutablePointer<Self>, _ batch: UnsafeMutablePointer<FlushBatch<R>>, _ plan: consuming MapPlan,
        cache: LeafPathCache
    ) -> UnconfirmedBreak? {
        let engine = p2m.pointee.table, memory = p2m.pointee.memory
        var session = P2MSession(p2m: p2m, batch: batch)
        engine.commitMap(plan, memory: memory, sink: &session, cache: cache)
        session.finish()
        return session.unconfirmed
    }

    /// A map's last failure points, after the table's own checks: the observer's
    /// reservation, and the invalidation an earlier edit in the batch still owes.
    /// Returns the descriptor templates (`leafTemplates`) the edit writes.
    @inline(__always) @discardableResult
    mutating func beginMap<R: PageReferenceReleaser>(
        _ gfn: GFN, to mfn: MFN, count: UInt64, as type: P2MType, access: P2MAccess, policy: P2MMapPolicy,
        flushing batch: inout FlushBatch<R>
    ) throws(P2MError) -> (page: UInt64, block: UInt64) {
        guard observer.prepare(.map(gfn, mfn, count: count, type: type, access: access,
                                    replacing: policy == .replace)) else {
            throw .observerRefused(gfn, count: count)
        }
        batch.bind(vmid: vmid)
        // An earlier edit in this batch may have broken entries this map will make
        // again (leaves, or a table descriptor whose emptied table was unlinked, which
        // is recorded by one page of its span) without invalidating them yet. Making
        // them before that invalidation would break break-before-make across
        // operations, so complete it first. Checked over the root entries the map
        // touches, which covers every table descriptor it may write.
        // Wrapping arithmetic: the start level is 0...3 (the geometry's init
        // derives it so) and the input was validated (non-empty, no wrap) by
        // every map path before it gets here; checked, each was a trap test.
        let levelsBelowRoot = TableLevel.leafLevel &- table.geometry.startLevel
        let rootSpan: UInt64 = 1 &<< UInt64(truncatingIfNeeded: TableLevel.bitsPerLevel &* levelsBelowRoot)
        let first = gfn.raw & ~(rootSpan &- 1)
        let last = (gfn.raw &+ count &- 1) | (rootSpan &- 1)
        // If the IOMMU cannot confirm that invalidation, nothing is written: the
        // ranges stay in the batch for its commit to retry.
        if batch.owesInvalidation(overlapping: first, frames: last &- first &+ 1) {
            do { try invalidatePending(&batch) } catch { throw .iommuNotSynchronized(error) }
        }
        // Every map path (cached leaf, walk, block) comes through here: the
        // commit publishes what it writes with one barrier if no TLBI is owed.
        batch.notePublishesNewEntries()
        return leafTemplates(type, access)
    }

    /// The level-3 and block descriptor templates (everything but the output
    /// address) for `type` under `access`, from the last ones asked for when the
    /// same. Transparent: `beginMap` is its one caller.
    @_transparent
    mutating func leafTemplates(_ type: P2MType, _ access: P2MAccess) -> (page: UInt64, block: UInt64) {
        let key = UInt16(type.rawValue) << 8 | UInt16(access.raw)
        if key != leafTemplateKey {
            let attributes = type.stage2Attributes(access: access)
            leafTemplateKey = key
            leafTemplateValue = Stage2Descriptor.leafTemplate(level: TableLevel.leafLevel, attributes: attributes)
            blockTemplateValue = Stage2Descriptor.leafTemplate(level: TableLevel.firstBlockLevel, attributes: attributes)
        }
        return (leafTemplateValue, blockTemplateValue)
    }

    /// Map one naturally aligned block of `order` (Xen's `guest_physmap_add_entry`).
    public mutating func map<R: PageReferenceReleaser>(
        _ gfn: GFN, to mfn: MFN, order: PageOrder, as type: P2MType, access: P2MAccess = .all,
        policy: P2MMapPolicy = .insertOnly, flushing batch: inout FlushBatch<R>, holding lock: borrowing P2MLockHeld
    ) throws(P2MError) {
        guard order <= .block1G, order.isAligned(gfn.raw), order.isAligned(mfn.raw) else {
            throw .misaligned(gfn, mfn, order: order)
        }
        try map(gfn, to: mfn, count: order.pages, as: type, access: access, policy: policy, flushing: &batch,
                holding: lock)
    }

    // MARK: Unmap

    /// Remove every mapping in [gfn, gfn+count) (holes are fine). Fails only on bad
    /// input or when splitting a partly covered block finds the pool empty.
    public mutating func unmap<R: PageReferenceReleaser>(
        _ gfn: GFN, count: UInt64, flushing batch: inout FlushBatch<R>, holding lock: borrowing P2MLockHeld
    ) throws(P2MError) {
        guard !isRelinquished else { throw .relinquished }
        if let path = leafCache.inPlacePath(covering: gfn.raw, count: count) {
            try unmapAlong(path, level: TableLevel.leafLevel, gfn, count: count, flushing: &batch)
        } else {
            try unmapUncached(gfn, count: count, flushing: &batch)
        }
        // Every path ends here once its edit is made (one call site, not one per path).
        observer.apply(.unmapped(gfn, count: count))
    }

    /// An unmap whose run lies in one table of `path`: the leaf table (`level` 3:
    /// valid input and no block to split, so nothing to prepare), or one whole entry
    /// of the table at `level` 1 or 2 (a 2 MiB or 1 GiB block, or the table under it:
    /// nothing to split either); the edit of a plan whose path level is `level`.
    /// Like every unmap path, it leaves `observer.apply` to `unmap`. One function
    /// for both (the board keeps one copy; the host inlines each with its level).
    @inline(__always)
    mutating func unmapAlong<R: PageReferenceReleaser>(
        _ path: LeafPath, level: Int, _ gfn: GFN, count: UInt64, flushing batch: inout FlushBatch<R>
    ) throws(P2MError) {
        guard observer.prepare(.unmap(gfn, count: count)) else { throw .observerRefused(gfn, count: count) }
        batch.bind(vmid: vmid)
        let engine = table, memory = memory
        withSession(&batch) { session in
            if level == TableLevel.leafLevel {
                engine.commitLeafUnmap(path, gfn.raw, count: count, memory: memory, sink: &session)
            } else {
                engine.commitUnmap(along: path, level: level, gfn.raw, count: count, memory: memory, sink: &session)
            }
        }
    }

    /// `unmap` when the cached path does not hold the run (see `mapUncached`).
    @inline(never)
    mutating func unmapUncached<R: PageReferenceReleaser>(
        _ gfn: GFN, count: UInt64, flushing batch: inout FlushBatch<R>
    ) throws(P2MError) {
        let short = count < TableLevel.pagesPerEntry(TableLevel.leafLevel - 1)
        let blockSpan = count >= PageOrder.block2M.pages && count.nonzeroBitCount == 1
        if short || blockSpan {
            do { try table.validateInput(gfn.raw, count: count) } catch { throw P2MError(error) }
        }
        if short {
            if let path = table.leafPath(gfn.raw, count: count, memory: memory, cache: &leafCache) {
                try unmapAlong(path, level: TableLevel.leafLevel, gfn, count: count, flushing: &batch)
                return
            }
        }
        if blockSpan {
            // One whole entry of an existing table (a 2 MiB or 1 GiB block, or the
            // table under it): nothing to split, so nothing more to prepare.
            if let (path, level) = table.wholeEntryPath(gfn.raw, count: count, memory: memory) {
                try unmapAlong(path, level: level, gfn, count: count, flushing: &batch)
                return
            }
        }
        try unmapWalking(gfn, count: count, flushing: &batch)
    }

    /// `unmap` through the table walk and a plan, out of line (see `mapWalking`).
    @inline(never)
    mutating func unmapWalking<R: PageReferenceReleaser>(
        _ gfn: GFN, count: UInt64, flushing batch: inout FlushBatch<R>
    ) throws(P2MError) {
        let plan: RangePlan
        do {
            plan = try table.prepareUnmap(gfn.raw, count: count, memory: memory, availablePages: pool.availableTablePages,
                                          cache: &leafCache)
        } catch { throw P2MError(error) }
        guard observer.prepare(.unmap(gfn, count: count)) else { throw .observerRefused(gfn, count: count) }
        batch.bind(vmid: vmid)
        let cache = leafCache  // what the prepare left there; the commit may invalidate it
        try endEdit(Self.runPlannedUnmap(&self, &batch, plan, cache: cache), gfn, count: count)
    }

    /// `runPlannedMap` for a planned unmap. Transparent: `unmapWalking` is its
    /// one caller.
    @_transparent
    static func runPlannedUnmap<R: PageReferenceReleaser>(
        _ p2m: UnsafeMutablePointer<Self>, _ batch: UnsafeMutablePointer<FlushBatch<R>>, _ plan: consuming RangePlan,
        cache: LeafPathCache
    ) -> UnconfirmedBreak? {
        let engine = p2m.pointee.table, memory = p2m.pointee.memory
        var session = P2MSession(p2m: p2m, batch: batch)
        engine.commitUnmap(plan, memory: memory, sink: &session, cache: cache)
        session.finish()
        return session.unconfirmed
    }

    // MARK: Change type

    /// Change every entry of type `from` in [gfn, gfn+count) to `to` (Xen's
    /// `p2m_change_type_range`); other entries and holes are left alone. Only the
    /// transitions `P2MType.canChange(to:)` allows; output addresses never change.
    public mutating func changeType<R: PageReferenceReleaser>(
        _ gfn: GFN, count: UInt64, from: P2MType, to: P2MType, access: P2MAccess = .all,
        flushing batch: inout FlushBatch<R>, holding lock: borrowing P2MLockHeld
    ) throws(P2MError) {
        guard !isRelinquished else { throw .relinquished }
        guard from.canChange(to: to) else { throw .unsupportedTypeTransition(from: from, to: to) }
        // A value, not a stored closure: a closure in a variable escapes and would be
        // boxed on the heap, which the board build has no use for.
        let rewrite = TypeRewrite(from: from, attributes: to.stage2Attributes(access: access))
        let plan: RangePlan
        do {
            plan = try table.prepareUpdate(gfn.raw, count: count, memory: memory,
                                           availablePages: pool.availableTablePages, rewrite: { rewrite.apply($0) })
        } catch { throw P2MError(error) }
        guard observer.prepare(.changeType(gfn, count: count, from: from, to: to, access: access)) else {
            throw .observerRefused(gfn, count: count)
        }
        batch.bind(vmid: vmid)
        // A block split links its new table after its break-before-make
        // invalidation, so the commit may owe no TLBI to publish it.
        batch.notePublishesNewEntries()
        try endEdit(Self.runPlannedUpdate(&self, &batch, plan, rewrite: rewrite, typeChange: (from, to, access)),
                    gfn, count: count)
    }

    /// `runPlannedMap` for a planned type change, which the session reports to
    /// the observer as `typeChange`. Transparent: `changeType` is its one caller.
    @_transparent
    static func runPlannedUpdate<R: PageReferenceReleaser>(
        _ p2m: UnsafeMutablePointer<Self>, _ batch: UnsafeMutablePointer<FlushBatch<R>>, _ plan: consuming RangePlan,
        rewrite: TypeRewrite, typeChange: (from: P2MType, to: P2MType, access: P2MAccess)
    ) -> UnconfirmedBreak? {
        let engine = p2m.pointee.table, memory = p2m.pointee.memory
        var session = P2MSession(p2m: p2m, batch: batch)
        session.typeChange = typeChange
        engine.commitUpdate(plan, memory: memory, sink: &session, rewrite: { rewrite.apply($0) })
        session.finish()
        return session.unconfirmed
    }

    /// `withSession` for one edit of [gfn, gfn+count): if a break-before-make in it
    /// was not confirmed by the IOMMU, the edit ends incomplete (`endIncomplete`).
    /// Transparent: out of line it only forwarded to `runSession` and `endEdit`.
    @_transparent
    mutating func commitEdit<R: PageReferenceReleaser>(
        _ batch: inout FlushBatch<R>, _ gfn: GFN, count: UInt64, _ body: (inout P2MSession<Environment, R>) -> Void
    ) throws(P2MError) {
        try endEdit(withSession(&batch, body), gfn, count: count)
    }

    /// The end of the commit phase of an edit of [gfn, gfn+count): if a
    /// break-before-make in it was not confirmed by the IOMMU (`unconfirmed`), the
    /// edit ends incomplete (`endIncomplete`). Inline on the host.
    @inline(__always)
    mutating func endEdit(_ unconfirmed: UnconfirmedBreak?, _ gfn: GFN, count: UInt64) throws(P2MError) {
        if let unconfirmed { throw endIncomplete(unconfirmed, gfn, count: count) }
    }

    /// Run one commit phase with a `P2MSession` over this P2M and `batch` as the
    /// engine's sink, then deliver the session's last coalesced runs; returns the
    /// session's unconfirmed break-before-make, if any. The session reaches both in
    /// place (see `P2MSession`): this call holds exclusive access to both for as
    /// long as the session lives, and the session cannot outlive it. One result
    /// type for every caller (a body with a result of its own captures it): on the
    /// board each result type was another copy of the two pointer closures.
    @_transparent @discardableResult
    mutating func withSession<R: PageReferenceReleaser>(
        _ batch: inout FlushBatch<R>, _ body: (inout P2MSession<Environment, R>) -> Void
    ) -> UnconfirmedBreak? {
        // The two addresses are the arguments' (inout-to-pointer conversion), valid
        // for exactly the call, which is the session's whole life. Not nested
        // `withUnsafeMutablePointer` calls: through their generic result and
        // typed throws, those cost the board four forwarding thunks. Transparent:
        // out of line it was one more forwarding function.
        Self.runSession(&self, &batch, body)
    }

    /// `withSession`'s body, over the two addresses it holds exclusively. Inline
    /// on the host (with the body closure); one copy on the board.
    @inline(__always)
    static func runSession<R: PageReferenceReleaser>(
        _ p2m: UnsafeMutablePointer<Self>, _ batch: UnsafeMutablePointer<FlushBatch<R>>,
        _ body: (inout P2MSession<Environment, R>) -> Void
    ) -> UnconfirmedBreak? {
        // No type change: `runPlannedUpdate` is the one session that reports one.
        var session = P2MSession(p2m: p2m, batch: batch)
        body(&session)
        session.finish()
        return session.unconfirmed
    }

    // MARK: Flush

    /// Perform what `batch` owes: invalidate the recorded ranges on the CPU (per range
    /// up to `configuration.fullFlushThreshold` pages in total, the whole VMID above it
    /// or when the ranges overflowed), forward the same to the IOMMU, wait for both,
    /// and only then release held references and free unlinked table pages.
    ///
    /// If the IOMMU cannot confirm completion (`IOMMUInvalidator.synchronize`
    /// throws: a lost CMD_SYNC, a stopped command queue), a device may still
    /// translate through the removed entries, so nothing is released (DESIGN.md
    /// rule 1, seed 000): the batch keeps its ranges, held references and unlinked
    /// table pages, and this throws `P2MFlushError.iommuNotSynchronized`. The batch
    /// must then be kept and committed again; the first commit whose IOMMU wait
    /// succeeds re-issues the invalidations and releases everything.
    ///
    /// Board obligations (Arm ARM D8.13 "TLB maintenance", "Ordering and completion
    /// of TLB maintenance instructions"): `TLBMaintenance.invalidateStage2` and
    /// `invalidateVMID` must start with DSB ISHST (the descriptor writes reach the
    /// walkers before the TLBI), and `synchronize` must be DSB ISH (+ ISB on the
    /// local CPU). `TLBIOperand` encodes the per-page and FEAT_TLBIRANGE operands.
    /// Transparent: a forwarding call of its own cost the board a function.
    @_transparent @discardableResult
    public mutating func commit<R: PageReferenceReleaser>(
        _ batch: inout FlushBatch<R>, holding lock: borrowing P2MLockHeld
    ) throws(P2MFlushError) -> FlushStatistics {
        try commitOrKeep(&batch)
    }

    /// `commit`'s body, one name for both overloads.
    @usableFromInline mutating func commitOrKeep<R: PageReferenceReleaser>(
        _ batch: inout FlushBatch<R>
    ) throws(P2MFlushError) -> FlushStatistics {
        batch.bind(vmid: vmid)
        var stats: FlushStatistics
        do { stats = try invalidatePending(&batch) } catch {
            throw .iommuNotSynchronized(error, heldReferences: batch.heldReferences,
                                        tablePages: batch.unlinkedTablePages)
        }
        // Only now can nothing translate to what the batch holds (seed 000).
        let released = batch.invalidationCompleted(freeingTo: &pool, memory: memory)
        stats.tablePagesFreed = released.tablePages
        stats.referencesReleased = released.references
        return stats
    }

    /// Issue and complete the invalidations `batch` has recorded, and forget them;
    /// releases stay for `commit`. If the IOMMU cannot confirm completion, the
    /// ranges stay recorded (the CPU side has completed; re-issuing it is harmless).
    @discardableResult
    mutating func invalidatePending<R: PageReferenceReleaser>(
        _ batch: inout FlushBatch<R>
    ) throws(IOMMUSyncError) -> FlushStatistics {
        var stats = FlushStatistics()
        if batch.needsInvalidation {
            // Each TLBI call starts with DSB ISHST, which also publishes every
            // entry the batch made valid.
            batch.newEntriesPublished()
            if batch.invalidatesWholeVMID || batch.pendingPages > configuration.fullFlushThreshold {
                issueInvalidation(0, count: 0, wholeVMID: true)
                stats.vmidInvalidations = 1
                stats.pagesInvalidated = batch.invalidatesWholeVMID ? table.geometry.inputFrameLimit : batch.pendingPages
            } else {
                var i = 0
                while i < batch.pending.ranges.count {
                    let (start, pages) = batch.pending.range(i)
                    issueInvalidation(start, count: pages, wholeVMID: false)
                    // At most `capacity` ranges of input frames (below 2^52 each):
                    // no sum here can wrap.
                    stats.rangeInvalidations &+= 1
                    stats.pagesInvalidated &+= pages
                    i &+= 1
                }
            }
            tlb.synchronize()
            try iommu.synchronize()
        } else {
            if batch.publishesNewEntries {
                // Only invalid entries were made valid: no TLBI, so no barrier
                // yet orders those writes before the next walk. One per commit.
                tlb.publishNewEntries()
                stats.publishBarriers = 1
                batch.newEntriesPublished()
            }
            if iommu.hasPendingInvalidations { try iommu.synchronize() }
        }
        batch.pending.rangesInvalidated()
        return stats
    }

    /// Break-before-make inside an operation: invalidate now, CPU and IOMMU, and wait.
    /// Returns the IOMMU's error if it could not confirm completion; the session then
    /// keeps the range owed in the batch (the commit retries it and releases nothing
    /// before it succeeds) and the engine leaves the broken entry invalid.
    @usableFromInline mutating func invalidateNow(_ gfn: UInt64, count: UInt64) -> IOMMUSyncError? {
        issueInvalidation(gfn, count: count, wholeVMID: count > configuration.fullFlushThreshold)
        tlb.synchronize()
        breakBeforeMakeInvalidations &+= 1
        do { try iommu.synchronize() } catch { return error }
        return nil
    }

    /// Invalidate [gfn, gfn+count) on the CPU and the IOMMU, or (`wholeVMID`)
    /// everything this VMID translates; the caller waits. One copy of the pair for
    /// the commit's ranges, its whole-VMID fallback and break-before-make.
    @inline(__always)
    mutating func issueInvalidation(_ gfn: UInt64, count: UInt64, wholeVMID: Bool) {
        if wholeVMID {
            tlb.invalidateVMID(vttbr)
            iommu.invalidateAll(vmid: vmid)
        } else {
            tlb.invalidateStage2(vttbr, ipa: GFN(raw: gfn).address, pages: count)
            iommu.invalidate(vmid: vmid, GFN(raw: gfn), count: count)
        }
    }

    /// The end of an operation whose break-before-make `unconfirmed` left entries
    /// invalid: the observer drops everything the operation may have touched
    /// (its range `gfn`/`count` and the broken entries' span, one contiguous
    /// range), so a mirror never maps what the P2M does not; then the typed error.
    /// Transparent: `endEdit` is its one caller.
    @_transparent
    mutating func endIncomplete(_ unconfirmed: UnconfirmedBreak, _ gfn: GFN, count: UInt64) -> P2MError {
        // Wrapping arithmetic: the operation's range was validated (no wrap), and
        // each span ends at or after its first frame.
        let first = min(gfn.raw, unconfirmed.first), end = max(gfn.raw &+ count, unconfirmed.end)
        observer.apply(.unmapped(GFN(raw: first), count: end &- first))
        return .breakNotConfirmed(unconfirmed.error, GFN(raw: unconfirmed.first),
                                  count: unconfirmed.end &- unconfirmed.first)
    }

    // MARK: Teardown

    /// Tear the P2M down in bounded steps (Xen's `relinquish_p2m_mapping` with
    /// preemption): visits at most `budget` entries, telling the listener about every
    /// leaf. Returns `.more` until everything, root included, is in `batch`; after
    /// `.done` and a commit, every table page is back in the pool and the P2M takes
    /// no more edits.
    public mutating func relinquish<R: PageReferenceReleaser>(
        budget: Int, flushing batch: inout FlushBatch<R>, holding lock: borrowing P2MLockHeld
    ) -> P2MRelinquishProgress {
        precondition(budget > 0, "a relinquish step must make progress")
        if isRelinquished { return .done }
        batch.bind(vmid: vmid)
        var cursor = relinquishCursor
        let finished = Self.runTeardown(&self, &batch, cursor: &cursor, budget: budget)
        relinquishCursor = cursor
        if finished {
            isRelinquished = true
            observer.apply(.unmapped(GFN(raw: 0), count: table.geometry.inputFrameLimit))
        }
        return finished ? .done : .more
    }

    /// `runSession` for one teardown step from `cursor` (see `runPlannedMap`):
    /// no closure and context for the one edit `relinquish` makes. Transparent:
    /// `relinquish` is its one caller.
    @_transparent
    static func runTeardown<R: PageReferenceReleaser>(
        _ p2m: UnsafeMutablePointer<Self>, _ batch: UnsafeMutablePointer<FlushBatch<R>>, cursor: inout UInt64,
        budget: Int
    ) -> Bool {
        let engine = p2m.pointee.table, memory = p2m.pointee.memory
        var session = P2MSession(p2m: p2m, batch: batch)
        var remaining = budget
        let finished = engine.teardown(cursor: &cursor, budget: &remaining, memory: memory, sink: &session)
        session.finish()
        return finished
    }
}

extension P2M where Environment.IOMMU == NoIOMMU {
    /// `commit` for a P2M no IOMMU shares: only the CPU invalidates, and a CPU
    /// invalidation always completes (DSB ISH), so this cannot fail.
    @discardableResult
    public mutating func commit<R: PageReferenceReleaser>(
        _ batch: inout FlushBatch<R>, holding lock: borrowing P2MLockHeld
    ) -> FlushStatistics {
        do throws(P2MFlushError) {
            return try commitOrKeep(&batch)
        } catch {
            preconditionFailure("NoIOMMU never fails to synchronize")
        }
    }
}

extension P2M where Environment.IOMMU == NoIOMMU, Environment.Listener == NoEntryListener,
                    Environment.Observer == NoChangeObserver {
    /// A P2M with no IOMMU, no entry listener and no change observer.
    public init(configuration: P2MConfiguration, memory: Memory, pool: Pool, tlb: TLB) throws(P2MError) {
        try self.init(configuration: configuration, memory: memory, pool: pool, tlb: tlb,
                      iommu: NoIOMMU(), listener: NoEntryListener(), observer: NoChangeObserver())
    }
}

extension LeafPathCache {
    /// `path(covering:count:)` inlined where the cache is stored, reading its keys
    /// and the matching path in place: a call passes the cache by value, which on
    /// the board copied all 128 bytes to the stack first (twice per map and unmap,
    /// once per lookup).
    @_transparent func inPlacePath(covering input: UInt64, count: UInt64) -> LeafPath? {
        let shift = UInt64(TableLevel.bitsPerLevel)
        let first = input >> shift
        if count == 0 || count >= UInt64(TableLevel.entriesPerTable) || first != (input &+ count &- 1) >> shift {
            return nil
        }
        return first == key ? path : first == otherKey ? otherPath : nil
    }
}

/// `changeType`'s per-leaf rewrite: entries of type `from` get the new type's bits.
struct TypeRewrite {
    let from: P2MType
    let attributes: Stage2Attributes
    @inline(__always) func apply(_ d: UInt64) -> UInt64? {
        let leaf = Stage2Descriptor(raw: d)
        return leaf.softwareBits == from.rawValue ? leaf.replacingAttributes(attributes).raw : nil
    }
}

/// How a domain's P2M is set up.
public struct P2MConfiguration: Equatable, Sendable {
    public var vmid: UInt16
    public var ipaBits: Int
    /// ID_AA64MMFR0_EL1.PARange on the board.
    public var paRange: PhysicalAddressRange
    /// ID_AA64MMFR1_EL1.VMIDBits on the board.
    public var vmidWidth: VMIDWidth
    /// Above this many pages in one commit, one whole-VMID invalidation replaces the
    /// per-range ones (Linux uses 512, MAX_TLBI_OPS, for the same trade-off).
    public var fullFlushThreshold: UInt64

    public init(vmid: UInt16, ipaBits: Int, paRange: PhysicalAddressRange, vmidWidth: VMIDWidth,
                fullFlushThreshold: UInt64 = 512) {
        self.vmid = vmid
        self.ipaBits = ipaBits
        self.paRange = paRange
        self.vmidWidth = vmidWidth
        self.fullFlushThreshold = fullFlushThreshold
    }
}

public enum P2MMapPolicy: Sendable, Equatable {
    /// Refuse (`alreadyMapped`) if any page of the range is mapped.
    case insertOnly
    /// Replace whatever is there, break-before-make.
    case replace
}

/// What `P2M.lookup` found.
public struct P2MMapping: Equatable, Sendable {
    /// The frame `gfn` itself maps to (inside a block: block base + offset).
    public var mfn: MFN
    public var type: P2MType
    /// The size of the leaf that maps it: 4 KiB page, 2 MiB or 1 GiB block.
    public var order: PageOrder
    public init(mfn: MFN, type: P2MType, order: PageOrder) {
        self.mfn = mfn
        self.type = type
        self.order = order
    }
}

public enum P2MRelinquishProgress: Equatable, Sendable {
    case more
    case done
}
