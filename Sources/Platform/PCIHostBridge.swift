import AArch64

/// PCI address space of a `ranges` entry: the `ss` field of phys.hi
/// (PCI Bus Binding to IEEE 1275, section 2.2.1.1).
public enum PCIAddressSpace: UInt32, Equatable, Sendable {
    case configuration = 0
    case io = 1
    case memory32 = 2
    case memory64 = 3
}

/// One `ranges` entry of a PCI host bridge: a window of CPU physical
/// addresses that reaches PCI bus addresses.
public struct PCIWindow: Equatable, Sendable {
    /// phys.hi bit layout: `npt000ss bbbbbbbb dddddfff rrrrrrrr`.
    static let spaceShift: UInt32 = 24
    static let spaceMask: UInt32 = 0b11
    static let prefetchableBit: UInt32 = 1 << 30
    /// Cells of a PCI child address (phys.hi, phys.mid, phys.lo).
    static let addressCells: UInt32 = 3

    public let space: PCIAddressSpace
    public let isPrefetchable: Bool
    public let pciAddress: UInt64
    public let cpuAddress: PhysAddr
    public let size: UInt64

    /// The CPU address for a PCI bus address inside this window.
    public func cpuAddress(forPCIAddress address: UInt64) -> PhysAddr? {
        guard address >= pciAddress, address - pciAddress < size else { return nil }
        return cpuAddress.adding(address - pciAddress)
    }
}

/// One entry of an `iommu-map` (Linux binding `pci-iommu.txt`) or an
/// `msi-map` (`pci-msi.txt`), which share one layout: requester IDs
/// `ridBase ..< ridBase + length` reach `target` (the IOMMU, or the MSI
/// controller) as IDs starting at `outputBase` (StreamIDs, or MSI sideband
/// data). One type for both maps, so the image has one reader and one set of
/// list methods for them.
public struct RequesterIDMapEntry: Equatable, Sendable {
    public let ridBase: UInt32
    /// The phandle of the IOMMU or MSI controller.
    public let target: UInt32
    public let outputBase: UInt32
    public let length: UInt32

    public init(ridBase: UInt32, target: UInt32, outputBase: UInt32, length: UInt32) {
        self.ridBase = ridBase
        self.target = target
        self.outputBase = outputBase
        self.length = length
    }
}

/// An `iommu-map` entry: `target` is the IOMMU, `outputBase` the first StreamID.
public typealias IOMMUMapEntry = RequesterIDMapEntry
/// An `msi-map` entry: `target` is the MSI controller, `outputBase` the first sideband data.
public typealias MSIMapEntry = RequesterIDMapEntry

extension RequesterIDMapEntry {
    /// The bindings' names for the two fields that differ.
    public var iommu: UInt32 { target }
    public var sidBase: UInt32 { outputBase }
    public var controller: UInt32 { target }
    public var msiBase: UInt32 { outputBase }
}

/// The StreamID a requester ID becomes, and which SMMU sees it.
public struct IOMMUTarget: Equatable, Sendable {
    public let iommu: UInt32
    public let streamID: UInt32
}

/// A `pci-host-ecam-generic` host bridge.
public struct PCIHostBridge: Sendable {
    public static let windowCapacity = 8
    /// Qualcomm SDM845 (DB845c) lists sixteen `iommu-map` entries per bridge.
    public static let iommuMapCapacity = 16

    /// The whole ECAM region; bus `busRange.first` starts at its base.
    public let ecam: MemoryRange
    public let firstBus: UInt8
    public let lastBus: UInt8
    public let windows: FixedList<8, PCIWindow>
    public let iommuMap: FixedList<16, IOMMUMapEntry>
    /// `iommu-map-mask`: applied to a requester ID before the lookup.
    public let iommuMapMask: UInt32?
    public let isCoherent: Bool
    /// `linux,pci-domain`, the PCI segment.
    public let segment: UInt32?
    public let node: Int

    /// The first window of the I/O space.
    public var ioWindow: PCIWindow? { firstWindow(.io) }
    /// The first 32-bit memory window: where 32-bit BARs (e.g. `edu`'s BAR0) go.
    public var memory32Window: PCIWindow? { firstWindow(.memory32) }
    public var memory64Window: PCIWindow? { firstWindow(.memory64) }

    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    private func firstWindow(_ space: PCIAddressSpace) -> PCIWindow? {
        // Indexed, like every walk of a bridge's lists: no iterator specialisations.
        // One copy, then slots read in place (a plain subscript read copies the list).
        var list = windows
        var index = 0
        while index < list.count {
            if list[slot: index].space == space { return list[slot: index] }
            index += 1
        }
        return nil
    }

    /// `iommu-map` lookup; `nil` when no entry covers the requester ID (the
    /// device's DMA then does not go through an IOMMU by this binding).
    public func iommuTarget(forRequesterID rid: UInt16) -> IOMMUTarget? {
        let masked = UInt32(rid) & (iommuMapMask ?? UInt32.max)
        var map = iommuMap
        var index = 0
        while index < map.count {
            let entry = map[slot: index]
            if masked >= entry.ridBase && masked - entry.ridBase < entry.length {
                return IOMMUTarget(iommu: entry.target, streamID: entry.outputBase &+ (masked - entry.ridBase))
            }
            index += 1
        }
        return nil
    }
}
