import AArch64
import Translation
import Ownership
import Platform
import ArchC

/// Every board P2M runs on the same hardware; domains differ only in their hooks.
protocol BoardP2MEnvironment: P2MEnvironment where Memory == IdentityMemory, Pool == FramePool, TLB == BoardTLB {}
/// A P2M no SMMU shares: the board's one P2M type without hooks (SMMUScenarios.swift).
typealias PlainBoardP2M = BoardP2M

/// The P2M against the real stage-2 walker. Every answer comes from
/// `AT S12E1R/W` (Stage2Walker): the hardware walks the tables the P2M wrote,
/// so a descriptor the architecture does not accept, a wrong level, a bad
/// concatenated root or a split that lost pages shows. (QEMU's AT walks the
/// tables afresh; on hardware AT may also answer from the TLB.)
enum P2MScenarios {
    static let vmid: UInt16 = 2
    static let blockGFN = GFN(0x200)            // IPA 2 MiB: one 2 MiB block
    static let pagesGFN = GFN(0x1_0000)         // IPA 256 MiB: sixteen 4 KiB pages
    static let pageCount: UInt64 = 16
    static let holeIndex: UInt64 = 5            // the 4 KiB unmapped inside the block
    /// The P2M's table pages (a pool's `count` is the frames it was made with).
    static let poolFrames = 32

    /// How every table page starts (`IdentityMemory.zeroFrame`): the middle
    /// one of three dirty pages zeroed, by `DC ZVA` with this CPU's block
    /// (when DCZID_EL0 allows it) and by the stores of the fallback, and the
    /// pages either side left as they were.
    static func checkZeroPage(frames: inout FrameAllocator) {
        guard let first = try? frames.allocate(count: 3) else {
            Checks.expect(false, "frames for the page-zeroing check")
            return
        }
        let base = first.address.raw
        let id = DataCacheZeroID(raw: arch_read_dczid_el0())
        let step = id.zeroingStep(forAligned: PageSize.bytes4K)
        Console.say("zero page: DC ZVA %y, block %d bytes\n", Console.flag(step != nil), id.blockBytes)
        Checks.expect(zeroesOnlyTheMiddlePage(base, step: step) && zeroesOnlyTheMiddlePage(base, step: nil),
                      "a dirty page zeroed (DC ZVA, then stores), the pages either side untouched")
        try? frames.free(first, count: 3)
    }

    /// Three pages from `base` filled with non-zero words, the middle one
    /// given to `IdentityMemory.zeroPage`: whether it alone now reads zero.
    @inline(never)
    static func zeroesOnlyTheMiddlePage(_ base: UInt64, step: UInt64?) -> Bool {
        let words = UnsafeMutablePointer<UInt64>(bitPattern: UInt(base))!
        let perPage = Int(PageSize.bytes4K / 8)
        var i = 0
        while i < 3 &* perPage {
            words[i] = ~UInt64(i)
            i &+= 1
        }
        IdentityMemory.zeroPage(base &+ PageSize.bytes4K, step: step)
        i = 0
        while i < 3 &* perPage {
            if words[i] != (i >= perPage && i < 2 &* perPage ? 0 : ~UInt64(i)) { return false }
            i &+= 1
        }
        return true
    }

