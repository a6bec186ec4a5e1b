import AArch64
import Translation

/// The stage-1 table an SMMU without stage 2 translates a domain's DMA with:
/// IOVA = IPA → PA, kept equal to the DMA-able part of the domain's P2M by
/// following the P2M's change stream. Only RAM, grant, foreign and IOMMU-only
/// mappings are mirrored, with their read-only-ness (`P2MType.dmaWritable`);
/// MMIO is not, so a device cannot reach another device's registers, with
/// one exception: the MSI doorbell pages the mirror was made with, where the
/// P2M maps them as MMIO. An MSI is by definition a device's DMA write to the
/// interrupt controller's doorbell (GICv2m MSI_SETSPI_NS, GICv3
/// GITS_TRANSLATER), so a DMA domain without them has no MSIs; Linux's
/// arm-smmu-v3 driver maps the doorbell into every DMA domain for the same
/// reason (its software MSI region). Only those pages are mapped, as Device
/// memory, and nothing else of the controller or of any other device.
///
/// Pass the same mirror as the P2M's `observer` and its `iommu` hook: as the
/// observer it edits the stage-1 table (prepare reserves table pages, apply
/// cannot fail); as the invalidator it turns the P2M's flush into TLBI_NH_VA
/// ranges on the mirror's ASID plus the batch's one CMD_SYNC, and frees the
/// mirror's unlinked table pages only after that sync completed (seed 000).
public final class Stage1Mirror<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance, Pool: TablePageSource>:
    P2MChangeObserver, IOMMUInvalidator
{
    public let handle: SMMUHandle<R, M, C>
    public let table: TranslationTable<Stage1Descriptor>
    /// The CD (ASID, TTB0 = `table.root`) to attach streams to.
    public let domain: Stage1Domain
    public var pool: Pool
    /// Table pages in the tree, root included.
    public private(set) var tablePagesInUse: Int
    /// P2M mappings not mirrored because their output lies beyond the SMMU's
    /// output size (the device then faults there instead of reaching them).
    public private(set) var refusedMappings = 0
    /// Entries a break-before-make broke and left invalid because the SMMU did
    /// not confirm the invalidation (`invalidateNow`): devices fault there.
    public internal(set) var entriesLeftInvalid = 0
    /// The MSI doorbell pages (output frames) devices may write
    /// where the P2M maps them as MMIO the domain can read and write.
    public let msiDoorbells: [MFN]

    /// Ranges (input frames) whose old stage-1 translations may be cached, and
    /// unlinked table pages waiting for the next completed invalidation.
    var pending = PendingInvalidation()
    public var unlinkedTablePages: Int { pending.unlinkedTablePages }

    /// Build an empty mirror of `inputBits` IPA bits (the P2M's), with its CD.
    /// (A static factory: Embedded Swift allows no generic initialisers in classes.)
    public static func make<A: ContiguousFrameAllocator>(
        handle: SMMUHandle<R, M, C>, asid: UInt16, inputBits: Int, pool: Pool, msiDoorbells: [MFN] = [],
        allocator: inout A
    ) throws(Stage1MirrorError) -> Stage1Mirror {
        let geometry: TableGeometry
        do {
            geometry = try TableGeometry(stage1InputBits: inputBits, outputBits: handle.smmu.features.outputAddressBits)
        } catch { throw .geometry(error) }
        var pool = pool
        let root: MFN
        do { root = try TranslationTable<Stage1Descriptor>.allocateRoot(geometry, pool: &pool) } catch {
            throw .tablePool(error)
        }
        if !handle.smmu.coherent {
            handle.smmu.cache.clean(root.address, bytes: PageSize.bytes4K)
            handle.smmu.cache.synchronize()
        }
        let domain: Stage1Domain
        do {
            domain = try handle.smmu.makeStage1Domain(asid: asid, root: root, inputBits: inputBits,
                                                      mair: MAIR.standard.raw, allocator: &allocator)
        } catch {
            pool.freeTablePage(root)
            throw .domain(error)
        }
        return Stage1Mirror(handle: handle, table: TranslationTable(geometry: geometry, root: root), domain: domain,
                            pool: pool, msiDoorbells: msiDoorbells)
    }

    init(handle: SMMUHandle<R, M, C>, table: TranslationTable<Stage1Descriptor>, domain: Stage1Domain, pool: Pool,
         msiDoorbells: [MFN]) {
        self.handle = handle
        self.table = table
        self.domain = domain
        self.pool = pool
        self.msiDoorbells = msiDoorbells
        self.tablePagesInUse = 1
    }

    /// The leaf attributes a DMA-able P2M type gets: Normal write-back (MAIR
    /// index 0 of `MAIR.standard`), inner shareable, ASID-tagged, never
    /// executable; AP grants EL0 because device traffic is unprivileged.
    public static func attributes(writable: Bool) -> Stage1Attributes {
        Stage1Attributes(attributeIndex: MAIR.indexNormalWriteBack, access: writable ? .readWrite : .readOnly,
                         shareability: .inner, notGlobal: true, privilegedExecuteNever: true,
                         unprivilegedExecuteNever: true)
    }

    /// An MSI doorbell page: Device-nGnRE (a register, no gathering or
    /// reordering of the writes that raise interrupts), read/write because a
    /// stage-1 AP cannot express write-only (SMMUv3 5.4 takes AP from the
    /// Arm ARM's stage-1 encoding), never executable. SH is ignored for
    /// Device memory, which is always Outer Shareable (Arm ARM); the
    /// descriptor says Outer Shareable to match.
    public static var doorbellAttributes: Stage1Attributes {
        Stage1Attributes(attributeIndex: MAIR.indexDeviceNGnRE, access: .readWrite, shareability: .outer,
                         notGlobal: true, privilegedExecuteNever: true, unprivilegedExecuteNever: true)
    }

    /// Whether a P2M entry of `type` under `access` may carry an MSI doorbell
    /// into the mirror: MMIO the domain itself can read and write (the
    /// mirror must not give devices more than the domain has).
    static func carriesDoorbell(_ type: P2MType, access: P2MAccess) -> Bool {
        type.dmaWritable == nil && type != .invalid && access.contains(.read) && access.contains(.write)
    }

    /// How many doorbells lie in output frames `mfn ..< mfn + count`.
    func doorbellCount(in mfn: MFN, count: UInt64) -> Int {
        var n = 0
        for frame in msiDoorbells where frame.raw >= mfn.raw && frame.raw - mfn.raw < count { n += 1 }
        return n
    }

    /// What the mirror holds for `iova`: output frame and whether devices may write.
    public func lookup(_ iova: IOVA) -> (frame: MFN, writable: Bool)? {
        guard let leaf = table.lookup(iova.raw >> PageSize.shift4K, memory: handle.smmu.memory) else { return nil }
        return (leaf.output, Stage1Descriptor(raw: leaf.descriptor).access == .readWrite)
    }

    // MARK: P2MChangeObserver

    /// The stage-1 leaf attributes for a P2M entry of `type` under `access`, or
    /// nil when devices must not reach it (MMIO, or no read permission: SMMU
    /// stage-1 descriptors cannot express write-only).
    public static func mirroredAttributes(_ type: P2MType, access: P2MAccess) -> Stage1Attributes? {
        guard let writable = type.dmaWritable, access.contains(.read) else { return nil }
        return attributes(writable: writable && access.contains(.write))
    }

    /// Reserve exactly what `apply` will need for `change`:
    /// - a map: the mirror's own plan for the same GFNs, frames and attributes,
    ///   so blocks where the P2M has blocks (a 1 GiB map needs no table page);
    ///   a map the mirror will not hold (MMIO, unreadable, beyond the SMMU's
    ///   output size) needs what removing the range needs, plus a path for
    ///   each MSI doorbell page an MMIO range carries;
    /// - an unmap: the pages to split blocks the range covers only in part;
    /// - a type change: its runs' frames are not known before the P2M walks
    ///   them, so the worst case over the range (a page-granular map); a change
    ///   to a type the mirror does not hold is a removal.
    public func prepare(_ change: P2MPlannedChange) -> Bool {
        let memory = handle.smmu.memory
        let available = pool.availableTablePages
        switch change {
        case .map(let gfn, let mfn, let count, let type, let access, _):
            if let attributes = Self.mirroredAttributes(type, access: access) {
                do {
                    _ = try table.prepareMap(gfn.raw, to: mfn, count: count, attributes: attributes, replace: true,
                                             memory: memory, availablePages: available)
                    return true
                } catch .outputBeyondLimit {
                    // `apply` leaves the range unmapped: reserve that below.
                } catch {
                    return false
                }
            }
            if Self.carriesDoorbell(type, access: access) {
                return canRemove(gfn.raw, count: count, thenMapPages: doorbellCount(in: mfn, count: count))
            }
            return canRemove(gfn.raw, count: count)
        case .unmap(let gfn, let count):
            return canRemove(gfn.raw, count: count)
        case .changeType(let gfn, let count, _, let to, let access):
            guard let attributes = Self.mirroredAttributes(to, access: access) else {
                // The runs' frames are not known yet: any doorbell may be among them.
                let doorbells = Self.carriesDoorbell(to, access: access) ? msiDoorbells.count : 0
                return canRemove(gfn.raw, count: count, thenMapPages: doorbells)
            }
            // MFN 1 is aligned to nothing larger than a page: the page-granular worst case.
            do {
                _ = try table.prepareMap(gfn.raw, to: MFN(raw: 1), count: count, attributes: attributes, replace: true,
                                         memory: memory, availablePages: available)
                return true
            } catch .outputBeyondLimit {
                return canRemove(gfn.raw, count: count)
            } catch {
                return false
            }
        }
    }

    /// Whether `remove(first, count:)`, followed by mapping `pages` single
    /// pages (doorbells) inside the removed range, has the table pages it
    /// needs. A page mapped into an emptied range may need a fresh table at
    /// every level below the root, whatever the range held before.
    func canRemove(_ first: UInt64, count: UInt64, thenMapPages pages: Int = 0) -> Bool {
        let limit = table.geometry.inputFrameLimit
        guard first < limit, count != 0 else { return true }
        let perPage = Self.leafLevel - table.geometry.startLevel
        do {
            let plan = try table.prepareUnmap(first, count: min(count, limit - first), memory: handle.smmu.memory,
                                              availablePages: pool.availableTablePages)
            return plan.tablePagesNeeded + pages * perPage <= pool.availableTablePages
        } catch {
            return false
        }
    }

    /// The level of a 4 KiB page descriptor (4 KiB granule, Arm ARM "Translation tables and the translation process").
    static var leafLevel: Int { 3 }

    public func apply(_ change: P2MChange) { apply(change, commit: Stage1MirrorOwnCommit<R, M, C, Pool>.self) }

    /// `apply`, committing through `commit` (see `Stage1MirrorCommit`).
    public func apply<Commit: Stage1MirrorCommit>(_ change: P2MChange, commit: Commit.Type)
    where Commit.Memory == M, Commit.Sink == MirrorSink<R, M, C, Pool> {
        switch change {
        case .mapped(let gfn, let mfn, let count, let type, let access):
            mirror(gfn, mfn, count: count, attributes: Self.mirroredAttributes(type, access: access),
                   doorbells: Self.carriesDoorbell(type, access: access), commit)
        case .unmapped(let gfn, let count):
            remove(gfn.raw, count: count, commit)
        case .typeChanged(let gfn, let mfn, let count, _, let to, let access):
            mirror(gfn, mfn, count: count, attributes: Self.mirroredAttributes(to, access: access),
                   doorbells: Self.carriesDoorbell(to, access: access), commit)
        }
    }

    func mirror<Commit: Stage1MirrorCommit>(
        _ gfn: GFN, _ mfn: MFN, count: UInt64, attributes: Stage1Attributes?, doorbells: Bool, _ commit: Commit.Type
    ) where Commit.Memory == M, Commit.Sink == MirrorSink<R, M, C, Pool> {
        guard let attributes else {
            remove(gfn.raw, count: count, commit)
            if doorbells { mapDoorbells(gfn, mfn, count: count, commit) }
            return
        }
        do {
            try edit(table.prepareMap(gfn.raw, to: mfn, count: count, attributes: attributes, replace: true,
                                      memory: handle.smmu.memory, availablePages: pool.availableTablePages), commit)
        } catch {
            // Only an output the SMMU cannot address gets here (prepare reserved
            // the pages): leave the range unmapped, so DMA faults instead.
            refusedMappings += 1
            remove(gfn.raw, count: count, commit)
        }
    }

    /// Map each doorbell among output frames `mfn ..< mfn + count` at its
    /// input frame, into a range `remove` just emptied.
    func mapDoorbells<Commit: Stage1MirrorCommit>(_ gfn: GFN, _ mfn: MFN, count: UInt64, _ commit: Commit.Type)
    where Commit.Memory == M, Commit.Sink == MirrorSink<R, M, C, Pool> {
        let limit = table.geometry.inputFrameLimit
        for frame in msiDoorbells where frame.raw >= mfn.raw && frame.raw - mfn.raw < count {
            let input = gfn.raw + (frame.raw - mfn.raw)
            guard input < limit else { continue }
            do {
                try edit(table.prepareMap(input, to: frame, count: 1, attributes: Self.doorbellAttributes,
                                          replace: true, memory: handle.smmu.memory,
                                          availablePages: pool.availableTablePages), commit)
            } catch {
                // Beyond the SMMU's output size (prepare reserved the pages):
                // that doorbell stays unreachable, as without this exception.
                refusedMappings += 1
            }
        }
    }

    func remove<Commit: Stage1MirrorCommit>(_ first: UInt64, count: UInt64, _ commit: Commit.Type)
    where Commit.Memory == M, Commit.Sink == MirrorSink<R, M, C, Pool> {
        let limit = table.geometry.inputFrameLimit
        guard first < limit, count != 0 else { return }
        let clipped = min(count, limit - first)
        do {
            try edit(table.prepareUnmap(first, count: clipped, memory: handle.smmu.memory,
                                        availablePages: pool.availableTablePages), commit)
        } catch {
            preconditionFailure("mirror unmap needs only pages that prepare reserved")
        }
    }

    // The phases of an edit: the prepare reads the tables through the SMMU's own
    // memory, as the P2M's prepare does (so the image has one copy of the read-only
    // walks), and so does the commit, which `Commit` runs with a `MirrorSink`.

    func edit<Commit: Stage1MirrorCommit>(_ plan: consuming MapPlan, _: Commit.Type)
    where Commit.Memory == M, Commit.Sink == MirrorSink<R, M, C, Pool> {
        let first = plan.input, end = plan.input + plan.count
        var sink = MirrorSink(mirror: self)
        Commit.commitMap(table.engine, plan, memory: handle.smmu.memory, sink: &sink)
        publishEdit(first, end)
    }

    func edit<Commit: Stage1MirrorCommit>(_ plan: consuming RangePlan, _: Commit.Type)
    where Commit.Memory == M, Commit.Sink == MirrorSink<R, M, C, Pool> {
        let first = plan.input, end = plan.input + plan.count
        var sink = MirrorSink(mirror: self)
        Commit.commitUnmap(table.engine, plan, memory: handle.smmu.memory, sink: &sink)
        publishEdit(first, end)
    }

    // A non-snooping SMMU reads the tables from PoC. An edit of input frames
    // [first, end) writes only descriptors that a walk of that range reads (the
    // entries covering it at each level, in the tables they link) and the
    // contents of table pages it allocates. Those pages are cleaned whole before
    // their link is stored (`cleanNewTable`); the rest after the commit
    // (`publishEdit`), and, for a break-before-make, before its invalidation.

    /// Clean table page `table`, which this edit allocated and filled, to PoC
    /// before the engine links it: the SMMU never walks from the link into stale
    /// contents.
    func cleanNewTable(_ table: MFN) {
        guard !handle.smmu.coherent else { return }
        handle.smmu.cache.clean(table.address, bytes: PageSize.bytes4K)
        handle.smmu.cache.synchronize()
    }

    /// Make an edit of input frames [first, end) visible to a non-snooping SMMU.
    func publishEdit(_ first: UInt64, _ end: UInt64) {
        guard !handle.smmu.coherent, first < end else { return }
        cleanWalk(table.root, level: table.geometry.startLevel, first, end)
        handle.smmu.cache.synchronize()
    }

    /// Clean the descriptors of `t` (a table at `level`) that cover input frames
    /// [first, end), then those of the tables they link, within the range.
    func cleanWalk(_ t: MFN, level: Int, _ first: UInt64, _ end: UInt64) {
        let span = TableLevel.pagesPerEntry(level)
        let mask = UInt64(TableLevel.entriesPerTable - 1)
        let firstIndex = (first / span) & mask, lastIndex = ((end - 1) / span) & mask
        handle.smmu.cache.clean(t.address.adding(firstIndex &* TableLevel.descriptorBytes),
                                bytes: (lastIndex - firstIndex + 1) &* TableLevel.descriptorBytes)
        guard level < Self.leafLevel else { return }
        var base = first / span * span
        for i in firstIndex...lastIndex {
            let d = Stage1Descriptor(raw: handle.smmu.memory.load64(t.address.adding(i &* TableLevel.descriptorBytes)))
            if d.isValid, d.isTable(atLevel: level) {
                cleanWalk(d.outputFrame, level: level + 1, max(first, base), min(end, base + span))
            }
            base += span
        }
    }

    // MARK: IOMMUInvalidator

    public func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64) { recordPending(gfn.raw, count: count) }

    public func invalidateAll(vmid: UInt16) { pending.recordInvalidationOfEverything() }

    /// Queue the TLBIs for every pending range (TLBI_NH_VA by IOVA = IPA on the
    /// mirror's ASID), one CMD_SYNC, and only then free unlinked table pages.
    /// If the SMMU does not confirm completion, the ranges stay pending (the
    /// next wait re-issues them) and the pages stay unlinked: the SMMU may
    /// still walk them (seed 000).
    public func synchronize() throws(IOMMUSyncError) {
        let scope = SMMUDomain.stage1(domain).invalidationScope
        if pending.ranges.coversEverything {
            handle.queueAll(scope)
        } else {
            for i in 0..<pending.ranges.count {
                let range = pending.ranges[i]
                handle.queue(scope, first: PageNumber(range.first), pages: range.frames)
            }
        }
        try handle.synchronize(fallback: scope)
        pending.rangesInvalidated()
        pending.releaseUnlinkedTables(to: &pool, memory: handle.smmu.memory)
    }

    /// Ranges or unlinked table pages wait for a completed CMD_SYNC: the P2M's
    /// commit must wait through `synchronize` even when its batch is empty.
    public var hasPendingInvalidations: Bool { !pending.isEmpty }

    func recordPending(_ first: UInt64, count: UInt64) {
        if count != 0 { pending.recordInvalidation(first, frames: count) }
    }

    /// Break-before-make inside an edit (a block split): invalidate now and wait.
    /// Returns false if the SMMU does not confirm: the range stays pending (the
    /// P2M's commit, whose own ranges cover every mirror edit, then fails and
    /// retries it with everything still held), and the engine leaves the broken
    /// entry invalid (`entriesLeftInvalid`): devices fault there, which is safe,
    /// where making it could let the SMMU keep translating through the old entry.
    /// `apply` cannot fail, so the mirror then maps less than the P2M until the
    /// range is mapped again.
    func invalidateNow(_ first: UInt64, count: UInt64) -> Bool {
        // The broken entry must reach PoC before the SMMU is told to walk again.
        publishEdit(first, first + count)
        handle.queue(SMMUDomain.stage1(domain).invalidationScope, first: PageNumber(first), pages: count)
        do {
            try handle.synchronize(fallback: SMMUDomain.stage1(domain).invalidationScope)
            return true
        } catch {
            recordPending(first, count: count)
            return false
        }
    }

    func unlink(_ frame: MFN, clearedEntry: Int = 0) {
        pending.recordUnlinkedTable(frame, entry: clearedEntry, emptied: pool.validEntryCount(frame) == 0,
                                    memory: handle.smmu.memory)
        tablePagesInUse -= 1
    }

    func takePage() -> MFN {
        guard let frame = pool.allocateTablePage() else { preconditionFailure("prepare reserved the mirror's pages") }
        tablePagesInUse += 1
        return frame
    }
}

