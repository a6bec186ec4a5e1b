/// Who owns a frame (pKVM's `pkvm_component_id`, Xen's `page_get_owner`).
public enum PageOwner: Equatable, Sendable {
    /// Not part of any component: only frames outside every owner's pool.
    case none
    /// The host (pKVM's host / Xen's hardware domain acting through hypercalls).
    case host
    /// The hypervisor itself, including the xenheap before it is shared.
    case hypervisor
    case guest(DomainID)
}

/// The host's view of a frame, pKVM's `enum pkvm_page_state`.
public enum HostPageState: UInt8, Equatable, Sendable, CaseIterable {
    /// The host owns the frame and nobody else may touch it.
    case owned = 0
    /// The host owns the frame and lent it to a borrower (IOMMU, hypervisor, guest).
    case sharedOwned = 1
    /// Someone else owns the frame and lent it to the host.
    case sharedBorrowed = 2
    /// The host has no access (donated, or owned elsewhere and not lent).
    case noPage = 3
}

/// Who borrows a frame the host shares (the completer of a pKVM share).
public enum Borrower: Equatable, Sendable {
    case none
    /// Device DMA through the IOMMU (seed 004's `PKVM_ID_IOMMU`); counted by the
    /// frame's DMA share count.
    case iommu
    case hypervisor
    case guest(DomainID)
}
