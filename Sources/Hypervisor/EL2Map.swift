import AArch64
import ArchC
import Platform

/// Refines the coarse EL2 identity map that Boot/start.S built.
///
/// start.S knows only where the image and the DTB are, so it maps 0..1 TiB as
/// Device-nGnRE with 1 GiB blocks and makes the blocks holding the image and
/// the DTB Normal write-back. Here every memory bank the DTB lists becomes
/// Normal write-back too: whole 1 GiB blocks where a bank covers them, 2 MiB
/// blocks (through a level-2 table) where it covers part. Above 1 TiB a
/// level-1 table is added on demand (Device blocks, then RAM refined the same
/// way), for RAM banks and for the device ranges the DTB names. Each change to
/// a live entry goes through break-before-make (Arm ARM D8.16.1): the entry is
/// written invalid and the TLB invalidated before the new entry is written.
///
/// Limits, named in README.md: RAM in 2 MiB pieces that are not wholly RAM
/// stays Device memory; a 1 GiB block already Normal (the image's) is left as
/// it is, because it cannot go through an invalid window while code runs from
/// it; the spare tables (a static pool) bound how many partial blocks and
/// level-1 tables can be added.
enum EL2Map {
    static let entriesPerTable = 512
    static let l1Shift: UInt64 = 39                    // one level-0 entry: 512 GiB
    static let vaBits: UInt64 = 48                      // TCR_EL2.T0SZ = 16 (start.S)
    /// The block attributes start.S maps with (Boot/include/el2_layout.h, one
    /// definition for both): EL2 is a single-range regime, so these are stage-1
    /// descriptors.
    static let normal = Stage1Descriptor(raw: UInt64(HV_BLOCK_NORMAL)).attributes
    static let device = Stage1Descriptor(raw: UInt64(HV_BLOCK_DEVICE)).attributes
    static let normalAttrIndex = Stage1Descriptor(raw: UInt64(HV_BLOCK_NORMAL)).attributeIndex
    static let gib: UInt64 = 1 << PageSize.shift1G
    static let mib2: UInt64 = 1 << PageSize.shift2M

    struct Summary { var gibBlocks = 0; var splitBlocks = 0; var addedL1Tables = 0; var skippedRanges = 0 }

    /// The DTB's RAM banks or device regions, in the list type PlatformDescription
    /// keeps them in (no array built for the map).
    typealias Ranges = FixedList<16, MemoryRange>

    nonisolated(unsafe) static var nextSpare: UInt64 = 0

    /// - Parameters:
    ///   - banks: each RAM bank, from the DTB.
    ///   - devices: MMIO ranges the DTB names (UART, SMMU, ECAM, PCI windows):
    ///     made reachable (as Device memory) where the coarse map ends.
    @_transparent
    static func map(ram banks: Ranges, devices: Ranges) -> Summary {
        var summary = Summary()
        if nextSpare == 0 { nextSpare = arch_el2_l2_pool() }
        addLevel1Tables(covering: banks, &summary)
        addLevel1Tables(covering: devices, &summary)
        for bank in banks where bank.size > 0 {
            var g = bank.base.raw >> PageSize.shift1G
            let last = (bank.base.raw &+ bank.size &- 1) >> PageSize.shift1G
            while g <= last {
                mapRAM(gib: g, banks, &summary)
                g += 1
            }
        }
        return summary
    }

    private static func addLevel1Tables(covering ranges: Ranges, _ summary: inout Summary) {
        for range in ranges where range.size > 0 {
            var g = range.base.raw >> PageSize.shift1G
            let last = (range.base.raw &+ range.size &- 1) >> PageSize.shift1G
            while g <= last {
                if !ensureLevel1(for: g << PageSize.shift1G, &summary) { summary.skippedRanges += 1 }
                g += 1
            }
        }
    }

