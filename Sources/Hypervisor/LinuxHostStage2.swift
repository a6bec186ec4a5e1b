import AArch64
import Translation
import Ownership
import HostExits

/// The host's identity stage 2 as the page-state operations edit it
/// (HostExits' `HostOwnershipOperations` decides when): one frame out or back
/// in, and the flush batch committed before returning, so the CPU TLBs and
/// the SMMU (whose domain shares or mirrors this stage 2) have let go of a
/// frame before the hypervisor treats it as its own.
struct LinuxHostStage2: HostStage2Editor {
    let p2m: UnsafeMutablePointer<LinuxHost.HostP2M>
    let smmu: BoardSMMUHandle

    mutating func unmapFromHost(_ frame: MFN) throws(OwnershipError) { try edit(frame, mapping: false) }

    mutating func mapIntoHost(_ frame: MFN) throws(OwnershipError) { try edit(frame, mapping: true) }

    /// The identity entry for `frame` mapped (`ramRW`) or unmapped, then committed: one copy of the
    /// lock, batch and commit sequence for both directions.
    private func edit(_ frame: MFN, mapping: Bool) throws(OwnershipError) {
        var batch = BoardBatch.make()
        let held = p2m.pointee.lock.acquire()
        do throws(P2MError) {
            if mapping {
                try p2m.pointee.table.map(GFN(raw: frame.raw), to: frame, count: 1, as: .ramRW, flushing: &batch,
                                    holding: held)
            } else {
                try p2m.pointee.table.unmap(GFN(raw: frame.raw), count: 1, flushing: &batch, holding: held)
            }
        } catch {
            p2m.pointee.lock.release(held)
            throw OwnershipError(error, at: GFN(raw: frame.raw))
        }
        Board.commit(&p2m.pointee.table, &batch, smmu, holding: held)
        p2m.pointee.lock.release(held)
    }
}

typealias LinuxHostPages = HostOwnershipOperations<BoardCache, OwnershipP2M, LinuxHostStage2>
