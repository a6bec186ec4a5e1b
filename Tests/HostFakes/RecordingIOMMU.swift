import AArch64
import Translation

/// Something that wants to see IOMMU invalidations as they are issued and
/// whether each wait completed (the translation tests' break-before-make
/// checker, for an IOMMU that walks the P2M itself).
public protocol IOMMUWatcher: AnyObject {
    func iommuInvalidate(_ page: UInt64, pages: UInt64)
    func iommuInvalidateAll()
    func iommuSynchronize(completed: Bool)
}

/// An IOMMU behind a P2M that records its invalidations into the shared log
/// and fails the next `log.failingIOMMUSyncs` waits, as a lost CMD_SYNC would.
public struct RecordingIOMMU: IOMMUInvalidator {
    public let log: EventLog
    public let watcher: (any IOMMUWatcher)?
    public init(log: EventLog, watcher: (any IOMMUWatcher)? = nil) {
        self.log = log
        self.watcher = watcher
    }

    public mutating func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64) {
        log.events.append(.iommuRange(vmid: vmid, page: gfn.raw, pages: count))
        watcher?.iommuInvalidate(gfn.raw, pages: count)
    }
    public mutating func invalidateAll(vmid: UInt16) {
        log.events.append(.iommuAll(vmid))
        watcher?.iommuInvalidateAll()
    }
    public mutating func synchronize() throws(IOMMUSyncError) {
        log.events.append(.iommuSync)
        if log.failingIOMMUSyncs > 0 {
            log.failingIOMMUSyncs -= 1
            watcher?.iommuSynchronize(completed: false)
            throw .completionTimeout
        }
        watcher?.iommuSynchronize(completed: true)
    }
}
