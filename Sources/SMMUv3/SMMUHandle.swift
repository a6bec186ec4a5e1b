import AArch64
import Translation

/// One SMMU shared by the P2M hooks that need it: every domain's IOMMU
/// invalidator and stage-1 mirror reach the same command queue through this
/// reference (a P2M owns its hooks by value, so a driver shared between
/// several of them has to live behind one reference; IHI 0070 has one
/// command queue per SMMU).
public final class SMMUHandle<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance> {
    public var smmu: SMMU<R, M, C>
    /// The first failed invalidation not yet taken by the owner, for the
    /// hypervisor's log and its decision to stop the affected devices. The P2M
    /// learns of each failure through `IOMMUInvalidator.synchronize` throwing,
    /// and releases nothing that the failed invalidation covered (seed 000).
    public private(set) var invalidationFailure: CommandQueueError?
    /// An invalidation that could not be queued since the last `synchronize`:
    /// that wait cannot confirm it, whatever CMD_SYNC says.
    var unqueued: CommandQueueError?
    /// Invalidations that needed the fallback (a rejected TLBI replaced by a
    /// whole-ASID/VMID one, or a second wait for a slow CMD_SYNC).
    public private(set) var recoveredInvalidations = 0

    public init(_ smmu: consuming SMMU<R, M, C>) { self.smmu = smmu }

    public func takeInvalidationFailure() -> CommandQueueError? {
        defer { invalidationFailure = nil }
        return invalidationFailure
    }

    func record(_ error: CommandQueueError) {
        if invalidationFailure == nil { invalidationFailure = error }
    }

    func recordUnqueued(_ error: CommandQueueError) {
        record(error)
        if unqueued == nil { unqueued = error }
    }

    /// Queue the TLBIs for a page run (no CMD_SYNC yet).
    @usableFromInline func queue(_ scope: InvalidationScope, first: PageNumber, pages: UInt64) {
        do { try smmu.queueInvalidation(scope, first: first, pages: pages) } catch { recordUnqueued(error) }
    }

    /// Queue the one command invalidating all of `scope`; nil: everything
    /// non-secure and not EL2 (TLBI_NSNH_ALL), for a fallback with no scope.
    @usableFromInline func queueAll(_ scope: InvalidationScope?) {
        do { try smmu.push(scope?.invalidateAllCommand ?? .tlbiNSNHAll()) } catch { recordUnqueued(error) }
    }

    /// End the batch with its one CMD_SYNC and wait. If a TLBI was rejected
    /// (the rest completed), invalidate the whole `fallback` scope and sync
    /// again; if the sync is slow, wait one more poll budget. Only then give up:
    /// record the failure and throw, so the P2M keeps what the invalidations
    /// were protecting. A TLBI that could not be queued at all fails the wait
    /// too (its CMD_SYNC proves nothing about it).
    @usableFromInline func synchronize(fallback: InvalidationScope?) throws(IOMMUSyncError) {
        defer { unqueued = nil }
        do throws(CommandQueueError) {
            do {
                try smmu.sync()
            } catch .commandRejected {
                recoveredInvalidations += 1
                queueAll(fallback)
                try smmu.sync()
            } catch .syncTimeout {
                recoveredInvalidations += 1
                try smmu.sync()
            }
        } catch {
            record(error)
            throw Self.syncError(error)
        }
        if let unqueued { throw Self.syncError(unqueued) }
    }

    static func syncError(_ error: CommandQueueError) -> IOMMUSyncError {
        switch error {
        case .noSpace: .invalidationNotIssued
        case .syncTimeout: .completionTimeout
        case .commandRejected: .invalidationRejected
        }
    }
}
