import AArch64
import Platform
import Translation
import ArchC

// The board's implementations of the hardware protocols the portable modules
// are generic over. Each is a zero-sized struct, so specialisation inlines
// them into the callers: no witness tables, no existentials.

/// RAM through the EL2 identity map (PA = VA).
struct IdentityMemory: PhysicalMemory {
    @inline(__always)
    func load64(_ address: PhysAddr) -> UInt64 {
        UnsafePointer<UInt64>(bitPattern: UInt(address.raw))!.pointee
    }
    @inline(__always)
    func store64(_ address: PhysAddr, _ value: UInt64) {
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(address.raw))!.pointee = value
    }
    /// New table contents before the descriptor that links them (Arm ARM
    /// B2.3: a walker is another observer).
    @inline(__always)
    func orderStoresForWalkers() { arch_dmb_ishst() }
    /// `DC ZVA` a block at a time where DCZID_EL0 allows it and a block fits in
    /// the page (RAM is Normal memory in the EL2 map, as `DC ZVA` requires),
    /// memset's 16-byte stores otherwise. DCZID_EL0 is read here, on the CPU
    /// that zeroes: nothing makes every CPU report the same block size (Linux
    /// takes the smallest as the safe one), and the read is one instruction a page.
    func zeroFrame(_ frame: MFN) {
        Self.zeroPage(frame.address.raw,
                      step: DataCacheZeroID(raw: arch_read_dczid_el0()).zeroingStep(forAligned: PageSize.bytes4K))
    }
    /// The 4 KiB page at `pa` zeroed by `DC ZVA` every `step` bytes, or by
    /// stores when `step` is nil (`P2MScenarios.checkZeroPage` runs both).
    static func zeroPage(_ pa: UInt64, step: UInt64?) {
        guard let step else {
            _ = memset(UnsafeMutableRawPointer(bitPattern: UInt(pa)), 0, UInt(PageSize.bytes4K))
            return
        }
        var offset: UInt64 = 0
        repeat {
            arch_dc_zva(pa &+ offset)
            offset &+= step
        } while offset < PageSize.bytes4K
    }
}

/// A device's registers at a physical base address (Device-nGnRE in the EL2
/// map). Like Linux's writel, every write is preceded by `dsb st`, so the
/// device observes earlier normal-memory stores (queue entries, STEs) first.
struct MMIORegisterBlock: RegisterBlock {
    let base: UInt64
    func read32(_ offset: Int) -> UInt32 { arch_mmio_read32(base + UInt64(offset)) }
    func write32(_ offset: Int, _ value: UInt32) {
        arch_dsb_st()
        arch_mmio_write32(base + UInt64(offset), value)
    }
    func read64(_ offset: Int) -> UInt64 { arch_mmio_read64(base + UInt64(offset)) }
    func write64(_ offset: Int, _ value: UInt64) {
        arch_dsb_st()
        arch_mmio_write64(base + UInt64(offset), value)
    }
}

/// Byte and halfword registers (an 8250-family console with `reg-io-width`
/// 1 or 2). Device memory: no `dsb st` needed, no normal-memory data to order.
extension MMIORegisterBlock: NarrowRegisterBlock {
    func read8(_ offset: Int) -> UInt8 { arch_mmio_read8(base + UInt64(offset)) }
    func write8(_ offset: Int, _ value: UInt8) { arch_mmio_write8(base + UInt64(offset), value) }
    func read16(_ offset: Int) -> UInt16 { arch_mmio_read16(base + UInt64(offset)) }
    func write16(_ offset: Int, _ value: UInt16) { arch_mmio_write16(base + UInt64(offset), value) }
}

/// Stage-2 TLB maintenance from EL2 (Arm ARM D8.13). TLBI by IPA applies to
/// the VMID currently in VTTBR_EL2, so the target domain's VTTBR_EL2 value (its
/// VMID with its own root: a walk begun while it is loaded finds real tables,
/// not a table at PA 0) is switched in around the operations and the previous
/// VTTBR_EL2 restored.
///
/// Per page (`TLBI IPAS2E1IS`) up to `perPageLimit` pages; range operations
/// (`TLBI RIPAS2E1IS`) where FEAT_TLBIRANGE exists; one `TLBI VMALLS12E1IS`
/// above the limit. Every call starts with `DSB ISHST`, so the table writes
/// that made the invalidation necessary are visible to the walkers first.
struct BoardTLB: TLBMaintenance {
    static let perPageLimit: UInt64 = 64

