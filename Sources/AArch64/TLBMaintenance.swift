/// CPU TLB maintenance for stage-2 (and stage-1 EL2) translations.
///
/// What a board implementation must do (Arm ARM D8.13 "TLB maintenance",
/// "Ordering and completion of TLB maintenance instructions"):
/// - `invalidateStage2` and `invalidateVMID` start with `DSB ISHST`, so the
///   descriptor writes that made the old entries invalid are visible to every
///   walker before the TLBI is (the engine issues no barrier of its own there),
///   then issue the broadcast TLBIs (`TLBI IPAS2E1IS` per page or `TLBI RIPAS2E1IS`
///   with FEAT_TLBIRANGE, then `TLBI VMALLE1IS` because stage-1 entries combined
///   with stage 2 are tagged by VMID, not IPA; `TLBI VMALLS12E1IS` for a whole
///   VMID). They act on VTTBR_EL2.VMID, so the implementation writes `vttbr`
///   (the domain's own value: its VMID *and* its root, never a zero base a
///   speculative walk could follow) to VTTBR_EL2 while they run.
/// - `synchronize` is `DSB ISH` (then `ISB` for the local CPU): it returns only
///   when every TLBI issued before it has completed on every PE.
/// - `publishNewEntries` is `DSB ISHST`: a commit that only made invalid entries
///   valid owes no TLBI, so no barrier would otherwise order those descriptor
///   writes before the guest's next walk or a coherent SMMU's (Arm ARM
///   "Ordering of translation table updates": a DSB is needed before a walker
///   is guaranteed to observe a new entry). Once per commit, not per entry.
/// Host: a recording fake.
public protocol TLBMaintenance {
    /// Invalidate stage-2 (and combined stage-1+2) entries for `pages` 4 KiB pages
    /// starting at `ipa`, for the VMID of `vttbr` (the domain's VTTBR_EL2 value).
    /// Implementations choose per-page, range or whole-VMID invalidation.
    mutating func invalidateStage2(_ vttbr: VTTBR, ipa: IPA, pages: UInt64)
    /// Invalidate everything tagged with the VMID of `vttbr` (VMALLS12E1IS).
    mutating func invalidateVMID(_ vttbr: VTTBR)
    /// Wait for completion of every invalidation issued so far (DSB ISH).
    mutating func synchronize()
    /// Make descriptor writes that owe no invalidation (invalid → valid)
    /// visible to every table walker (DSB ISHST).
    mutating func publishNewEntries()
}
