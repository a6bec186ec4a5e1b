import AArch64
import Translation

/// MMIO of a device the host owns, as the platform describes it (a PCI
/// window behind the host's own bridge, say). Only such ranges may be named
/// in a non-RAM host DMA share: the hypervisor's own devices (its console,
/// the SMMU it drives) and holes in the map are not the host's to hand out.
public struct HostDeviceRegion: Equatable, Sendable {
    public let first: MFN
    public let count: UInt64

    /// Whether `[first, first + count)` lies entirely inside this region.
    func contains(_ start: MFN, count frames: UInt64) -> Bool {
        start.raw >= first.raw && start.raw - first.raw <= count && frames <= count - (start.raw - first.raw)
    }
}

extension PageOwnership where P2M: ~Copyable {
    /// A platform lists far fewer host device regions than this.
    public static var hostDeviceCapacity: Int { 16 }

    /// Records `[pa, pa+bytes)` as MMIO of a device the host owns. Refused
    /// (nothing recorded) when it is misaligned, empty, wraps, covers any RAM
    /// frame, or the table is full. Board set-up, from the platform description.
    public mutating func declareHostDevice(_ pa: PhysAddr, bytes: UInt64) throws(OwnershipError) {
        let count = try Self.pageCount(pa, bytes: bytes)
        if let ram = frames.firstRAMFrame(from: pa.frame, count: count) {
            throw .EINVAL(.deviceRegionOverlapsRAM(ram.address))
        }
        guard hostDeviceRegions.count < Self.hostDeviceCapacity else {
            throw .ENOMEM(.hostDeviceSlots(Self.hostDeviceCapacity))
        }
        hostDeviceRegions.append(HostDeviceRegion(first: pa.frame, count: count))
    }

    /// Static, taking the pieces it reads: called from `mutating` operations,
    /// a method on `self` copied the whole `PageOwnership` on the board.
    /// Whether one declared region holds all of `[first, first + count)` (a
    /// yes or no: the callers never need the region, and an optional region
    /// was three words returned through memory on the board).
    @inline(__always)
    static func isHostDevice(_ first: MFN, count: UInt64, in regions: [HostDeviceRegion]) -> Bool {
        // By index: no IndexingIterator specialisation for the list on the board.
        for i in 0..<regions.count where regions[i].contains(first, count: count) { return true }
        return false
    }

    /// A non-RAM share: no RAM frame in the range (the `isRAM` hint is a
    /// lie otherwise), and the whole range inside one declared host device.
    /// Both checks cost O(banks + regions), whatever the range's size.
    @_transparent static func requireHostDevice(_ first: MFN, count: UInt64, frames: FrameTable,
                                  regions: [HostDeviceRegion]) throws(OwnershipError) {
        if let ram = frames.firstRAMFrame(from: first, count: count) {
            throw .EINVAL(.ramClaimedAsDevice(ram.address))
        }
        guard isHostDevice(first, count: count, in: regions) else {
            throw .EINVAL(.notHostDevice(first.address, bytes: count << PageSize.shift4K))
        }
    }
}

extension FrameTable {
    /// The lowest RAM frame in `[first, first + count)`, or nil; one step per bank.
    @_transparent func firstRAMFrame(from first: MFN, count: UInt64) -> MFN? {
        let end = first.raw &+ count
        for i in 0..<bankCount {
            let bank = banks[i]
            let low = max(first.raw, bank.first)
            let high = min(end, bank.first + bank.count)
            if low < high { return MFN(raw: low) }
        }
        return nil
    }
}
