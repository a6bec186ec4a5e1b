import AArch64
import Translation

/// Every way an ownership operation refuses, named after the errno Xen or
/// pKVM returns in the same situation, with the reason and the offending value.
/// A call that throws has changed nothing (DESIGN.md rule 7).
public enum OwnershipError: Error, Equatable, Sendable {
    case EINVAL(Invalid)
    case EPERM(NotPermitted)
    case EBUSY(Busy)
    case ENOENT(NotFound)
    case EEXIST(Exists)
    case ENOMEM(OutOfMemory)
    /// A counter is at its maximum: refused, never wrapped (seed 004).
    case EOVERFLOW(Saturated)

    public enum Invalid: Equatable, Sendable {
        case bankMisaligned(PhysAddr, bytes: UInt64)
        case bankOverlap(PhysAddr)
        case misaligned(PhysAddr)
        case sizeMisaligned(UInt64)
        case rangeWraps(PhysAddr, bytes: UInt64)
        /// The caller said "not RAM" about RAM (seed 004's `is_ram` hint).
        case ramClaimedAsDevice(PhysAddr)
        /// The caller said "RAM" about an address outside every bank.
        case notRAM(PhysAddr)
        case notADomain(DomainID)
        case domainExists(DomainID)
        case gfnOutOfRange(GFN)
        case grantFrameIndex(Int, status: Bool)
        case sharedInfoIndex(UInt64)
        case notXenheap(MFN)
        case notGuestRAM(DomainID, GFN)
        case notGrantMapped(DomainID, GFN)
        case rangeEmpty
        case dmaDomainUnknown(UInt16)
        /// A non-RAM range the platform does not list as a device the host owns.
        case notHostDevice(PhysAddr, bytes: UInt64)
        /// A host device region declared over RAM (the frame is the first RAM one).
        case deviceRegionOverlapsRAM(PhysAddr)
        /// The P2M refused an entry at this GFN for a reason of its own
        /// (outside the IPA space, misaligned for the granule).
        case p2mRejected(GFN)
    }

    public enum NotPermitted: Equatable, Sendable {
        /// The frame is not owned by whom the transition requires.
        case notOwner(MFN, owner: PageOwner)
        /// The host's state of the frame forbids the transition.
        case wrongHostState(MFN, HostPageState)
        /// The frame is shared for DMA and may not go to a guest or the hypervisor.
        case dmaShared(MFN, shares: UInt16)
        /// The frame is lent to another borrower than the transition expects.
        case borrowedBy(MFN, Borrower)
        /// A foreign mapping needs the mapping domain to differ from the owner.
        case selfForeign(DomainID)
    }

    public enum Busy: Equatable, Sendable {
        /// Seed 001: a xenheap frame is mapped at most once; no implicit unmap.
        case xenheapAlreadyMapped(MFN, at: GFN)
        /// Something is already mapped at the destination.
        case gfnOccupied(DomainID, GFN)
        /// The P2M already has an entry there.
        case p2mEntryExists(GFN)
        /// A device may still reach the frame through a translation whose IOMMU
        /// invalidation has not been confirmed (seed 000); retry after the flush.
        case flushPending(MFN)
        /// The P2M edit at this GFN broke an entry whose IOMMU invalidation was not
        /// confirmed and left it invalid (`P2MError.breakNotConfirmed`): not done;
        /// retry after a successful flush.
        case iommuNotConfirmed(GFN)
    }

    public enum NotFound: Equatable, Sendable {
        case unmapped(DomainID, GFN)
        case noSuchDomain(DomainID)
        case notDMAShared(MFN)
    }

    public enum Exists: Equatable, Sendable {
        case dmaDomainAttached(UInt16)
        /// The domain already has this shared_info frame.
        case sharedInfoInstalled(MFN)
    }

    public enum OutOfMemory: Equatable, Sendable {
        /// The P2M could not get table pages for an entry at this GFN.
        case tablePages(GFN)
        /// Every guest-domain slot is in use.
        case domainSlots(Int)
        /// The table of host device regions is full.
        case hostDeviceSlots(Int)
    }

    public enum Saturated: Equatable, Sendable {
        case dmaShareCount(MFN)
        case referenceCount(MFN)
        case iommuMappingCount(MFN)
    }
}