    static func run(cpu: CPUIDRegisters, frames: inout FrameAllocator) {
        checkZeroPage(frames: &frames)
        let pool: FramePool
        let block: MFN
        let pages: MFN
        do throws(FrameAllocatorError) {
            pool = try FramePool(frames: poolFrames, from: &frames)
            block = try frames.allocate(count: 512, alignment: 512)
            pages = try frames.allocate(count: pageCount)
        } catch {
            Checks.expect(false, "frames for the stage-2 walker scenario")
            return
        }
        var p2m: PlainBoardP2M
        do throws(P2MError) {
            p2m = try PlainBoardP2M(configuration: P2MConfiguration(vmid: vmid, cpu: cpu), pool: pool)
        } catch {
            Checks.expect(false, "P2M for the stage-2 walker scenario")
            return
        }
        let walker = Stage2Walker(vtcr: p2m.vtcr.raw, vttbr: p2m.vttbr.raw)
        Console.say("p2m: VMID 2 on the CPU's stage 2: VTCR_EL2 %x, range TLBI: %y\n", p2m.vtcr.raw,
                    Console.flag(p2m.tlb.hasRangeInvalidation))

        let lock = P2MLock()
        let held = lock.acquire()
        var batch = BoardBatch.make()
        var ok = true
        do throws(P2MError) { try p2m.map(blockGFN, to: block, count: 512, as: .ramRW, flushing: &batch, holding: held) } catch { ok = false }
        _ = p2m.commitCPU(&batch, holding: held)
        let probe = blockGFN.address.adding(0x238 + holeIndex * PageSize.bytes4K)
        ok = ok && p2m.lookup(blockGFN)?.order == .block2M
            && pageIs(.reads(block.address.adding(0x238 + holeIndex * PageSize.bytes4K)), walker, probe)
        Checks.expect(ok, "stage 2: a 2 MiB block mapping translates through the CPU's own walker")

        // The probe above left the block in the TLB: the split must invalidate it.
        ok = true
        do throws(P2MError) { try p2m.unmap(blockGFN.adding(holeIndex), count: 1, flushing: &batch, holding: held) } catch { ok = false }
        _ = p2m.commitCPU(&batch, holding: held)
        ok = ok && pageIs(.faultsAtLevel3, walker, probe)
        let intact = pagesAre(.reads(block.address), walker, blockGFN, count: 512, skipping: holeIndex)
        Checks.expect(ok && intact,
                      "stage 2: a 4 KiB unmap inside the block faults, the other 511 pages keep their frames (split through BBM)")

        ok = true
        do throws(P2MError) { try p2m.map(pagesGFN, to: pages, count: pageCount, as: .ramRW, flushing: &batch, holding: held) } catch { ok = false }
        _ = p2m.commitCPU(&batch, holding: held)
        ok = pagesAre(.writes(pages.address), walker, pagesGFN, count: pageCount) && ok
        do throws(P2MError) {
            try p2m.changeType(pagesGFN, count: pageCount, from: .ramRW, to: .ramRO, flushing: &batch, holding: held)
        } catch { ok = false }
        _ = p2m.commitCPU(&batch, holding: held)
        ok = pagesAre(.readOnly(pages.address), walker, pagesGFN, count: pageCount) && ok
        Checks.expect(ok, "stage 2: changeType ramRW -> ramRO: writes take a permission fault, reads still translate")

        ok = true
        do throws(P2MError) { try p2m.unmap(pagesGFN, count: pageCount, flushing: &batch, holding: held) } catch { ok = false }
        let stats = p2m.commitCPU(&batch, holding: held)
        // The emptied leaf table may have been unlinked too: a fault at level 2 or 3.
        ok = pagesAre(.translationFault, walker, pagesGFN, count: pageCount) && ok
        Checks.expect(ok, "stage 2: unmapping 16 pages leaves all 16 faulting (range TLBI where FEAT_TLBIRANGE)")
        Console.say("p2m: 16-page unmap took %d CPU invalidation call(s)\n", UInt64(stats.tlbiOperations))

        while p2m.relinquish(budget: 64, flushing: &batch, holding: held) == .more { _ = p2m.commitCPU(&batch, holding: held) }
        _ = p2m.commitCPU(&batch, holding: held)
        let gone = pagesAre(.fault, walker, blockGFN, count: 512)
        walker.restore()
        lock.release(held)
        Checks.expect(gone && p2m.pool.availableTablePages + p2m.tablePagesInUse == poolFrames,
                      "stage 2: relinquish in bounded steps unmaps everything and returns every table page to the pool")
    }

    /// What a scenario expects the CPU's walker to answer for a page.
    enum PageAnswer {
        /// A read translates to this address (for a run of pages: this plus the page's offset).
        case reads(PhysAddr)
        /// A write translates so.
        case writes(PhysAddr)
        /// A write takes a stage-2 permission fault and a read translates so.
        case readOnly(PhysAddr)
        /// A read takes a stage-2 translation fault at level 3.
        case faultsAtLevel3
        /// A read takes a stage-2 translation fault at any level.
        case translationFault
        /// A read takes a stage-2 fault of any kind.
        case fault
    }

    /// Whether the walker answers as `expected` says for `ipa`, an expected
    /// address taken `offset` bytes on. One copy of each test, not one per check.
    @inline(never)
    static func pageIs(_ expected: PageAnswer, _ walker: Stage2Walker, _ ipa: IPA, offset: UInt64 = 0) -> Bool {
        var expected = expected
        if case .readOnly(let base) = expected {
            guard case .stage2Fault(let fault) = walker.write(ipa), fault.isPermission else { return false }
            expected = .reads(base)
        }
        var write = false
        if case .writes = expected { write = true }
        switch (expected, write ? walker.write(ipa) : walker.read(ipa)) {
        case (.reads(let base), .translated(let address)), (.writes(let base), .translated(let address)):
            return address == base.adding(offset)
        case (.faultsAtLevel3, .stage2Fault(.translation(level: 3))), (.fault, .stage2Fault): return true
        case (.translationFault, .stage2Fault(let fault)): return fault.isTranslation
        default: return false
        }
    }

    /// Whether every page of the `count` from `gfn` but `skipping` answers
    /// as `expected` says, an expected address offset by the page's. Every
    /// page is walked, one loop for every such check.
    @inline(never)
    static func pagesAre(_ expected: PageAnswer, _ walker: Stage2Walker, _ gfn: GFN, count: UInt64,
                         skipping: UInt64 = .max) -> Bool {
        var ok = true
        var i: UInt64 = 0
        while i < count {
            // Every caller passes a count of at most 512: i * 4 KiB cannot wrap.
            if i != skipping && !pageIs(expected, walker, gfn.adding(i).address, offset: i &* PageSize.bytes4K) {
                ok = false
            }
            i &+= 1
        }
        return ok
    }
}
