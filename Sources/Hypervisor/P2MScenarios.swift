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

    static func run(cpu: CPUIDRegisters, frames: inout FrameAllocator) {
        let pool: FramePool
        let block: MFN
        let pages: MFN
        do throws(FrameAllocatorError) {
            pool = try FramePool(frames: 32, from: &frames)
            block = try frames.allocate(count: 512, alignment: 512)
            pages = try frames.allocate(count: pageCount)
        } catch {
            Checks.expect(false, "frames for the stage-2 walker scenario")
            return
        }
        var p2m: PlainBoardP2M
        do throws(P2MError) {
            p2m = try PlainBoardP2M(configuration: P2MConfiguration(vmid: vmid, cpu: cpu),
                                    memory: IdentityMemory(), pool: pool, tlb: BoardTLB())
        } catch {
            Checks.expect(false, "P2M for the stage-2 walker scenario")
            return
        }
        let walker = Stage2Walker(vtcr: p2m.vtcr.raw, vttbr: p2m.vttbr.raw)
        Console.say("p2m: VMID 2 on the CPU's stage 2: VTCR_EL2 %x, range TLBI: %y\n", p2m.vtcr.raw,
                    Console.flag(p2m.tlb.hasRangeInvalidation))

        let lock = P2MLock()
        let held = lock.acquire()
        var batch = FlushBatch(releaser: FrameReferenceReleaser())
        var ok = true
        do throws(P2MError) { try p2m.map(blockGFN, to: block, count: 512, as: .ramRW, flushing: &batch, holding: held) } catch { ok = false }
        _ = p2m.commitCPU(&batch, holding: held)
        let probe = blockGFN.address.adding(0x238 + holeIndex * PageSize.bytes4K)
        ok = ok && p2m.lookup(blockGFN)?.order == .block2M
            && walker.read(probe) == .translated(block.address.adding(0x238 + holeIndex * PageSize.bytes4K))
        Checks.expect(ok, "stage 2: a 2 MiB block mapping translates through the CPU's own walker")

        // The probe above left the block in the TLB: the split must invalidate it.
        ok = true
        do throws(P2MError) { try p2m.unmap(blockGFN.adding(holeIndex), count: 1, flushing: &batch, holding: held) } catch { ok = false }
        _ = p2m.commitCPU(&batch, holding: held)
        ok = ok && walker.read(probe) == .stage2Fault(.translation(level: 3))
        var intact = true
        for i in 0..<UInt64(512) where i != holeIndex {
            let ipa = blockGFN.adding(i).address
            if walker.read(ipa) != .translated(block.adding(i).address) { intact = false }
        }
        Checks.expect(ok && intact,
                      "stage 2: a 4 KiB unmap inside the block faults, the other 511 pages keep their frames (split through BBM)")

        ok = true
        do throws(P2MError) { try p2m.map(pagesGFN, to: pages, count: pageCount, as: .ramRW, flushing: &batch, holding: held) } catch { ok = false }
        _ = p2m.commitCPU(&batch, holding: held)
        for i in 0..<pageCount where walker.write(pagesGFN.adding(i).address) != .translated(pages.adding(i).address) { ok = false }
        do throws(P2MError) {
            try p2m.changeType(pagesGFN, count: pageCount, from: .ramRW, to: .ramRO, flushing: &batch, holding: held)
        } catch { ok = false }
        _ = p2m.commitCPU(&batch, holding: held)
        for i in 0..<pageCount {
            let ipa = pagesGFN.adding(i).address
            guard case .stage2Fault(let fault) = walker.write(ipa), fault.isPermission,
                  walker.read(ipa) == .translated(pages.adding(i).address) else { ok = false; continue }
        }
        Checks.expect(ok, "stage 2: changeType ramRW -> ramRO: writes take a permission fault, reads still translate")

        ok = true
        do throws(P2MError) { try p2m.unmap(pagesGFN, count: pageCount, flushing: &batch, holding: held) } catch { ok = false }
        let stats = p2m.commitCPU(&batch, holding: held)
        for i in 0..<pageCount {
            // The emptied leaf table may have been unlinked too: a fault at level 2 or 3.
            guard case .stage2Fault(let fault) = walker.read(pagesGFN.adding(i).address),
                  fault.isTranslation else { ok = false; continue }
        }
        Checks.expect(ok, "stage 2: unmapping 16 pages leaves all 16 faulting (range TLBI where FEAT_TLBIRANGE)")
        Console.say("p2m: 16-page unmap took %d CPU invalidation call(s)\n", UInt64(stats.tlbiOperations))

        var steps = 0
        while p2m.relinquish(budget: 64, flushing: &batch, holding: held) == .more { _ = p2m.commitCPU(&batch, holding: held); steps += 1 }
        _ = p2m.commitCPU(&batch, holding: held)
        var gone = true
        for i in 0..<UInt64(512) {
            guard case .stage2Fault = walker.read(blockGFN.adding(i).address) else { gone = false; continue }
        }
        walker.restore()
        lock.release(held)
        Checks.expect(gone && p2m.pool.availableTablePages + p2m.tablePagesInUse == pool.count,
                      "stage 2: relinquish in bounded steps unmaps everything and returns every table page to the pool")
    }
}
