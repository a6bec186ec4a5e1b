import AArch64
import Ownership

/// The page-state operations the control device runs for the host. The
/// board conforms its `PageOwnership` (plus the host P2M edits each one
/// implies) to it; tests drive the device with a recording fake.
///
/// Each operation either succeeds or throws and changes nothing (DESIGN.md
/// rule 7), so the device needs no rollback of its own. Whoever shares one
/// conformance between CPUs holds its lock for the call.
public protocol HostPageOperations: ~Copyable {
    /// pKVM's `host_share_dma`: `count` host frames from `first` become
    /// reachable by the host's devices (one more DMA share each).
    mutating func shareForDMA(_ first: MFN, count: UInt64) throws(OwnershipError)
    /// `host_unshare_dma`: one DMA share fewer on each of `count` frames.
    mutating func unshareForDMA(_ first: MFN, count: UInt64) throws(OwnershipError)
    /// The host gives one frame to the hypervisor (it leaves the host's stage 2
    /// and the host's DMA domain).
    mutating func donateToHypervisor(_ frame: MFN) throws(OwnershipError)
    /// The hypervisor gives a frame the host donated back to the host.
    mutating func reclaimFromHypervisor(_ frame: MFN) throws(OwnershipError)
    /// The host gives one frame to a guest, mapped at `gfn` there.
    mutating func donateToGuest(_ frame: MFN, domain: DomainID, at gfn: GFN) throws(OwnershipError)
    /// The host takes back the frame it gave a guest at `gfn`.
    mutating func reclaimFromGuest(_ domain: DomainID, at gfn: GFN) throws(OwnershipError)
}