/// How a `Stage1Mirror` runs a commit through the table engine with its
/// `MirrorSink`: with the sink's own type (`Stage1MirrorOwnCommit`), or through
/// a P2M's session type lent to it (`P2MGuestSession`, with the sink as the P2M
/// environment's `SessionGuest`), so that an image with both holds one copy of
/// the engine's commit half. Both commit by the engine's general walk from the
/// root (`commitMapFromRoot`), so they edit the same entries the same way.
public protocol Stage1MirrorCommit {
    associatedtype Memory: PhysicalMemory
    associatedtype Sink: TableEditSink
    static func commitMap(_ engine: TableEngine, _ plan: consuming MapPlan, memory: Memory, sink: inout Sink)
    static func commitUnmap(_ engine: TableEngine, _ plan: consuming RangePlan, memory: Memory, sink: inout Sink)
}

/// The mirror's commits with its own sink type: each engine function they reach
/// is an instantiation of its own.
public enum Stage1MirrorOwnCommit<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance, Pool: TablePageSource>:
    Stage1MirrorCommit
{
    public static func commitMap(
        _ engine: TableEngine, _ plan: consuming MapPlan, memory: M, sink: inout MirrorSink<R, M, C, Pool>
    ) {
        engine.commitMapFromRoot(plan, memory: memory, sink: &sink)
    }
    public static func commitUnmap(
        _ engine: TableEngine, _ plan: consuming RangePlan, memory: M, sink: inout MirrorSink<R, M, C, Pool>
    ) {
        engine.commitUnmapFromRoot(plan, memory: memory, sink: &sink)
    }
}

