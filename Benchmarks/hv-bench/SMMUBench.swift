// SMMU benchmark: commands and CMD_SYNCs issued to invalidate an unmapped run
// of contiguous pages, with and without range invalidation (IDR3.RIL), against
// a host model of the SMMU that consumes the command queue synchronously on
// each CMDQ_PROD write (as QEMU does).
import AArch64
import SMMUv3
import Translation
import HostFakes

private struct BenchAllocator: ContiguousFrameAllocator {
    var next: UInt64 = 0x40000
    mutating func allocateContiguous(count: Int, alignmentFrames: Int) -> MFN? {
        let a = UInt64(alignmentFrames)
        let start = (next + a - 1) / a * a
        next = start + UInt64(count)
        return MFN(raw: start)
    }
    mutating func freeContiguous(_ first: MFN, count: Int) {}
}

/// The registers of an SMMU that acknowledges every CR0 write and consumes the
/// command queue at once, counting what it executes.
private final class BenchSMMURegisters: RegisterBlock {
    let idr0: UInt32, idr3: UInt32
    var regs: [Int: UInt64] = [:]
    var consumed = 0
    var syncs = 0
    let memory: SparseMemory
    init(idr0: UInt32, idr3: UInt32, memory: SparseMemory) {
        self.idr0 = idr0
        self.idr3 = idr3
        self.memory = memory
    }
    func read32(_ offset: Int) -> UInt32 {
        switch offset {
        case SMMURegister.idr0: return idr0
        case SMMURegister.idr1: return 0x0273_0010
        case SMMURegister.idr3: return idr3
        case SMMURegister.idr5: return 0x74
        case SMMURegister.cr0ack: return UInt32(regs[SMMURegister.cr0] ?? 0)
        case SMMURegister.gbpa: return UInt32(regs[offset] ?? 0) & ~GBPA.update
        default: return UInt32(truncatingIfNeeded: regs[offset] ?? 0)
        }
    }
    func write32(_ offset: Int, _ value: UInt32) {
        regs[offset] = UInt64(value)
        if offset == SMMURegister.cmdqProd { consume() }
    }
    func read64(_ offset: Int) -> UInt64 { regs[offset] ?? 0 }
    func write64(_ offset: Int, _ value: UInt64) { regs[offset] = value }

    func consume() {
        let base = (regs[SMMURegister.cmdqBase] ?? 0) & QueueBase.addressMask
        let log2 = UInt32((regs[SMMURegister.cmdqBase] ?? 0) & QueueBase.log2SizeMask)
        var cons = QueueIndex(UInt32(regs[SMMURegister.cmdqCons] ?? 0), log2Entries: log2)
        let prod = QueueIndex(UInt32(regs[SMMURegister.cmdqProd] ?? 0), log2Entries: log2)
        while !prod.isEmpty(consumer: cons) {
            let op = memory.load64(PhysAddr(base + UInt64(cons.index) * Command.bytes)) & Command.opcodeMask
            consumed += 1
            if op == UInt64(Command.Opcode.sync.rawValue) { syncs += 1 }
            cons = cons.advanced()
        }
        regs[SMMURegister.cmdqCons] = UInt64(cons.position)
    }
}

