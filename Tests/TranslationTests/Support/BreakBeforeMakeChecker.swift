import XCTest
import AArch64
import HostFakes
@testable import Translation

/// Watches every descriptor store, TLB invalidation, synchronisation and page
/// release of a stage-2 table and reports:
/// - a valid entry replaced by a valid entry with another output or kind (size)
///   without going through invalid (Arm ARM "Using break-before-make when updating translation table entries");
/// - an entry made valid again, with another output or kind, after it was broken but
///   before an invalidation covering it had been issued *and* waited for;
/// - a table page freed, or a held reference released, while any broken entry is
///   still not invalidated, or while the page is still linked (seed 000).
/// With `watchesIOMMU` (an IOMMU that walks the P2M itself, SMMU stage 2, seen
/// through `RecordingIOMMU`) the same rules hold for the IOMMU separately: a
/// broken entry also needs an IOMMU invalidation covering it and a wait that
/// completed (a failed wait confirms nothing) before it is made again with
/// another output or size, and before any table page is freed or reference
/// released (seed 000, XSA-346: Xen freed pages before the IOTLB flush).
/// Only stores to pages reachable from the root count: an unlinked table being
/// prepared may be written freely.
final class BreakBeforeMakeChecker: TLBWatcher, IOMMUWatcher {
    let memory: FakeMemory
    var roots: Range<UInt64> = 0..<0
    var startLevel = 0
    /// Child table frame → physical address of the entry that links it.
    var parentEntry: [UInt64: UInt64] = [:]
    /// Broken entries (address → what they held) not yet invalidated and synchronised.
    var broken: [UInt64: (old: UInt64, ipa: UInt64, span: UInt64, level: Int)] = [:]
    var pending: [(UInt64, UInt64)] = []
    var pendingAll = false
    var violations: [String] = []
    var checkedStores = 0
    /// The IOMMU's side, kept only when `watchesIOMMU`.
    var watchesIOMMU = false
    var iommuBroken: [UInt64: (old: UInt64, ipa: UInt64, span: UInt64, level: Int)] = [:]
    var iommuPending: [(UInt64, UInt64)] = []
    var iommuPendingAll = false

    init(memory: FakeMemory) { self.memory = memory }

    func setRoot(_ root: MFN, startLevel: Int, tables: Int) {
        roots = root.raw..<(root.raw + UInt64(tables))
        self.startLevel = startLevel
    }

    static func span(_ level: Int) -> UInt64 { 1 << UInt64(9 * (3 - level)) }
    static func isValid(_ d: UInt64) -> Bool { d & 1 != 0 }
    static func output(_ d: UInt64) -> UInt64 { (d & 0x0000_FFFF_FFFF_F000) >> 12 }

    /// (first input frame, level) covered by table `frame` if it is reachable now.
    /// A path from the root is at most four tables long: a longer chain of
    /// remembered parents is a cycle (unreachable), not a path.
    func locate(frame: UInt64, depth: Int = 0) -> (base: UInt64, level: Int)? {
        if roots.contains(frame) {
            return ((frame - roots.lowerBound) * 512 * Self.span(startLevel), startLevel)
        }
        guard depth < 4, let entry = parentEntry[frame], let parent = locate(frame: entry >> 12, depth: depth + 1) else {
            return nil
        }
        let d = memory.words[memory.index(PhysAddr(raw: entry))]
        // Still linked: the parent entry holds a table descriptor to this frame.
        guard parent.level < 3, d & 3 == 3, Self.output(d) == frame else { return nil }
        let index = (entry & 0xFFF) >> 3
        return (parent.base + index * Self.span(parent.level), parent.level + 1)
    }

