import AArch64
import Translation

/// Something that wants to see CPU TLB maintenance as it is issued (the
/// translation tests' break-before-make checker).
public protocol TLBWatcher: AnyObject {
    func invalidate(_ page: UInt64, pages: UInt64)
    func invalidateAll()
    func synchronize()
}

/// CPU TLB maintenance that issues nothing: it records each operation (and the
/// VTTBR_EL2 value it would run under) into an optional shared log and shows it
/// to an optional watcher.
public struct RecordingTLB: TLBMaintenance {
    public let log: EventLog?
    public let watcher: (any TLBWatcher)?

    public init(log: EventLog? = nil, watcher: (any TLBWatcher)? = nil) {
        self.log = log
        self.watcher = watcher
    }
    public mutating func invalidateStage2(_ vttbr: VTTBR, ipa: IPA, pages: UInt64) {
        log?.events.append(.tlbiRange(vmid: vttbr.vmid, page: ipa.frame.raw, pages: pages))
        log?.maintenanceVTTBRs.append(vttbr)
        watcher?.invalidate(ipa.frame.raw, pages: pages)
    }
    public mutating func invalidateVMID(_ vttbr: VTTBR) {
        log?.events.append(.tlbiVMID(vttbr.vmid))
        log?.maintenanceVTTBRs.append(vttbr)
        watcher?.invalidateAll()
    }
    public mutating func synchronize() {
        log?.events.append(.tlbSync)
        watcher?.synchronize()
    }
    public mutating func publishNewEntries() {
        log?.events.append(.tlbPublish)
    }
}