    let hasRangeInvalidation: Bool

    init() {
        hasRangeInvalidation = CPUIDRegisters.read().hasTLBIRange
    }

    @_transparent
    mutating func invalidateStage2(_ vttbr: VTTBR, ipa: IPA, pages: UInt64) {
        arch_dsb_ishst()
        let saved = switchVTTBR(to: vttbr)
        if hasRangeInvalidation, TLBIOperand.forEachOperation(ipa.frame, pages: pages, { operation in
            switch operation {
            case .page(let operand): arch_tlbi_ipas2e1is_operand(operand)
            case .range(let operand): arch_tlbi_ripas2e1is(operand)
            }
        }) {
            // done by range
        } else if pages > Self.perPageLimit {
            arch_tlbi_vmalls12e1is()
            restoreVTTBR(saved)
            return
        } else {
            var page: UInt64 = 0
            while page < pages {
                arch_tlbi_ipas2e1is(ipa.raw &+ (page << PageSize.shift4K))
                page += 1
            }
        }
        // Combined stage-1+2 entries may hold the old IPA->PA result: after
        // invalidating by IPA, drop this VMID's stage-1 entries too.
        arch_dsb_ish()
        arch_tlbi_vmalle1is()
        restoreVTTBR(saved)
    }

    @_transparent
    mutating func invalidateVMID(_ vttbr: VTTBR) {
        arch_dsb_ishst()
        let saved = switchVTTBR(to: vttbr)
        arch_tlbi_vmalls12e1is()
        restoreVTTBR(saved)
    }

    mutating func synchronize() {
        arch_dsb_ish()
        arch_isb()
    }

    /// New valid entries and no TLBI: the descriptor writes complete before
    /// any later walk (this CPU's next guest entry, another PE, a coherent SMMU).
    mutating func publishNewEntries() { arch_dsb_ishst() }

    /// Loads `vttbr` for the TLBIs that follow; returns the VTTBR_EL2 to restore.
    private func switchVTTBR(to vttbr: VTTBR) -> UInt64 {
        let saved = arch_read_vttbr_el2()
        arch_write_vttbr_el2(vttbr.raw)
        arch_isb()
        return saved
    }

    /// The TLBIs complete, then the previous VTTBR_EL2 is back.
    private func restoreVTTBR(_ saved: UInt64) {
        arch_dsb_ish()
        arch_write_vttbr_el2(saved)
        arch_isb()
    }
}

/// The EL2 registers a lower EL's entry is prepared with (`LowerELEntry`).
struct BoardEntryRegisters: LowerELEntryRegisters {
    mutating func writeVTCR(_ value: VTCR) { arch_write_vtcr_el2(value.raw) }
    mutating func writeVTTBR(_ value: VTTBR) { arch_write_vttbr_el2(value.raw) }
    mutating func writeHCR(_ value: UInt64) { arch_write_hcr_el2(value) }
    mutating func synchronizeContext() { arch_isb() }
    mutating func invalidateAllEL1TLBs() { arch_tlbi_alle1() }
    mutating func completeLocalTLBMaintenance() { arch_dsb_nsh() }
}

extension CPUIDRegisters {
    /// This CPU's ID registers (decoded by the portable type).
    static func read() -> CPUIDRegisters {
        CPUIDRegisters(mmfr0: arch_read_id_aa64mmfr0_el1(), mmfr1: arch_read_id_aa64mmfr1_el1(),
                       isar0: arch_read_id_aa64isar0_el1())
    }
}

/// Data-cache maintenance to the point of coherency by VA (= PA here).
struct BoardCache: CacheMaintenance {
    mutating func clean(_ address: PhysAddr, bytes: UInt64) {
        forEachLine(address, bytes, invalidating: false)
    }
    mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64) {
        forEachLine(address, bytes, invalidating: true)
    }
    mutating func synchronize() { arch_dsb_sy() }

    /// `DC CVAC` (or `DC CIVAC` when invalidating) for every line of the range.
    private func forEachLine(_ address: PhysAddr, _ bytes: UInt64, invalidating: Bool) {
        guard bytes > 0 else { return }
        let line = arch_dcache_line_bytes()
        var va = address.raw & ~(line - 1)
        let end = address.raw &+ bytes
        while va < end {
            if invalidating { arch_dc_civac(va) } else { arch_dc_cvac(va) }
            va &+= line
        }
    }
}
