// P2M benchmark: map/unmap workloads that other page-table engines publish figures
// for (per page, one large call, 2 MiB blocks, random pages), so the figures compare
// on the same machine. Each figure is the best of 5 runs, each on a fresh P2M and
// pool built outside the timed region. Identity mappings
// (MFN = GFN), type ramRW, 40-bit IPA. A phase's timed region is its calls plus the
// commit of its flush batch (the TLB fake only counts, so that commit is cheap).
import AArch64
import HostFakes
import Translation

/// Flat host RAM for table pages; counts descriptor stores. Counters live behind
/// pointers so the hot path has no exclusivity checks.
struct BenchMemory: PhysicalMemory {
    let words: UnsafeMutablePointer<UInt64>
    let baseFrame: UInt64
    let frames: Int
    let counter: UnsafeMutablePointer<Int>

    init(frames: Int, baseFrame: UInt64 = 0x100_0000) {
        self.frames = frames
        self.baseFrame = baseFrame
        words = .allocate(capacity: frames * 512)
        words.initialize(repeating: 0, count: frames * 512)
        counter = .allocate(capacity: 1)
        counter.pointee = 0
    }
    @inline(__always) func slot(_ a: PhysAddr) -> UnsafeMutablePointer<UInt64> {
        words + Int((a.raw &- (baseFrame << 12)) >> 3)
    }
    @inline(__always) func load64(_ address: PhysAddr) -> UInt64 { slot(address).pointee }
    @inline(__always) func store64(_ address: PhysAddr, _ value: UInt64) {
        slot(address).pointee = value
        counter.pointee &+= 1
    }
    func zeroFrame(_ frame: MFN) { slot(frame.address).update(repeating: 0, count: 512) }
    var stores: Int { counter.pointee }
}

struct BenchPool: TablePageSource {
    let memory: BenchMemory
    var free: [UInt64]
    /// One count per frame, behind a pointer like the memory's words.
    let counts: UnsafeMutablePointer<UInt16>
    init(memory: BenchMemory) {
        self.memory = memory
        free = (0..<UInt64(memory.frames)).reversed().map { memory.baseFrame + $0 }
        counts = .allocate(capacity: memory.frames)
        counts.initialize(repeating: 0, count: memory.frames)
    }
    mutating func allocateTablePage() -> MFN? {
        guard let f = free.popLast() else { return nil }
        memory.zeroFrame(MFN(raw: f))
        counts[Int(f &- memory.baseFrame)] = 0
        return MFN(raw: f)
    }
    @inline(__always) func validEntryCount(_ frame: MFN) -> Int { Int(counts[Int(frame.raw &- memory.baseFrame)]) }
    @inline(__always) mutating func setValidEntryCount(_ frame: MFN, _ count: Int) {
        counts[Int(frame.raw &- memory.baseFrame)] = UInt16(truncatingIfNeeded: count)
    }
    mutating func allocateContiguousTablePages(_ count: Int) -> MFN? {
        // Fresh pool: the lowest frames are free, contiguous and aligned.
        guard count <= free.count, memory.baseFrame % UInt64(count) == 0,
              free.suffix(count).reversed() == Array(memory.baseFrame..<memory.baseFrame + UInt64(count)) else { return nil }
        free.removeLast(count)
        for i in 0..<UInt64(count) { memory.zeroFrame(MFN(raw: memory.baseFrame + i)) }
        for i in 0..<count { counts[i] = 0 }
        return MFN(raw: memory.baseFrame)
    }
    mutating func freeTablePage(_ frame: MFN) { free.append(frame.raw) }
    var availableTablePages: Int { free.count }
}

struct BenchTLB: TLBMaintenance {
    var operations = 0
    mutating func invalidateStage2(_ vttbr: VTTBR, ipa: IPA, pages: UInt64) { operations += 1 }
    mutating func invalidateVMID(_ vttbr: VTTBR) { operations += 1 }
    mutating func synchronize() {}
    mutating func publishNewEntries() {}
}

enum BenchEnvironment: P2MEnvironment {
    typealias Memory = BenchMemory
    typealias Pool = BenchPool
    typealias TLB = BenchTLB
}
typealias BenchP2M = P2M<BenchEnvironment>

struct PhaseResult {
    var nanoseconds = Double.infinity
    var descriptorWrites = 0
    var tablePages = 0
    var tlbiOperations = 0
}