func runSMMUBenchmarks() {
    print("== smmu: invalidating an unmapped run of contiguous 4 KiB pages (host model, 256-entry CMDQ) ==")
    print("pages      RIL  mode     TLBI cmds  CMD_SYNCs  ns/unmap")
    for ril in [true, false] {
        for mode in [TranslationMode.stage1, .stage2] {
            for pages: UInt64 in [1, 16, 512, 262_144, 1000, 262_143] {
                let memory = SparseMemory()
                let registers = BenchSMMURegisters(idr0: 0x0d44_101b, idr3: ril ? 0x1414 : 0x1014, memory: memory)
                var allocator = BenchAllocator()
                var smmu: SMMU<BenchSMMURegisters, SparseMemory, CountingCache>
                do {
                    smmu = try SMMU.bringUp(registers: registers, memory: memory, cache: CountingCache(),
                                            allocator: &allocator, configuration: SMMUConfiguration(mode: mode))
                } catch {
                    print("bring-up failed")
                    return
                }
                let scope: InvalidationScope = mode == .stage1 ? .stage1(asid: 1, vmid: 0) : .stage2(vmid: 1)
                let commandsBefore = registers.consumed, syncsBefore = registers.syncs
                do { try smmu.invalidate(scope, first: PageNumber(0x40000), pages: pages) } catch {
                    print("invalidate failed")
                    return
                }
                let commands = registers.consumed - commandsBefore
                let syncs = registers.syncs - syncsBefore
                // Timing: repeat the same invalidation.
                let rounds = 200
                let clock = ContinuousClock()
                let start = clock.now
                for _ in 0..<rounds { try? smmu.invalidate(scope, first: PageNumber(0x40000), pages: pages) }
                let elapsed = clock.now - start
                let ns = (elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
                    / Int64(rounds)
                let modeName = mode == .stage1 ? "stage-1" : "stage-2"
                func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
                print(pad(String(pages), 11) + pad(ril ? "yes" : "no", 5) + pad(modeName, 9)
                      + pad(String(commands - syncs), 11) + pad(String(syncs), 11) + String(ns))
            }
        }
    }
    print("(without RIL, more than \(InvalidationPlanner.defaultMaximumCommands) pages fall back to one TLBI_NH_ASID / TLBI_S12_VMALL)")
    runP2MFlushThroughSMMU()
}

/// The whole path: P2M unmap + commit, forwarded by `SMMUDomainHooks` (stage-1
/// mirror or shared stage 2) to the SMMU's command queue.
private func runP2MFlushThroughSMMU() {
    print("== smmu: P2M unmap + commit through SMMUDomainHooks (P2M full-flush threshold 512 pages) ==")
    print("pages      RIL  mode     TLBI cmds  CMD_SYNCs")
    for ril in [true, false] {
        for mode in [TranslationMode.stage1, .stage2] {
            for pages: UInt64 in [1, 16, 512, 262_144] {
                let memory = SparseMemory()
                let registers = BenchSMMURegisters(idr0: 0x0d44_101b, idr3: ril ? 0x1414 : 0x1014, memory: memory)
                var allocator = BenchAllocator()
                let handle: SMMUHandle<BenchSMMURegisters, SparseMemory, CountingCache>
                do throws(BringUpError) {
                    handle = SMMUHandle(try SMMU.bringUp(registers: registers, memory: memory, cache: CountingCache(),
                                                         allocator: &allocator, configuration: SMMUConfiguration(mode: mode)))
                } catch { return print("bring-up failed") }
                let hooks: SMMUDomainHooks<BenchSMMURegisters, SparseMemory, CountingCache, FreeListPool<SparseMemory>>
                do throws(Stage1MirrorError) {
                    hooks = try SMMUDomainHooks.make(handle: handle, asid: 1, ipaBits: 39,
                                                     pool: FreeListPool(memory: memory, first: MFN(raw: 0x80000), count: 2048),
                                                     allocator: &allocator)
                } catch { return print("mirror failed") }
                do throws(P2MError) {
                    var p2m = try P2M<SMMUBenchEnvironment>(configuration: P2MConfiguration(vmid: 1, ipaBits: 39, paRange: .bits44,
                                                                      vmidWidth: .bits16),
                                      memory: memory, pool: FreeListPool(memory: memory, first: MFN(raw: 0x90000), count: 2048),
                                      tlb: CountingTLB(), iommu: hooks, listener: NoEntryListener(), observer: hooks)
                    var batch = FlushBatch(releaser: NoHeldReferences())
                    try p2m.map(GFN(raw: 0x40000), to: MFN(raw: 0x40000), count: pages, as: .ramRW, flushing: &batch, holding: lockHeld)
                    guard (try? p2m.commit(&batch, holding: lockHeld)) != nil else { return print("commit failed: the SMMU did not confirm") }
                    let commandsBefore = registers.consumed, syncsBefore = registers.syncs
                    try p2m.unmap(GFN(raw: 0x40000), count: pages, flushing: &batch, holding: lockHeld)
                    guard (try? p2m.commit(&batch, holding: lockHeld)) != nil else { return print("commit failed: the SMMU did not confirm") }
                    let commands = registers.consumed - commandsBefore
                    let syncs = registers.syncs - syncsBefore
                    func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
                    print(pad(String(pages), 11) + pad(ril ? "yes" : "no", 5) + pad(mode == .stage1 ? "stage-1" : "stage-2", 9)
                          + pad(String(commands - syncs), 11) + String(syncs))
                } catch { return print("p2m failed: \(error)") }
            }
        }
    }
}

private enum SMMUBenchEnvironment: P2MEnvironment {
    typealias Memory = SparseMemory
    typealias Pool = FreeListPool<SparseMemory>
    typealias TLB = CountingTLB
    typealias IOMMU = SMMUDomainHooks<BenchSMMURegisters, SparseMemory, CountingCache, FreeListPool<SparseMemory>>
    typealias Observer = IOMMU
}
