import AArch64
import ArchC

/// Refines the coarse EL2 identity map that Boot/start.S built.
///
/// start.S knows only where the image and the DTB are, so it maps 0..1 TiB as
/// Device-nGnRE with 1 GiB blocks and makes the blocks holding the image and
/// the DTB Normal write-back. Here every memory bank the DTB lists becomes
/// Normal write-back too: whole 1 GiB blocks where a bank covers them, 2 MiB
/// blocks (through a level-2 table from a small static pool) where it covers
/// part. Each change goes through break-before-make (Arm ARM D8.16.1): the
/// entry is written invalid and the TLB invalidated before the new entry.
///
/// Limits, named in README.md: RAM in 2 MiB pieces that are not wholly RAM
/// stays Device memory; a 1 GiB block already Normal (the image's) is left as
/// it is, because it cannot go through an invalid window while code runs from it.
enum EL2Map {
    static let entriesPerTable = 512
    static let l1Entries = 1024                     // two level-1 tables: 0..1 TiB
    static let validBit: UInt64 = 1
    static let typeMask: UInt64 = 0b11
    static let tableType: UInt64 = 0b11
    static let blockType: UInt64 = 0b01
    static let attrIndexMask: UInt64 = 0b111 << 2
    static let normalWriteBackBlock: UInt64 = 0x709       // block | AttrIndx 2 | SH inner | AF (as start.S)
    static let deviceBlock: UInt64 = 0x0040_0000_0000_0405 // block | AttrIndx 1 | AF | XN
    static let normalAttrIndex: UInt64 = 2 << 2
    static let gib: UInt64 = 1 << PageSize.shift1G
    static let mib2: UInt64 = 1 << PageSize.shift2M

    struct Summary { var gibBlocks = 0; var splitBlocks = 0; var skippedRanges = 0 }

    /// - Parameter banks: (base, size) of each RAM bank, from the DTB.
    static func mapRAM(_ banks: [(base: UInt64, size: UInt64)]) -> Summary {
        var summary = Summary()
        let l1 = UnsafeMutablePointer<UInt64>(bitPattern: UInt(arch_el2_l1_table()))!
        var nextL2 = arch_el2_l2_pool()
        for index in 0..<l1Entries {
            let start = UInt64(index) * gib
            let end = start + gib
            let covered = bytesCovered(banks, start, end)
            if covered == 0 { continue }
            let current = l1[index]
            if current & typeMask == blockType && current & attrIndexMask == normalAttrIndex { continue }
            if covered == gib {
                replace(&l1[index], with: start | normalWriteBackBlock)
                summary.gibBlocks += 1
                continue
            }
            guard nextL2 < arch_el2_l2_pool_end() else { summary.skippedRanges += 1; continue }
            let l2 = UnsafeMutablePointer<UInt64>(bitPattern: UInt(nextL2))!
            nextL2 += PageSize.bytes4K
            for j in 0..<entriesPerTable {
                let base = start + UInt64(j) * mib2
                let ram = bytesCovered(banks, base, base + mib2) == mib2
                l2[j] = base | (ram ? normalWriteBackBlock : deviceBlock)
            }
            arch_dsb_ishst()
            replace(&l1[index], with: UInt64(UInt(bitPattern: l2)) | tableType)
            summary.splitBlocks += 1
        }
        return summary
    }

    private static func bytesCovered(_ banks: [(base: UInt64, size: UInt64)], _ start: UInt64, _ end: UInt64) -> UInt64 {
        var total: UInt64 = 0
        for bank in banks {
            let lo = max(bank.base, start)
            let hi = min(bank.base &+ bank.size, end)
            if hi > lo { total += hi - lo }
        }
        return total
    }

    /// Break-before-make for one live entry of the EL2 tables.
    private static func replace(_ entry: inout UInt64, with value: UInt64) {
        entry = 0
        arch_tlbi_alle2is_sync()
        entry = value
        arch_dsb_ishst()
        arch_isb()
    }
}
