/// Whether grant mappings into a domain also need a 1:1 IOMMU mapping of the
/// granted frame (seed 002, Xen's `gnttab_need_iommu_mapping`).
///
/// A direct-mapped domain (dom0 on Arm, GFN == MFN for its RAM) programs
/// devices with machine addresses. A frame another domain grants it sits at
/// some unrelated GFN in its P2M, so a device it drives can only reach the
/// frame if the IOMMU also maps it at its machine address. That is needed
/// whenever the IOMMU translates for the domain; whether the IOMMU walks the
/// P2M itself or a separate table does not matter. Xen once tied the answer
/// to `need_iommu_pt_sync` (separate tables only), which is always false on
/// Arm where the P2M is shared, and PV network DMA from dom0 faulted in the
/// SMMU ("Unhandled context fault"). The reviewer's conclusion: direct-mapped
/// **and** IOMMU enabled for the domain, nothing else.
public enum GrantIOMMUPolicy {
    public static func needsIOMMUMapping(directMapped: Bool, iommuEnabled: Bool) -> Bool {
        directMapped && iommuEnabled
    }
}
