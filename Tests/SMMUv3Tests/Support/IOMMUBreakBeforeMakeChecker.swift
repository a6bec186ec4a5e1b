import XCTest
import AArch64
import Translation
@testable import SMMUv3

/// The IOMMU side of the break-before-make checker (Translation's
/// `BreakBeforeMakeChecker` watches the P2M): it watches every CPU store into
/// a stage-1 mirror's table, every command the fake SMMU executed and every
/// table page the mirror's pool takes back, and reports
/// - a valid entry replaced by a valid entry with another output or size
///   (block, table or page) without going through invalid (Arm ARM "Using
///   break-before-make when updating translation table entries"; SMMUv3
///   walks the same VMSAv8-64 stage-1 format, IHI 0070 chapter 3.4);
/// - an entry made valid again, with another output or size, after it was
///   broken but before a TLBI_NH_VA / NH_ASID / NH_ALL / NSNH_ALL covering it
///   on the mirror's ASID had been executed *and* a CMD_SYNC after it
///   (IHI 0070 4.7: completion of earlier commands is only known at a sync);
///   a broken table entry also needs a non-leaf TLBI (a leaf-only one leaves
///   the walk caches holding the old table, IHI 0070 4.4.2 "Leaf");
/// - a table page freed, or a held reference released, while any broken entry
///   is still not invalidated and synchronised, or a freed page still linked
///   (seed 000, XSA-346: the IOMMU may still walk the page or reach the frame).
/// Only stores to pages reachable from the root count: a table being filled
/// before it is linked may be written freely.
final class IOMMUBreakBeforeMakeChecker {
    let memory: FakeMemory
    let fake: FakeSMMU
    var asid: UInt16 = 0
    var root: UInt64 = 0
    var startLevel = 0
    /// Child table frame → address of the entry that links it.
    var parentEntry: [UInt64: UInt64] = [:]
    struct Broken {
        var old: UInt64
        var iova: UInt64
        var span: UInt64
        var level: Int
        var isTable: Bool { level < 3 && old & 3 == 3 }
    }
    /// Broken entries (address → what they held) not yet invalidated and synchronised.
    var broken: [UInt64: Broken] = [:]
    /// Invalidations executed since the last CMD_SYNC: input frame ranges, and
    /// whether each also reaches the walk caches (non-leaf).
    var pending: [(range: Range<UInt64>, walkCaches: Bool)] = []
    var commandCursor = 0
    var violations: [String] = []
    var checkedStores = 0
    var completedInvalidations = 0
    var brokenEntriesSeen = 0

    init(memory: FakeMemory, fake: FakeSMMU) {
        self.memory = memory
        self.fake = fake
        commandCursor = fake.consumedCommands.count
        memory.descriptorWatcher = { [unowned self] address, old, new in self.store(address.raw, old: old, new: new) }
    }

    /// Start watching `table`, the translation table of ASID `asid`.
    func watch(_ table: TranslationTable<Stage1Descriptor>, asid: UInt16) {
        root = table.root.raw
        startLevel = table.geometry.startLevel
        self.asid = asid
        commandCursor = fake.consumedCommands.count
    }

    static func span(_ level: Int) -> UInt64 { 1 << UInt64(9 * (3 - level)) }
    static func isValid(_ d: UInt64) -> Bool { d & 1 != 0 }
    static func output(_ d: UInt64) -> UInt64 { (d & 0x0000_FFFF_FFFF_F000) >> 12 }

    /// (first input frame, level) covered by table `frame` if it is reachable now.
    /// A path from the root is at most four tables long: a longer chain of
    /// remembered parents is a cycle (unreachable), not a path.
    func locate(frame: UInt64, depth: Int = 0) -> (base: UInt64, level: Int)? {
        if frame == root { return (0, startLevel) }
        guard depth < 4, let entry = parentEntry[frame], let parent = locate(frame: entry >> 12, depth: depth + 1) else {
            return nil
        }
        let d = memory.load64(PhysAddr(raw: entry))
        guard parent.level < 3, d & 3 == 3, Self.output(d) == frame else { return nil }
        return (parent.base + ((entry & 0xFFF) >> 3) * Self.span(parent.level), parent.level + 1)
    }

