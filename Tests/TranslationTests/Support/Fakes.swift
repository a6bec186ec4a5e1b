import XCTest
import AArch64
import HostFakes
@testable import Translation

/// Host RAM for table pages: a flat array of words over frames [base, base + frames).
/// Every store can be shown to a `BreakBeforeMakeChecker`.
final class FakeMemory: PhysicalMemory {
    let baseFrame: UInt64
    let frames: Int
    var words: [UInt64]
    var stores = 0
    var loads = 0
    var checker: BreakBeforeMakeChecker?

    init(baseFrame: UInt64 = 0x8_0000, frames: Int) {
        self.baseFrame = baseFrame
        self.frames = frames
        self.words = Array(repeating: 0, count: frames * 512)
    }
    @inline(__always) func index(_ a: PhysAddr) -> Int {
        let offset = a.raw &- baseFrame << 12
        precondition(offset < UInt64(frames) << 12 && a.raw & 7 == 0, "access outside the fake RAM")
        return Int(offset >> 3)
    }
    func load64(_ address: PhysAddr) -> UInt64 {
        loads += 1
        return words[index(address)]
    }
    func store64(_ address: PhysAddr, _ value: UInt64) {
        let i = index(address)
        let old = words[i]
        words[i] = value
        stores += 1
        checker?.store(address.raw, old: old, new: value)
    }
    func zeroFrame(_ frame: MFN) {
        let start = index(frame.address)
        for i in start..<start + 512 { words[i] = 0 }
    }
}

/// A pool over the fake RAM; zeroes pages on allocation as the protocol promises.
struct FakePool: TablePageSource {
    let memory: FakeMemory
    let log: EventLog?
    var isFree: [Bool]
    var stack: [UInt64]
    var freeCount: Int
    let total: Int
    var entryCounts: [Int]

    init(memory: FakeMemory, pages: Int? = nil, log: EventLog? = nil) {
        self.memory = memory
        self.log = log
        let n = pages ?? memory.frames
        total = n
        isFree = Array(repeating: true, count: memory.frames)
        for i in n..<memory.frames { isFree[i] = false }
        stack = (0..<UInt64(n)).reversed().map { memory.baseFrame + $0 }
        freeCount = n
        entryCounts = Array(repeating: 0, count: memory.frames)
    }
    mutating func allocateTablePage() -> MFN? {
        while let f = stack.popLast() {
            let i = Int(f - memory.baseFrame)
            if isFree[i] {
                isFree[i] = false
                freeCount -= 1
                entryCounts[i] = 0
                memory.zeroFrame(MFN(raw: f))
                return MFN(raw: f)
            }
        }
        return nil
    }
    mutating func allocateContiguousTablePages(_ count: Int) -> MFN? {
        var i = 0
        while i + count <= total {
            if (memory.baseFrame + UInt64(i)) % UInt64(count) == 0 && (i..<i + count).allSatisfy({ isFree[$0] }) {
                for j in i..<i + count {
                    isFree[j] = false
                    entryCounts[j] = 0
                    memory.zeroFrame(MFN(raw: memory.baseFrame + UInt64(j)))
                }
                freeCount -= count
                return MFN(raw: memory.baseFrame + UInt64(i))
            }
            i += 1
        }
        return nil
    }
    mutating func freeTablePage(_ frame: MFN) {
        let i = Int(frame.raw - memory.baseFrame)
        precondition(!isFree[i], "double free of a table page")
        memory.checker?.freed(frame.raw)
        log?.events.append(.free(frame.raw))
        isFree[i] = true
        stack.append(frame.raw)
        freeCount += 1
    }
    var availableTablePages: Int { freeCount }
    /// Refuses a page that is not handed out: the engine keeps counts only for
    /// tables it holds, so touching a free page's count is its bug.
    func validEntryCount(_ frame: MFN) -> Int {
        let i = Int(frame.raw - memory.baseFrame)
        precondition(!isFree[i], "count of a free table page")
        return entryCounts[i]
    }
    mutating func setValidEntryCount(_ frame: MFN, _ count: Int) {
        let i = Int(frame.raw - memory.baseFrame)
        precondition(!isFree[i], "count of a free table page")
        precondition(count >= 0 && count <= TableLevel.entriesPerTable, "a table holds 0 to 512 entries")
        entryCounts[i] = count
    }
}

/// Holds references in an array; releasing logs an event.
struct FakeReleaser: PageReferenceReleaser {
    let log: EventLog?
    var checker: BreakBeforeMakeChecker? = nil
    var held: [(MFN, UInt64)] = []
    var released: [(MFN, UInt64)] = []
    mutating func hold(_ mfn: MFN, count: UInt64) { held.append((mfn, count)) }
    mutating func takeHeld(from other: inout FakeReleaser) {
        held += other.held
        other.held.removeAll()
    }
    mutating func releaseHeld() {
        log?.events.append(.release)
        checker?.released()
        released += held
        held.removeAll()
    }
}

