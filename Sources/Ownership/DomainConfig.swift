/// What the ownership layer must know about a guest domain.
public struct DomainConfig: Equatable, Sendable {
    public var id: DomainID
    /// GFN == MFN for the domain's own RAM (Xen's `is_domain_direct_mapped`).
    public var directMapped: Bool
    /// The IOMMU translates DMA of devices assigned to the domain
    /// (Xen's `is_iommu_enabled`, XEN_DOMCTL_CDF_iommu).
    public var iommuEnabled: Bool
    /// The IOMMU walks the domain's P2M (Xen on Arm always; SMMU stage 2)
    /// rather than a mirror of it. Recorded because drivers need it; the grant
    /// policy deliberately ignores it (seed 002).
    public var sharesP2MWithIOMMU: Bool
    /// Every device that can reach the domain's memory snoops the CPU caches
    /// (seed 003's `enforce_cache_coherency`). When false, frames are cleaned
    /// and invalidated before the domain can first reach them and again after.
    public var enforcesCacheCoherency: Bool

    public init(id: DomainID, directMapped: Bool = false, iommuEnabled: Bool = false,
                sharesP2MWithIOMMU: Bool = true, enforcesCacheCoherency: Bool = true) {
        self.id = id
        self.directMapped = directMapped
        self.iommuEnabled = iommuEnabled
        self.sharesP2MWithIOMMU = sharesP2MWithIOMMU
        self.enforcesCacheCoherency = enforcesCacheCoherency
    }

    /// Seed 002's predicate for this domain.
    public var needsIOMMUMapping: Bool {
        GrantIOMMUPolicy.needsIOMMUMapping(directMapped: directMapped, iommuEnabled: iommuEnabled)
    }
}