/// One workload: a list of (gfn, count) calls, mapped then unmapped.
struct Workload {
    /// The same workload's letter in hafnium-mm-bench (/work/shared/tools), if it has one.
    let hafnium: String
    let name: String
    let calls: [(UInt64, UInt64)]
    let largestBlock: PageOrder
    let policy: P2MMapPolicy
    var pages: UInt64 { calls.reduce(0) { $0 + $1.1 } }
}

/// `only`: Hafnium letters to run (all workloads when empty); `hafnium`: that
/// bench's ns/call per "letter phase" (e.g. "c map"), for the ratio column.
func runP2MBenchmarks(only: Set<String> = [], hafnium: [String: Double] = [:]) {
    let memory = BenchMemory(frames: 12_288)
    let configuration = P2MConfiguration(vmid: 1, ipaBits: 40, paRange: .bits40, vmidWidth: .bits8)
    let base: UInt64 = 0x8_0000  // IPA 0x8000_0000
    let pages1G: UInt64 = 262_144

    var random: [(UInt64, UInt64)] = []
    var x: UInt64 = 42
    for _ in 0..<10_000 {
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        random.append((x >> 40, 1))  // top 24 bits: a page index over 64 GiB
    }
    let workloads = [
        Workload(hafnium: "a", name: "262144 x 4K, one call per page", calls: (0..<pages1G).map { (base + $0, 1) },
                 largestBlock: .page4K, policy: .insertOnly),
        Workload(hafnium: "", name: "  same, blocks allowed (re-merges)", calls: (0..<pages1G).map { (base + $0, 1) },
                 largestBlock: .block1G, policy: .insertOnly),
        Workload(hafnium: "", name: "262144 x 4K, one call", calls: [(base, pages1G)],
                 largestBlock: .page4K, policy: .insertOnly),
        Workload(hafnium: "", name: "  same, blocks allowed (one 1G block)", calls: [(base, pages1G)],
                 largestBlock: .block1G, policy: .insertOnly),
        Workload(hafnium: "c", name: "1 GiB as 512 x 2M calls", calls: (0..<UInt64(512)).map { (base + $0 * 512, 512) },
                 largestBlock: .block1G, policy: .insertOnly),
        Workload(hafnium: "b", name: "1 GiB as one 1G call", calls: [(base, pages1G)],
                 largestBlock: .block1G, policy: .insertOnly),
        Workload(hafnium: "d", name: "10000 x 4K random (xorshift 42)", calls: random,
                 largestBlock: .block1G, policy: .replace),
    ]

    print("p2m: 40-bit IPA, ramRW, identity (MFN = GFN), best of 5, fresh P2M per run; 4K workloads cap leaves at")
    print("     4 KiB (largestBlock: .page4K) unless marked; TLBI = CPU TLB invalidation ops in the phase")
    print("     (its batch commit plus any break-before-make); tables = table pages in use after the phase")
    print("     hf = hafnium-mm-bench's workload letter" + (hafnium.isEmpty ? "" : "; ratio = ns/call here / there"))
    print(pad("hf", 4) + pad("workload", 40) + pad("phase", 7, right: true) + pad("ns/page", 10, right: true)
          + pad("ns/call", 12, right: true) + pad("desc writes", 13, right: true)
          + pad("tables", 8, right: true) + pad("TLBI", 6, right: true) + (hafnium.isEmpty ? "" : pad("ratio", 8, right: true)))
    for w in workloads where only.isEmpty || only.contains(w.hafnium) {
        var map = PhaseResult(), unmap = PhaseResult()
        for _ in 0..<5 {
            guard var p2m = try? BenchP2M(configuration: configuration, memory: memory,
                                          pool: BenchPool(memory: memory), tlb: BenchTLB()) else {
                print("p2m: cannot create the P2M")
                return
            }
            var batch = FlushBatch(releaser: NoHeldReferences())
            let clock = ContinuousClock()
            var writes = memory.stores
            var tlbi = p2m.tlb.operations
            var failed = false
            let mapTime = clock.measure {
                for (gfn, count) in w.calls {
                    do {
                        try p2m.map(GFN(raw: gfn), to: MFN(raw: gfn), count: count, as: .ramRW,
                                    policy: w.policy, largestBlock: w.largestBlock, flushing: &batch, holding: lockHeld)
                    } catch { failed = true }
                }
                p2m.commit(&batch, holding: lockHeld)
            }
            if failed { print("p2m: map failed in \(w.name)"); p2m.commit(&batch, holding: lockHeld); return }
            map.nanoseconds = min(map.nanoseconds, nanoseconds(mapTime))
            map.descriptorWrites = memory.stores - writes
            map.tablePages = p2m.tablePagesInUse
            map.tlbiOperations = p2m.tlb.operations - tlbi
            writes = memory.stores
            tlbi = p2m.tlb.operations
            let unmapTime = clock.measure {
                for (gfn, count) in w.calls {
                    do { try p2m.unmap(GFN(raw: gfn), count: count, flushing: &batch, holding: lockHeld) } catch { failed = true }
                }
                p2m.commit(&batch, holding: lockHeld)
            }
            if failed { print("p2m: unmap failed in \(w.name)"); return }
            unmap.nanoseconds = min(unmap.nanoseconds, nanoseconds(unmapTime))
            unmap.descriptorWrites = memory.stores - writes
            unmap.tablePages = p2m.tablePagesInUse
            unmap.tlbiOperations = p2m.tlb.operations - tlbi
        }
        for (phase, r) in [("map", map), ("unmap", unmap)] {
            let perPage = r.nanoseconds / Double(w.pages), perCall = r.nanoseconds / Double(w.calls.count)
            var ratio = ""
            if !hafnium.isEmpty {
                ratio = hafnium[w.hafnium + " " + phase].map { fixed(perCall / $0) } ?? "-"
            }
            print(pad(w.hafnium.isEmpty ? "" : w.hafnium + ")", 4) + pad(phase == "map" ? w.name : "", 40)
                  + pad(phase, 7, right: true)
                  + pad(fixed(perPage), 10, right: true) + pad(fixed(perCall), 12, right: true)
                  + pad(String(r.descriptorWrites), 13, right: true) + pad(String(r.tablePages), 8, right: true)
                  + pad(String(r.tlbiOperations), 6, right: true) + pad(ratio, 8, right: true))
        }
    }
    if only.isEmpty || only.contains("b") {
        runP2MBlockPairs(configuration: configuration, memory: memory, base: base, hafnium: hafnium)
    }
}