/// What the table engine reports while editing the mirror.
public struct MirrorSink<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance, Pool: TablePageSource>:
    P2MSessionGuest
{
    let mirror: Stage1Mirror<R, M, C, Pool>
    public mutating func invalidateLater(_ input: UInt64, count: UInt64) { mirror.recordPending(input, count: count) }
    public mutating func invalidateNow(_ input: UInt64, count: UInt64) -> Bool {
        mirror.invalidateNow(input, count: count)
    }
    public mutating func breakNotMade(_ input: UInt64, count: UInt64) { mirror.entriesLeftInvalid += 1 }
    public mutating func leafRemoved(_ input: UInt64, output: MFN, count: UInt64, descriptor: UInt64) {
        mirror.recordPending(input, count: count)
    }
    public mutating func allocateTablePage() -> MFN { mirror.takePage() }
    public var availableTablePages: Int { mirror.pool.availableTablePages }
    public func validEntries(_ table: MFN) -> Int { mirror.pool.validEntryCount(table) }
    public mutating func setValidEntries(_ table: MFN, _ count: Int) { mirror.pool.setValidEntryCount(table, count) }
    public mutating func tableUnlinked(_ frame: MFN, clearedEntry: Int) {
        mirror.unlink(frame, clearedEntry: clearedEntry)
    }
    public mutating func tableLinking(_ table: MFN) { mirror.cleanNewTable(table) }
    public mutating func leafRewritten(_ input: UInt64, count: UInt64, old: UInt64, new: UInt64) {
        mirror.recordPending(input, count: count)
    }
}

public enum Stage1MirrorError: Error, Equatable, Sendable {
    case geometry(Stage2ConfigurationError)
    case tablePool(TableEditError)
    case domain(AttachError)
}
