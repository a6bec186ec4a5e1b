import AArch64
import Translation
import Ownership
import Platform

/// The board's one P2M type (SMMUScenarios.swift).
typealias OwnershipP2M = BoardP2M
typealias BoardOwnership = PageOwnership<BoardCache, OwnershipP2M>

/// Page state on the board: a frame table for every RAM frame the DTB lists,
/// placed in frames from the boot allocator, and seed 004's rule on a real
/// page: a page the host shares for DMA cannot be donated until every share
/// is undone, and a claim that RAM is not RAM is refused.
enum OwnershipScenarios {
    /// The whole frames of each memory bank the DTB lists, as the frame table
    /// takes them (here and for the Linux host's frame table).
    static func frameTableBanks(_ platform: PlatformDescription) -> [MemoryBank] {
        var banks: [MemoryBank] = []
        for bank in platform.memoryBanks {
            let usable = bank.framesInside
            banks.append(MemoryBank(base: usable.first.address, bytes: usable.count << PageSize.shift4K))
        }
        return banks
    }

    static func run(platform: PlatformDescription, frames: inout FrameAllocator) {
        let banks = frameTableBanks(platform)
        let bytes = FrameTableStorage.bytesNeeded(for: banks)
        let tableFrames = (bytes + PageSize.offsetMask4K) >> PageSize.shift4K
        let tableBase: MFN
        let page: MFN
        do throws(FrameAllocatorError) {
            tableBase = try frames.allocate(count: tableFrames)
            page = try frames.allocate()
        } catch {
            Checks.expect(false, "frames for the frame table")
            return
        }
        var ownership: BoardOwnership
        do throws(OwnershipError) {
            ownership = try BoardOwnership(banks: banks,
                                           placingFrameTableAt: UnsafeMutableRawPointer(bitPattern: UInt(tableBase.address.raw))!,
                                           cache: BoardCache())
        } catch {
            Checks.expect(false, "frame table for every RAM frame of the DTB's banks")
            return
        }
        Console.say("ownership: frame table for %d frames, %d bytes each (%d KiB at %x)\n",
                    UInt64(ownership.frames.frameCount), UInt64(FrameTable.bytesPerFrame), bytes >> 10,
                    tableBase.address.raw)
        Checks.expect(ownership.frames.frameCount > 0 && ownership.state(of: page) == .hostOwned,
                      "frame table: every RAM frame starts host-owned")

        let pa = page.address
        var sequence = true
        do throws(OwnershipError) {
            try ownership.hostShareDMA(pa, bytes: PageSize.bytes4K, isRAM: true)
            try ownership.hostShareDMA(pa, bytes: PageSize.bytes4K, isRAM: true)
        } catch { sequence = false }
        sequence = sequence && ownership.state(of: page)?.dmaShares == 2
        var refused = false
        do throws(OwnershipError) { try ownership.hostDonateToHypervisor(page) } catch { refused = true }
        let unchanged = ownership.state(of: page)?.dmaShares == 2
        do throws(OwnershipError) {
            try ownership.hostUnshareDMA(pa, bytes: PageSize.bytes4K)
            try ownership.hostUnshareDMA(pa, bytes: PageSize.bytes4K)
            try ownership.hostDonateToHypervisor(page)
            try ownership.hypervisorDonateToHost(page)
        } catch { sequence = false }
        Checks.expect(sequence && refused && unchanged,
                      "seed 004: shared twice for DMA, donation refused, unshared twice, donation accepted")

        var lie = false
        do throws(OwnershipError) { try ownership.hostShareDMA(pa, bytes: PageSize.bytes4K, isRAM: false) } catch {
            if case .EINVAL = error { lie = true }
        }
        Checks.expect(lie && ownership.state(of: page) == .hostOwned, "seed 004: RAM claimed as non-RAM is EINVAL, nothing changes")
    }
}