/// hafnium-mm-bench's b'): a single 1 GiB call is at clock resolution, so 10,000
/// back-to-back (map 1 GiB block; unmap it) pairs on one P2M are timed as a whole.
/// Each unmap's flush batch is committed before the next map, as a hypervisor must
/// before it reuses the range (the TLB fake only counts). ns/call = pair time / 2.
func runP2MBlockPairs(configuration: P2MConfiguration, memory: BenchMemory, base: UInt64,
                      hafnium: [String: Double]) {
    let pairs = 10_000
    var best = Double.infinity
    var writes = 0, tables = 0, tlbi = 0
    for _ in 0..<5 {
        guard var p2m = try? BenchP2M(configuration: configuration, memory: memory,
                                      pool: BenchPool(memory: memory), tlb: BenchTLB()) else {
            print("p2m: cannot create the P2M")
            return
        }
        var batch = FlushBatch(releaser: NoHeldReferences())
        var failed = false
        let stores = memory.stores, operations = p2m.tlb.operations
        let time = ContinuousClock().measure {
            for _ in 0..<pairs {
                do {
                    try p2m.map(GFN(raw: base), to: MFN(raw: base), count: 262_144, as: .ramRW,
                                policy: .insertOnly, largestBlock: .block1G, flushing: &batch, holding: lockHeld)
                    try p2m.unmap(GFN(raw: base), count: 262_144, flushing: &batch, holding: lockHeld)
                } catch { failed = true }
                p2m.commit(&batch, holding: lockHeld)
            }
        }
        if failed { print("p2m: map/unmap failed in the 1G pairs"); return }
        best = min(best, nanoseconds(time))
        writes = memory.stores - stores
        tables = p2m.tablePagesInUse
        tlbi = p2m.tlb.operations - operations
    }
    let perCall = best / Double(2 * pairs)
    print(pad("b')", 4) + pad("1 GiB map+unmap pair x 10000, one P2M", 40) + pad("pair", 7, right: true)
          + pad("-", 10, right: true) + pad(fixed(perCall), 12, right: true)
          + pad(String(writes), 13, right: true) + pad(String(tables), 8, right: true)
          + pad(String(tlbi), 6, right: true)
          + (hafnium.isEmpty ? "" : pad(hafnium["b' map+unmap"].map { fixed(perCall / $0) } ?? "-", 8, right: true)))
}

private func nanoseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
}

private func fixed(_ v: Double) -> String {
    let hundredths = Int(v * 100 + 0.5)
    let frac = hundredths % 100
    return "\(hundredths / 100)." + (frac < 10 ? "0" : "") + "\(frac)"
}

private func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - s.count))
    return right ? fill + s : s + fill
}