    /// Takes in the commands the SMMU executed since the last event: they
    /// happened before it (the fake consumes at the PROD write).
    func catchUp() {
        let commands = fake.consumedCommands
        while commandCursor < commands.count {
            execute(commands[commandCursor])
            commandCursor += 1
        }
    }

    func execute(_ c: Command) {
        let commandASID = UInt16(truncatingIfNeeded: c.dw0 >> Command.asidShift)
        switch Command.Opcode(rawValue: c.opcode) {
        case .tlbiNHAll?, .tlbiNSNHAll?:
            pending.append((0..<UInt64.max, true))
        case .tlbiNHASID? where commandASID == asid:
            pending.append((0..<UInt64.max, true))
        case .tlbiNHVA? where commandASID == asid:
            let first = (c.dw1 & Command.vaMask) >> 12
            pending.append((first..<(first + c.rangePages), c.dw1 & Command.leaf == 0))
        case .sync?:
            let done = pending
            broken = broken.filter { _, b in
                let entry = b.iova..<(b.iova + b.span)
                if b.isTable {
                    // A non-leaf TLBI by VA drops every walk-cache entry used
                    // for that VA: any overlap will do.
                    return !done.contains { $0.walkCaches && $0.range.overlaps(entry) }
                }
                var covered = b.iova
                for r in done.map(\.range).sorted(by: { $0.lowerBound < $1.lowerBound })
                    where r.lowerBound <= covered && r.upperBound > covered {
                    covered = r.upperBound
                }
                return covered < entry.upperBound
            }
            completedInvalidations += done.count
            pending.removeAll()
        default:
            break
        }
    }

    func store(_ address: UInt64, old: UInt64, new: UInt64) {
        catchUp()
        guard let table = locate(frame: address >> 12) else {
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
        let iova = table.base + ((address & 0xFFF) >> 3) * Self.span(level)
        if level < 3 && new & 3 == 3 { parentEntry[Self.output(new)] = address }
        let sameShape = { (a: UInt64, b: UInt64) in Self.output(a) == Self.output(b) && a & 3 == b & 3 }
        let at = "IOVA frame 0x\(String(iova, radix: 16)) level \(level)"
        switch (Self.isValid(old), Self.isValid(new)) {
        case (true, true):
            if !sameShape(old, new) {
                violations.append("valid-to-valid replacement at \(at): 0x\(String(old, radix: 16)) -> 0x\(String(new, radix: 16))")
            }
        case (true, false):
            // Keep the oldest unflushed value: it is what the IOTLB may still hold.
            if broken[address] == nil { broken[address] = Broken(old: old, iova: iova, span: Self.span(level), level: level) }
            brokenEntriesSeen += 1
        case (false, true):
            if let b = broken[address], !sameShape(b.old, new) {
                violations.append("make without completed IOTLB invalidation at \(at)")
            }
        case (false, false):
            break
        }
    }

    /// The mirror's pool took a table page back.
    func freed(_ frame: MFN) {
        catchUp()
        if !broken.isEmpty {
            violations.append("table page 0x\(String(frame.raw, radix: 16)) freed with \(broken.count) IOMMU entries not invalidated")
        }
        if locate(frame: frame.raw) != nil {
            violations.append("table page 0x\(String(frame.raw, radix: 16)) freed while still linked")
        }
    }

    /// The P2M's batch released the references it held for removed mappings.
    func released() {
        catchUp()
        if !broken.isEmpty {
            violations.append("references released with \(broken.count) IOMMU entries not invalidated")
        }
    }

    func assertClean(file: StaticString = #filePath, line: UInt = #line) {
        catchUp()
        XCTAssertEqual(violations, [], file: file, line: line)
    }
}