    func store(_ address: UInt64, old: UInt64, new: UInt64) {
        let frame = address >> 12
        guard let table = locate(frame: frame) else {
            // Not reachable: remember links made inside a table being prepared.
            // Its level is unknown, so a page descriptor (also 0b11, at level 3)
            // reads like a link; one whose output is a table page still in the
            // tree is a mapping of that page, not its parent (a leaf may map any
            // frame), so it must not replace the real parent.
            if Self.isValid(new) && new & 3 == 3 && locate(frame: Self.output(new)) == nil {
                parentEntry[Self.output(new)] = address
            }
            return
        }
        checkedStores += 1
        let level = table.level
        let ipa = table.base + ((address & 0xFFF) >> 3) * Self.span(level)
        let isTableEntry = level < 3 && new & 3 == 3
        if isTableEntry { parentEntry[Self.output(new)] = address }
        let sameShape = { (a: UInt64, b: UInt64) in Self.output(a) == Self.output(b) && a & 3 == b & 3 }
        switch (Self.isValid(old), Self.isValid(new)) {
        case (true, true):
            if !sameShape(old, new) {
                violations.append("valid-to-valid replacement at gfn 0x\(String(ipa, radix: 16)) level \(level): "
                                  + "0x\(String(old, radix: 16)) -> 0x\(String(new, radix: 16))")
            }
        case (true, false):
            if let earlier = broken[address], !sameShape(earlier.old, old) {
                // Keep the oldest unflushed value: it is what a TLB may still hold.
                _ = earlier
            } else {
                broken[address] = (old, ipa, Self.span(level), level)
            }
            if watchesIOMMU && iommuBroken[address] == nil { iommuBroken[address] = (old, ipa, Self.span(level), level) }
        case (false, true):
            if let b = broken[address], !sameShape(b.old, new) {
                violations.append("make without completed invalidation at gfn 0x\(String(ipa, radix: 16)) level \(level)")
            }
            if let b = iommuBroken[address], !sameShape(b.old, new) {
                violations.append("make without completed IOMMU invalidation at gfn 0x\(String(ipa, radix: 16)) level \(level)")
            }
        case (false, false):
            break
        }
    }

    func invalidate(_ page: UInt64, pages: UInt64) { pending.append((page, page + pages)) }
    func invalidateAll() { pendingAll = true }

    /// A DSB: every invalidation issued so far has completed.
    func synchronize() {
        Self.complete(&broken, pending, all: pendingAll)
        pending.removeAll()
        pendingAll = false
    }

    /// Drops the broken entries that `ranges` (or everything) cover.
    static func complete(_ broken: inout [UInt64: (old: UInt64, ipa: UInt64, span: UInt64, level: Int)],
                         _ ranges: [(UInt64, UInt64)], all: Bool) {
        if all {
            broken.removeAll()
        } else if !broken.isEmpty {
            let ranges = ranges.sorted { $0.0 < $1.0 }
            broken = broken.filter { _, b in
                let isTable = b.level < 3 && b.old & 3 == 3
                if isTable {
                    // TLBI by IPA hits every cached level used for that IPA: any overlap will do.
                    return !ranges.contains { $0.0 < b.ipa + b.span && $0.1 > b.ipa }
                }
                var covered = b.ipa
                for r in ranges where r.0 <= covered && r.1 > covered { covered = r.1 }
                return covered < b.ipa + b.span
            }
        }
    }

    func iommuInvalidate(_ page: UInt64, pages: UInt64) { iommuPending.append((page, page + pages)) }
    func iommuInvalidateAll() { iommuPendingAll = true }

    /// An IOMMU completion wait: if it completed, every IOMMU invalidation
    /// issued since the last wait has; if not, none is confirmed (the P2M
    /// issues them again before its next wait).
    func iommuSynchronize(completed: Bool) {
        if completed { Self.complete(&iommuBroken, iommuPending, all: iommuPendingAll) }
        iommuPending.removeAll()
        iommuPendingAll = false
    }

    func freed(_ frame: UInt64) {
        if !broken.isEmpty {
            violations.append("table page 0x\(String(frame, radix: 16)) freed with \(broken.count) entries not invalidated")
        }
        if !iommuBroken.isEmpty {
            violations.append("table page 0x\(String(frame, radix: 16)) freed with \(iommuBroken.count) entries not invalidated in the IOMMU")
        }
        if locate(frame: frame) != nil {
            violations.append("table page 0x\(String(frame, radix: 16)) freed while still linked")
        }
    }

    func released() {
        if !broken.isEmpty { violations.append("references released with \(broken.count) entries not invalidated") }
        if !iommuBroken.isEmpty {
            violations.append("references released with \(iommuBroken.count) entries not invalidated in the IOMMU")
        }
    }

    func assertClean(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(violations, [], file: file, line: line)
    }
}
