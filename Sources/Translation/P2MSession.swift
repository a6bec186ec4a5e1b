import AArch64

/// One P2M operation in progress: the P2M and the caller's batch, moved together so
/// the engine's reports reach the pool, the hooks and the batch without copies.
/// It coalesces the engine's per-leaf reports into runs (consecutive GFNs and MFNs
/// of one type) before they reach the listener and the observer.
struct P2MSession<Memory: PhysicalMemory, Pool: TablePageSource, TLB: TLBMaintenance,
                  IOMMU: IOMMUInvalidator, Listener: P2MEntryListener, Observer: P2MChangeObserver,
                  R: PageReferenceReleaser>: ~Copyable, TableEditSink {
    var p2m: P2M<Memory, Pool, TLB, IOMMU, Listener, Observer>
    var batch: FlushBatch<R>

    // The pending removal run.
    var removedGFN: UInt64 = 0
    var removedMFN: UInt64 = 0
    var removedCount: UInt64 = 0
    /// The run's descriptor type bits, compared raw so the per-page path decodes nothing.
    var removedTypeBits: UInt64 = 0
    // The pending type-change run, for the observer.
    var typeChange: (from: P2MType, to: P2MType, access: P2MAccess)? = nil
    var changedGFN: UInt64 = 0
    var changedMFN: UInt64 = 0
    var changedCount: UInt64 = 0

    init(p2m: consuming P2M<Memory, Pool, TLB, IOMMU, Listener, Observer>, batch: consuming FlushBatch<R>) {
        self.p2m = p2m
        self.batch = batch
    }

    @inline(__always) static func type(of d: UInt64) -> P2MType {
        guard let type = P2MType(softwareBits: Stage2Descriptor(raw: d).softwareBits) else {
            preconditionFailure("P2M leaf without a p2m type")
        }
        return type
    }

    @inline(__always) mutating func invalidateLater(_ input: UInt64, count: UInt64) {
        batch.recordInvalidation(input, count: count)
    }

    mutating func invalidateNow(_ input: UInt64, count: UInt64) {
        if !p2m.invalidateNow(input, count: count) {
            // The IOMMU did not confirm: keep the range owed, so the commit retries
            // it and holds every release until the IOMMU has completed it.
            batch.recordInvalidation(input, count: count)
        }
        batch.removedMappings = true
    }

    @inline(__always)
    mutating func leafRemoved(_ input: UInt64, output: MFN, count: UInt64, descriptor: UInt64) {
        let typeBits = descriptor & Stage2Descriptor.softwareBitsMask
        if input == removedGFN &+ removedCount && output.raw == removedMFN &+ removedCount
            && typeBits == removedTypeBits && removedCount != 0 {
            removedCount &+= count
            return
        }
        flushRemoved()
        removedGFN = input
        removedMFN = output.raw
        removedCount = count
        removedTypeBits = typeBits
    }

    mutating func flushRemoved() {
        guard removedCount != 0 else { return }
        let type = Self.type(of: removedTypeBits)
        p2m.listener.entryRemoved(GFN(raw: removedGFN), mfn: MFN(raw: removedMFN), count: removedCount,
                                  type: type, batch: &batch)
        removedCount = 0
    }

    mutating func leafRewritten(_ input: UInt64, count: UInt64, old: UInt64, new: UInt64) {
        let mfn = VMSADescriptor.outputFrame(old)
        if changedCount != 0 && input == changedGFN &+ changedCount && mfn == changedMFN &+ changedCount {
            changedCount &+= count
            return
        }
        flushChanged()
        changedGFN = input
        changedMFN = mfn
        changedCount = count
    }

    mutating func flushChanged() {
        guard changedCount != 0, let change = typeChange else { return }
        p2m.observer.apply(.typeChanged(GFN(raw: changedGFN), MFN(raw: changedMFN), count: changedCount,
                                        from: change.from, to: change.to, access: change.access))
        changedCount = 0
    }

    mutating func allocateTablePage() -> MFN {
        guard let frame = p2m.pool.allocateTablePage() else {
            preconditionFailure("table pool shrank between prepare and commit")
        }
        p2m.tablePagesInUse += 1
        return frame
    }

    var availableTablePages: Int { p2m.pool.availableTablePages }

    mutating func tableUnlinked(_ frame: MFN) {
        p2m.tablePagesInUse -= 1
        batch.recordUnlinkedTable(frame, memory: p2m.memory)
    }

    /// Deliver the last runs.
    mutating func finish() {
        flushRemoved()
        flushChanged()
    }
}
