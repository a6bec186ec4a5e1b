import XCTest
import AArch64
import Translation
import HostFakes
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

enum OwnershipTestEnvironment: P2MEnvironment {
    typealias Memory = SparseMemory
    typealias Pool = FreeListPool<SparseMemory>
    typealias TLB = RecordingTLB
    typealias IOMMU = RecordingIOMMU
    typealias Listener = FrameEntryListener
}
typealias TestP2M = P2M<OwnershipTestEnvironment>
typealias TestOwnership = PageOwnership<RecordingCache, TestP2M>

/// A world: the ownership state, the RAM the P2Ms' tables live in, one log.
struct World: ~Copyable {
    var o: TestOwnership
    let ram = SparseRAM()
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
        let memory = SparseMemory(ram: ram)
        let pool = FreeListPool(memory: memory, first: nextPoolFrame, count: tablePages)
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
    XCTAssertFalse(w.o.isPageLockHeld, "a lock scope leaked: the page lock is still held", file: file, line: line)
}
