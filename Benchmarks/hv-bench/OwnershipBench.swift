import AArch64
import Translation
import Ownership
import HostFakes

/// Table memory for the benchmark's P2M: a flat run of frames from `base`,
/// behind a pointer (as P2MBench's memory), so the timed paths pay for the
/// descriptor loads and stores and not for a class's exclusivity checks.
private struct FlatMemory: PhysicalMemory {
    let words: UnsafeMutablePointer<UInt64>
    let base: UInt64
    init(base: MFN, frames: Int) {
        self.base = base.raw
        words = .allocate(capacity: frames * 512)
        words.initialize(repeating: 0, count: frames * 512)
    }
    @inline(__always) func slot(_ address: PhysAddr) -> UnsafeMutablePointer<UInt64> {
        words + Int((address.raw >> 3) - (base << 9))
    }
    func load64(_ address: PhysAddr) -> UInt64 { slot(address).pointee }
    func store64(_ address: PhysAddr, _ value: UInt64) { slot(address).pointee = value }
    func zeroFrame(_ frame: MFN) { slot(frame.address).update(repeating: 0, count: 512) }
}

/// The table pages of `FlatMemory`, with their valid-entry counts behind a
/// pointer too (FreeListPool keeps them in an array, checked on every write).
private struct FlatPool: TablePageSource {
    let memory: FlatMemory
    var free: [UInt64]
    let counts: UnsafeMutablePointer<UInt16>
    init(memory: FlatMemory, frames: Int) {
        self.memory = memory
        free = (0..<UInt64(frames)).reversed().map { memory.base + $0 }
        counts = .allocate(capacity: frames)
        counts.initialize(repeating: 0, count: frames)
    }
    mutating func allocateTablePage() -> MFN? {
        guard let f = free.popLast() else { return nil }
        memory.zeroFrame(MFN(raw: f))
        counts[Int(f &- memory.base)] = 0
        return MFN(raw: f)
    }
    mutating func freeTablePage(_ frame: MFN) { free.append(frame.raw) }
    var availableTablePages: Int { free.count }
    func validEntryCount(_ frame: MFN) -> Int { Int(counts[Int(frame.raw &- memory.base)]) }
    mutating func setValidEntryCount(_ frame: MFN, _ count: Int) {
        counts[Int(frame.raw &- memory.base)] = UInt16(truncatingIfNeeded: count)
    }
}

private enum OwnershipBenchEnvironment: P2MEnvironment {
    typealias Memory = FlatMemory
    typealias Pool = FlatPool
    typealias TLB = CountingTLB
    typealias Listener = FrameEntryListener
}
private typealias OwnershipBenchP2M = P2M<OwnershipBenchEnvironment>

private func nanoseconds(_ body: () -> Void) -> UInt64 {
    let elapsed = ContinuousClock().measure(body)
    return UInt64(elapsed.components.seconds) * 1_000_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000)
}

private func makeBenchP2M(vmid: UInt16, frames: FrameTable) -> OwnershipBenchP2M {
    let tableBase = MFN(raw: 0x10_0000)
    let memory = FlatMemory(base: tableBase, frames: 64)
    let pool = FlatPool(memory: memory, frames: 64)
    return try! OwnershipBenchP2M(configuration: P2MConfiguration(vmid: vmid, ipaBits: 39, paRange: .bits40, vmidWidth: .bits8),
                         memory: memory, pool: pool, tlb: CountingTLB(), iommu: NoIOMMU(),
                         listener: FrameEntryListener(frames: frames), observer: NoChangeObserver())
}

private typealias BenchOwnership = PageOwnership<CountingCache, OwnershipBenchP2M>

/// Shares every frame of `bank` for DMA, `pages` per call.
@inline(__always)
private func shareAll(_ o: inout BenchOwnership, _ bank: MemoryBank, pages: UInt64) {
    var f: UInt64 = 0
    while f < bank.frameCount {
        try! o.hostShareDMA(bank.base.adding(f << PageSize.shift4K), bytes: pages << PageSize.shift4K, isRAM: true)
        f += pages
    }
}

// One symbol per row, never inlined, so that a profile
// (valgrind --tool=callgrind, which counts instructions) gives each row's
// cost per call: its inclusive count over its frames.
@inline(never) private func shareOnePagePerCall(_ o: inout BenchOwnership, _ bank: MemoryBank) {
    shareAll(&o, bank, pages: 1)
}
@inline(never) private func shareManyPagesPerCall(_ o: inout BenchOwnership, _ bank: MemoryBank, pages: UInt64) {
    shareAll(&o, bank, pages: pages)
}

