import XCTest
import AArch64
import Translation
@testable import Ownership

/// Records every cache maintenance call, in order.
struct RecordingCache: CacheMaintenance {
    enum Op: Equatable, CustomStringConvertible {
        case clean(PhysAddr, UInt64)
        case cleanAndInvalidate(PhysAddr, UInt64)
        case sync
        var description: String {
            switch self {
            case .clean(let a, let n): "clean(\(String(a.raw, radix: 16)), \(n))"
            case .cleanAndInvalidate(let a, let n): "civac(\(String(a.raw, radix: 16)), \(n))"
            case .sync: "dsb"
            }
        }
    }
    var ops: [Op] = []
    mutating func clean(_ address: PhysAddr, bytes: UInt64) { ops.append(.clean(address, bytes)) }
    mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64) {
        ops.append(.cleanAndInvalidate(address, bytes))
    }
    mutating func synchronize() { ops.append(.sync) }

    /// Frames cleaned+invalidated, one entry per 4 KiB page, in order.
    var cleanedFrames: [MFN] {
        var out: [MFN] = []
        for case .cleanAndInvalidate(let a, let n) in ops {
            for i in 0..<(n >> PageSize.shift4K) { out.append(a.frame.adding(i)) }
        }
        return out
    }
}

/// Two sparse banks: 8 frames at 0x4000_0000 and 8 frames at 0x8000_0000,
/// with a 1 GiB hole between them that must cost nothing.
let testBanks = [
    MemoryBank(base: PhysAddr(0x8000_0000), bytes: 8 * PageSize.bytes4K),
    MemoryBank(base: PhysAddr(0x4000_0000), bytes: 8 * PageSize.bytes4K),
]
let bank0 = MFN(raw: 0x4_0000)
let bank1 = MFN(raw: 0x8_0000)
/// An MMIO frame outside every bank.
let deviceFrame = MFN(raw: 0x900_0000 >> 12)

func makeOwnership(banks: [MemoryBank] = testBanks) -> TestOwnership {
    try! PageOwnership(banks: banks, cache: RecordingCache())
}

// MARK: - P2M host fakes (the Translation fakes live in its own test target)

/// Host RAM for P2M table pages: 512 words per frame, created on first write.
final class FakeRAM {
    var frames: [UInt64: [UInt64]] = [:]
}

struct FakeMemory: PhysicalMemory {
    let ram: FakeRAM
    func load64(_ address: PhysAddr) -> UInt64 {
        ram.frames[address.raw >> 12]?[Int(address.raw & 0xFFF) >> 3] ?? 0
    }
    func store64(_ address: PhysAddr, _ value: UInt64) {
        let f = address.raw >> 12
        if ram.frames[f] == nil { ram.frames[f] = [UInt64](repeating: 0, count: 512) }
        ram.frames[f]![Int(address.raw & 0xFFF) >> 3] = value
    }
    func zeroFrame(_ frame: MFN) { ram.frames[frame.raw] = nil }
}

/// Table pages from a region outside the test's RAM banks.
struct FakePool: TablePageSource {
    let memory: FakeMemory
    var free: [MFN]
    init(memory: FakeMemory, first: MFN, count: Int) {
        self.memory = memory
        free = (0..<UInt64(count)).reversed().map { first.adding($0) }
    }
    mutating func allocateTablePage() -> MFN? {
        guard let f = free.popLast() else { return nil }
        memory.zeroFrame(f)
        return f
    }
    mutating func freeTablePage(_ frame: MFN) { free.append(frame) }
    var availableTablePages: Int { free.count }
}

/// A CPU TLB and an IOMMU that log every invalidation into one shared,
/// ordered event log (with frame-state observations the tests add).
final class EventLog {
    enum Event: Equatable {
        case cpuInvalidate(vmid: UInt16, GFN, pages: UInt64)
        case cpuInvalidateVMID(UInt16)
        case cpuSync
        case iommuInvalidate(vmid: UInt16, GFN, pages: UInt64)
        case iommuInvalidateAll(UInt16)
        case iommuSync
    }
    var events: [Event] = []
    /// The next this-many IOMMU waits do not confirm completion (a lost CMD_SYNC).
    var failingIOMMUSyncs = 0
}

struct RecordingTLB: TLBMaintenance {
    let log: EventLog
    mutating func invalidateStage2(vmid: UInt16, ipa: IPA, pages: UInt64) {
        log.events.append(.cpuInvalidate(vmid: vmid, ipa.frame, pages: pages))
    }
    mutating func invalidateVMID(_ vmid: UInt16) { log.events.append(.cpuInvalidateVMID(vmid)) }
    mutating func synchronize() { log.events.append(.cpuSync) }
}

