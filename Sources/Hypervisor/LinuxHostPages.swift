import AArch64
import Translation
import Ownership
import Platform
import HostExits

/// The page-state operations the control device runs for the host: the
/// frame table decides (Ownership: seed 004's DMA-share count, owner checks),
/// and a frame that leaves the host leaves its stage 2, which is also its
/// DMA translation (shared with the SMMU, or mirrored into it), and comes
/// back on reclaim. A state change whose stage-2 edit fails is undone, so
/// every refusal leaves both as they were.
///
/// The hypervisor's own carve-out is xenheap in the frame table: owned by
/// the hypervisor and never given to the host, so "reclaim" cannot reach it.
/// The host mode has no guests; the guest commands find no domain.
struct LinuxHostPages: HostPageOperations {
    var ownership: UnsafeMutablePointer<BoardOwnership>
    var p2m: UnsafeMutablePointer<BoardP2M>
    let smmu: BoardSMMUHandle

    mutating func shareForDMA(_ first: MFN, count: UInt64) throws(OwnershipError) {
        try ownership.pointee.hostShareDMA(first.address, bytes: count << PageSize.shift4K, isRAM: true)
    }

    mutating func unshareForDMA(_ first: MFN, count: UInt64) throws(OwnershipError) {
        try ownership.pointee.hostUnshareDMA(first.address, bytes: count << PageSize.shift4K)
    }

    mutating func donateToHypervisor(_ frame: MFN) throws(OwnershipError) {
        try ownership.pointee.hostDonateToHypervisor(frame)
        var batch = FlushBatch(releaser: NoHeldReferences())
        do throws(P2MError) {
            try p2m.pointee.unmap(GFN(raw: frame.raw), count: 1, flushing: &batch)
        } catch {
            Board.commit(&p2m.pointee, &batch, smmu)
            try? ownership.pointee.hypervisorDonateToHost(frame)
            throw .ENOMEM(.tablePages(GFN(raw: frame.raw)))
        }
        // CPU TLBs and the SMMU invalidated before the hypervisor may use the frame.
        Board.commit(&p2m.pointee, &batch, smmu)
    }

    mutating func reclaimFromHypervisor(_ frame: MFN) throws(OwnershipError) {
        try ownership.pointee.hypervisorDonateToHost(frame)
        var batch = FlushBatch(releaser: NoHeldReferences())
        do throws(P2MError) {
            try p2m.pointee.map(GFN(raw: frame.raw), to: frame, count: 1, as: .ramRW, flushing: &batch)
        } catch {
            Board.commit(&p2m.pointee, &batch, smmu)
            try? ownership.pointee.hostDonateToHypervisor(frame)
            throw .ENOMEM(.tablePages(GFN(raw: frame.raw)))
        }
        Board.commit(&p2m.pointee, &batch, smmu)
    }

    mutating func donateToGuest(_ frame: MFN, domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        try ownership.pointee.hostDonateToGuest(frame, to: domain, at: gfn)
    }

    mutating func reclaimFromGuest(_ domain: DomainID, at gfn: GFN) throws(OwnershipError) {
        throw .ENOENT(.noSuchDomain(domain))
    }
}
