import AArch64
import Translation

/// An IOMMU behind a P2M that records its invalidations into the shared log
/// and fails the next `log.failingIOMMUSyncs` waits, as a lost CMD_SYNC would.
public struct RecordingIOMMU: IOMMUInvalidator {
    public let log: EventLog
    public init(log: EventLog) { self.log = log }

    public mutating func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64) {
        log.events.append(.iommuRange(vmid: vmid, page: gfn.raw, pages: count))
    }
    public mutating func invalidateAll(vmid: UInt16) { log.events.append(.iommuAll(vmid)) }
    public mutating func synchronize() throws(IOMMUSyncError) {
        log.events.append(.iommuSync)
        if log.failingIOMMUSyncs > 0 {
            log.failingIOMMUSyncs -= 1
            throw .completionTimeout
        }
    }
}