struct RecordingIOMMU: IOMMUInvalidator {
    let log: EventLog
    mutating func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64) {
        log.events.append(.iommuInvalidate(vmid: vmid, gfn, pages: count))
    }
    mutating func invalidateAll(vmid: UInt16) { log.events.append(.iommuInvalidateAll(vmid)) }
    mutating func synchronize() throws(IOMMUSyncError) {
        log.events.append(.iommuSync)
        if log.failingIOMMUSyncs > 0 {
            log.failingIOMMUSyncs -= 1
            throw .completionTimeout
        }
    }
}

typealias TestP2M = P2M<FakeMemory, FakePool, RecordingTLB, RecordingIOMMU, FrameEntryListener, NoChangeObserver>
typealias TestOwnership = PageOwnership<RecordingCache, TestP2M>

/// A world: the ownership state, the RAM the P2Ms' tables live in, one log.
struct World: ~Copyable {
    var o: TestOwnership
    let ram = FakeRAM()
    let log = EventLog()
    var nextPoolFrame = MFN(raw: 0x10_0000)

    init(banks: [MemoryBank] = testBanks) {
        o = try! PageOwnership(banks: banks, cache: RecordingCache())
    }

    mutating func addDomain(_ config: DomainConfig, vmid: UInt16? = nil, tablePages: Int = 16) {
        try! o.createDomain(config, p2m: makeP2M(vmid: vmid ?? config.id.raw + 1, tablePages: tablePages))
    }

    /// A P2M (ipaBits 39: a single root table) whose removals reach this world's frame table.
    mutating func makeP2M(vmid: UInt16, tablePages: Int = 16) -> TestP2M {
        let memory = FakeMemory(ram: ram)
        let pool = FakePool(memory: memory, first: nextPoolFrame, count: tablePages)
        nextPoolFrame = nextPoolFrame.adding(UInt64(tablePages))
        return try! TestP2M(configuration: P2MConfiguration(vmid: vmid, ipaBits: 39, paRange: .bits40, vmidWidth: .bits8),
                            memory: memory, pool: pool, tlb: RecordingTLB(log: log),
                            iommu: RecordingIOMMU(log: log), listener: o.entryListener,
                            observer: NoChangeObserver())
    }

    /// Everything a failed call must leave alone: both words of every frame,
    /// every table page's bytes, each domain's pool, xenheap frames, IOMMU
    /// mapping counts and configuration, and the host's DMA domains.
    func snapshot() -> Snapshot {
        var domains: [DomainSnapshot] = []
        for id in o.domainIDs {
            domains.append(o.withDomain(id) { (d: borrowing GuestDomain<TestP2M>) in
                DomainSnapshot(config: d.config, sharedInfo: d.sharedInfo, grantShared: d.grantSharedFrames,
                               grantStatus: d.grantStatusFrames, iommu: d.iommuGrantMappings,
                               poolFree: d.p2m.pool.free, tablePages: d.p2m.tablePagesInUse)
            }!)
        }
        return Snapshot(frames: o.frames.snapshot(), tables: ram.frames, domains: domains,
                        dmaDomains: o.hostDMADomains)
    }

    func lookup(_ id: DomainID, _ gfn: GFN) -> (mfn: MFN, type: P2MType)? {
        o.withDomain(id) { (d: borrowing GuestDomain<TestP2M>) in d.p2m.translate(gfn) } ?? nil
    }
}

struct DomainSnapshot: Equatable {
    var config: DomainConfig
    var sharedInfo: MFN?
    var grantShared: [MFN]
    var grantStatus: [MFN]
    var iommu: [IOMMUGrantMapping]
    var poolFree: [MFN]
    var tablePages: Int
}

struct Snapshot: Equatable {
    var frames: [UInt64]
    var tables: [UInt64: [UInt64]]
    var domains: [DomainSnapshot]
    var dmaDomains: [DMADomain]
}

/// Runs `body` on the world, expects exactly `expected`, and proves the
/// whole state is byte-for-byte what it was.
func expectRefusal(_ expected: OwnershipError, _ w: inout World,
                   file: StaticString = #filePath, line: UInt = #line,
                   _ body: (inout TestOwnership) throws(OwnershipError) -> Void) {
    let before = w.snapshot()
    do {
        try body(&w.o)
        XCTFail("succeeded; expected \(expected)", file: file, line: line)
    } catch {
        XCTAssertEqual(error, expected, file: file, line: line)
    }
    XCTAssertTrue(w.snapshot() == before, "a failed call changed the state", file: file, line: line)
    XCTAssertEqual(w.o.locks, LockSet(), "a lock scope leaked", file: file, line: line)
}