/// Moves `pages` frames from `from` to `to` with add_to_physmap(gmfn_range),
/// re-issuing the continuation like a guest's hypercall loop.
@inline(never)
private func moveRange(_ o: inout BenchOwnership, _ d: DomainID,
                       from: UInt64, to: UInt64, pages: UInt64) -> Int {
    var idx = from, gfn = to, size = pages, calls = 0
    while true {
        calls += 1
        let progress = try! o.addToPhysmap(d, .gmfnRange(size: size), idx: idx, gfn: GFN(raw: gfn))
        guard case .continuation(let done) = progress else { return calls }
        idx += done
        gfn += done
        size -= done
    }
}

func runOwnershipBenchmarks() {
    print("== ownership ==")
    print("frame table: \(FrameTable.bytesPerFrame) bytes of metadata per 4 KiB frame"
          + " (\(FrameTable.bytesPerFrame * 262_144 / 1024) KiB for 1 GiB of RAM; holes between banks cost 0)")
    let bank = MemoryBank(base: PhysAddr(0x4000_0000), bytes: 4096 * PageSize.bytes4K)
    var o = try! BenchOwnership(banks: [bank], cache: CountingCache())
    let frames: UInt64 = 4096
    for pages: UInt64 in [1, 512] {
        let repeats: UInt64 = 60
        var shareNs: UInt64 = 0, unshareNs: UInt64 = 0
        var shareBest = UInt64.max
        for _ in 0..<repeats {
            // Every frame of the bank, `pages` at a time: first shares, then the unshares.
            let share = nanoseconds {
                if pages == 1 { shareOnePagePerCall(&o, bank) } else { shareManyPagesPerCall(&o, bank, pages: pages) }
            }
            shareNs += share
            shareBest = min(shareBest, share)
            unshareNs += nanoseconds {
                var f: UInt64 = 0
                while f < frames {
                    try! o.hostUnshareDMA(bank.base.adding(f << PageSize.shift4K), bytes: pages << PageSize.shift4K)
                    f += pages
                }
            }
        }
        // The mean, then the best pass (this machine is shared: the minimum is the
        // figure other runs reproduce, as P2MBench's best of 5).
        print("hostShareDMA   \(pages) page(s) per call: \(shareNs / (repeats * frames)) ns/page"
              + " (best of \(repeats) passes: \(shareBest / frames))")
        print("hostUnshareDMA \(pages) page(s) per call: \(unshareNs / (repeats * frames)) ns/page")
    }

    // gmfn_range: 512 frames moved back and forth, 16 per chunk (XSA-346's
    // held references), each chunk one deferred flush of the old GFNs.
    let d = DomainID(1)
    try! o.createDomain(DomainConfig(id: d), p2m: makeBenchP2M(vmid: 2, frames: o.frames))
    let pages: UInt64 = 512
    for i in 0..<pages { try! o.hostDonateToGuest(bank.firstFrame.adding(i), to: d, at: GFN(raw: 0x1000 + i)) }
    let tlbBefore = o.withDomain(d) { (x: borrowing GuestDomain<OwnershipBenchP2M>) in x.p2m.tlb.operations }!
    let rounds: UInt64 = 100
    var calls = 0
    var moveNs: UInt64 = 0, moveBest = UInt64.max
    for r in 0..<rounds {
        let (from, to): (UInt64, UInt64) = r % 2 == 0 ? (0x1000, 0x4_0000) : (0x4_0000, 0x1000)
        let round = nanoseconds { calls += moveRange(&o, d, from: from, to: to, pages: pages) }
        moveNs += round
        moveBest = min(moveBest, round)
    }
    let tlbOps = o.withDomain(d) { (x: borrowing GuestDomain<OwnershipBenchP2M>) in x.p2m.tlb.operations }! - tlbBefore
    print("gmfn_range 512 pages: \(moveNs / (rounds * pages)) ns/page (best of \(rounds) rounds: \(moveBest / pages)),"
          + " \(calls / Int(rounds)) calls"
          + " (chunks of \(GmfnRangeMove.chunkFrames)), \(tlbOps / Int(rounds)) TLBI range operations per 512 pages")
}