    /// The level-1 entry for the 1 GiB block at `address`, adding a level-1
    /// table (all Device blocks) to an empty level-0 slot. Nil beyond the VA size.
    private static func level1Entry(_ address: UInt64) -> UnsafeMutablePointer<UInt64>? {
        guard address >> vaBits == 0 else { return nil }
        let l0 = UnsafeMutablePointer<UInt64>(bitPattern: UInt(arch_el2_l0_table()))!
        let entry = Stage1Descriptor(raw: l0[Int(address >> l1Shift)])
        guard entry.isValid, entry.isTable(atLevel: 0) else { return nil }
        let l1 = UnsafeMutablePointer<UInt64>(bitPattern: UInt(entry.outputFrame.address.raw))!
        return l1 + Int(address >> PageSize.shift1G & 511)
    }

    @_transparent
    private static func ensureLevel1(for address: UInt64, _ summary: inout Summary) -> Bool {
        guard address >> vaBits == 0 else { return false }
        if level1Entry(address) != nil { return true }
        guard let table = takeSpare() else { return false }
        let l1Base = (address >> l1Shift) << l1Shift
        for j in 0..<entriesPerTable { table[j] = block(l1Base + UInt64(j) * gib, level: 1, device) }
        arch_dsb_ishst()
        // An invalid level-0 entry becomes valid: no break needed, but the
        // walker must not have cached the old (invalid) result.
        let l0 = UnsafeMutablePointer<UInt64>(bitPattern: UInt(arch_el2_l0_table()))!
        l0[Int(address >> l1Shift)] = tableEntry(table)
        arch_tlbi_alle2is_sync()
        summary.addedL1Tables += 1
        return true
    }

    @_transparent
    private static func mapRAM(gib g: UInt64, _ banks: Ranges, _ summary: inout Summary) {
        let start = g * gib
        guard let entry = level1Entry(start) else { return }
        let current = Stage1Descriptor(raw: entry.pointee)
        // Already Normal (the image's block) or already split: nothing to do.
        if current.isValid && current.isTable(atLevel: 1) { return }
        if current.isValid && current.isLeaf(atLevel: 1) && current.attributeIndex == normalAttrIndex { return }
        let covered = bytesCovered(banks, start, start + gib)
        if covered == gib {
            replace(entry, with: block(start, level: 1, normal))
            summary.gibBlocks += 1
            return
        }
        guard let l2 = takeSpare() else { summary.skippedRanges += 1; return }
        for j in 0..<entriesPerTable {
            let base = start + UInt64(j) * mib2
            let ram = bytesCovered(banks, base, base + mib2) == mib2
            l2[j] = block(base, level: 2, ram ? normal : device)
        }
        arch_dsb_ishst()
        replace(entry, with: tableEntry(l2))
        summary.splitBlocks += 1
    }

    private static func block(_ address: UInt64, level: Int, _ attributes: Stage1Attributes) -> UInt64 {
        Stage1Descriptor.leaf(MFN(raw: address >> PageSize.shift4K), level: level, attributes: attributes).raw
    }

    private static func tableEntry(_ table: UnsafeMutablePointer<UInt64>) -> UInt64 {
        Stage1Descriptor.table(MFN(raw: UInt64(UInt(bitPattern: table)) >> PageSize.shift4K)).raw
    }

    private static func takeSpare() -> UnsafeMutablePointer<UInt64>? {
        guard nextSpare < arch_el2_l2_pool_end() else { return nil }
        defer { nextSpare += PageSize.bytes4K }
        return UnsafeMutablePointer<UInt64>(bitPattern: UInt(nextSpare))
    }

    private static func bytesCovered(_ banks: Ranges, _ start: UInt64, _ end: UInt64) -> UInt64 {
        var total: UInt64 = 0
        for bank in banks {
            let lo = max(bank.base.raw, start)
            let hi = min(bank.base.raw &+ bank.size, end)
            if hi > lo { total += hi - lo }
        }
        return total
    }

    /// Break-before-make for one live entry of the EL2 tables.
    private static func replace(_ entry: UnsafeMutablePointer<UInt64>, with value: UInt64) {
        entry.pointee = 0
        arch_tlbi_alle2is_sync()
        entry.pointee = value
        arch_dsb_ishst()
        arch_isb()
    }
}