/// Records removed runs; holds a reference for foreign mappings, as the page-state
/// layer does.
final class RemovalLog {
    var runs: [(gfn: UInt64, mfn: UInt64, count: UInt64, type: P2MType)] = []
    var pages: [UInt64: UInt64] {
        var d: [UInt64: UInt64] = [:]
        for r in runs { for i in 0..<r.count { d[r.gfn + i] = r.mfn + i } }
        return d
    }
}
extension P2MType {
    /// The test listeners' rule: a foreign mapping holds a reference on its frame
    /// (Xen's `p2m_is_foreign`), which the batch must keep until the flush.
    var holdsForeignReference: Bool { self == .mapForeignRW || self == .mapForeignRO }
}

struct RecordingListener: P2MEntryListener {
    let log: RemovalLog
    mutating func entryRemoved<R: PageReferenceReleaser>(
        _ gfn: GFN, mfn: MFN, count: UInt64, type: P2MType, batch: inout FlushBatch<R>
    ) {
        log.runs.append((gfn.raw, mfn.raw, count, type))
        if type.holdsForeignReference { batch.holdReference(mfn, count: count) }
    }
}

/// A stand-in IOMMU mirror: applies the change stream to a dictionary.
final class MirrorState {
    var pages: [UInt64: (mfn: UInt64, type: P2MType)] = [:]
    var refuse = false
    var events: [P2MChange] = []
    var planned: [P2MPlannedChange] = []
}
struct MirrorObserver: P2MChangeObserver {
    let state: MirrorState
    mutating func prepare(_ change: P2MPlannedChange) -> Bool {
        state.planned.append(change)
        return !state.refuse
    }
    mutating func apply(_ change: P2MChange) {
        state.events.append(change)
        switch change {
        case .mapped(let g, let m, let count, let type, _):
            for i in 0..<count { state.pages[g.raw + i] = (m.raw + i, type) }
        case .unmapped(let g, let count):
            if count > 1 << 20 { state.pages.removeAll() } else { for i in 0..<count { state.pages[g.raw + i] = nil } }
        case .typeChanged(let g, let m, let count, let from, let to, _):
            for i in 0..<count {
                precondition(state.pages[g.raw + i]?.type == from && state.pages[g.raw + i]?.mfn == m.raw + i)
                state.pages[g.raw + i] = (m.raw + i, to)
            }
        }
    }
}

/// The fake hardware every P2M test runs on, with or without hooks.
protocol FakeHardware: P2MEnvironment where Memory == FakeMemory, Pool == FakePool, TLB == RecordingTLB {}
enum Plain: FakeHardware {}
enum Hooked: FakeHardware {
    typealias IOMMU = RecordingIOMMU
    typealias Listener = RecordingListener
    typealias Observer = MirrorObserver
}
typealias TestP2M = P2M<Plain>
typealias HookedP2M = P2M<Hooked>

/// Fresh fakes for one test: RAM, a break-before-make checker watching it, an event log.
final class Rig {
    let memory: FakeMemory
    let checker: BreakBeforeMakeChecker
    let log = EventLog()
    init(poolPages: Int = 256) {
        memory = FakeMemory(frames: poolPages)
        checker = BreakBeforeMakeChecker(memory: memory)
        memory.checker = checker
    }
    func configuration(ipaBits: Int = 40, paRange: PhysicalAddressRange = .bits40, threshold: UInt64 = 512) -> P2MConfiguration {
        P2MConfiguration(vmid: 1, ipaBits: ipaBits, paRange: paRange, vmidWidth: .bits8, fullFlushThreshold: threshold)
    }
    /// A P2M without hooks, with `poolPages` of the RAM in its pool.
    func makeP2M(ipaBits: Int = 40, paRange: PhysicalAddressRange = .bits40, poolPages: Int? = nil,
                 threshold: UInt64 = 512) throws -> TestP2M {
        let p2m = try TestP2M(configuration: configuration(ipaBits: ipaBits, paRange: paRange, threshold: threshold),
                              memory: memory, pool: FakePool(memory: memory, pages: poolPages, log: log),
                              tlb: RecordingTLB(log: log, watcher: checker))
        checker.setRoot(p2m.root, startLevel: p2m.vtcr.startLevel, tables: p2m.vtcr.rootTables)
        return p2m
    }
    /// A P2M with every hook recording.
    func makeHookedP2M(removals: RemovalLog, mirror: MirrorState, poolPages: Int? = nil, ipaBits: Int = 40,
                       paRange: PhysicalAddressRange = .bits40) throws -> HookedP2M {
        let p2m = try HookedP2M(configuration: configuration(ipaBits: ipaBits, paRange: paRange), memory: memory,
                                pool: FakePool(memory: memory, pages: poolPages, log: log),
                                tlb: RecordingTLB(log: log, watcher: checker), iommu: RecordingIOMMU(log: log, watcher: checker),
                                listener: RecordingListener(log: removals), observer: MirrorObserver(state: mirror))
        checker.setRoot(p2m.root, startLevel: p2m.vtcr.startLevel, tables: p2m.vtcr.rootTables)
        checker.watchesIOMMU = true
        return p2m
    }
}

func ramBatch() -> FlushBatch<NoHeldReferences> { FlushBatch(releaser: NoHeldReferences()) }
