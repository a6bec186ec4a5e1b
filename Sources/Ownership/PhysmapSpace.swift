import AArch64

/// XENMEM_add_to_physmap's spaces (Xen's XENMAPSPACE_*).
public enum PhysmapSpace: Equatable, Sendable {
    /// The domain's shared_info page; `idx` must be 0.
    case sharedInfo
    /// Grant-table frame `index`, of the status frames when `status`.
    case grantTable(index: Int, status: Bool)
    /// Move the domain's RAM frame at GFN `idx` to the new GFN.
    case gmfn
    /// Move `size` frames from GFN `idx` on, with one deferred flush per chunk.
    case gmfnRange(size: UInt64)
    /// Map the RAM frame at GFN `idx` of another domain (a privileged mapper).
    case gmfnForeign(DomainID)
    /// Map device memory at machine frame `idx`.
    case devMMIO
}

/// How far an add_to_physmap got: everything, or a hypercall continuation
/// after `done` frames (the caller re-issues with `idx`, `gfn` advanced and
/// the size reduced by `done`, as Xen's `start + done` return does).
public enum PhysmapProgress: Equatable, Sendable {
    case complete
    case continuation(done: UInt64)
}
