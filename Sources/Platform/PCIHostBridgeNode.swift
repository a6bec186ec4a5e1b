import AArch64

/// One `msi-map` entry (Linux binding `pci-msi.txt`): requester IDs
/// `ridBase ..< ridBase + length` signal MSIs through controller `controller`
/// with sideband data starting at `msiBase`.
public struct MSIMapEntry: Equatable, Sendable {
    public let ridBase: UInt32
    public let controller: UInt32
    public let msiBase: UInt32
    public let length: UInt32
}

/// What the device tree says about any PCI host bridge, ECAM or not: its
/// windows (CPU side translated through the buses above it) and how its
/// requester IDs reach IOMMUs and MSI controllers. `PCIHostBridge` is the one
/// bridge this image drives; this is the description every bridge has.
public struct PCIHostBridgeNode: Sendable {
    public static let mapCapacity = 16

    public let node: Int
    /// `compatible` lists `pci-host-ecam-generic`.
    public let isECAMGeneric: Bool
    public let windows: FixedList<8, PCIWindow>
    public let iommuMap: FixedList<16, IOMMUMapEntry>
    public let msiMap: FixedList<16, MSIMapEntry>
    public let msiParent: UInt32?

    /// `iommu-map` and `msi-map` are read as 4-cell tuples, as Linux's
    /// `of_map_id` reads them, whatever the target's `#iommu-cells`.
    public init(_ tree: FlattenedDeviceTree, _ node: FDTNode) throws(FDTError) {
        self.node = node.offset
        isECAMGeneric = tree.isCompatible(node, with: "pci-host-ecam-generic")
        windows = try PlatformDescription.pciWindows(tree, node)
        var iommuMap = FixedList<16, IOMMUMapEntry>()
        for (rid, target, base, length) in try PCIHostBridgeNode.tuples("iommu-map", tree, node) {
            guard iommuMap.append(IOMMUMapEntry(ridBase: rid, iommu: target, sidBase: base, length: length)) else {
                throw .tooManyIOMMUMapEntries(capacity: PCIHostBridgeNode.mapCapacity)
            }
        }
        var msiMap = FixedList<16, MSIMapEntry>()
        for (rid, target, base, length) in try PCIHostBridgeNode.tuples("msi-map", tree, node) {
            guard msiMap.append(MSIMapEntry(ridBase: rid, controller: target, msiBase: base, length: length)) else {
                throw .tooManyMSIMapEntries(capacity: PCIHostBridgeNode.mapCapacity)
            }
        }
        self.iommuMap = iommuMap
        self.msiMap = msiMap
        msiParent = PlatformDescription.firstPhandle("msi-parent", of: tree, node)
    }

    static func tuples(_ name: StaticString, _ tree: FlattenedDeviceTree,
                       _ node: FDTNode) throws(FDTError) -> [(UInt32, UInt32, UInt32, UInt32)] {
        guard let property = tree.property(name, of: node) else { return [] }
        let tuple = 16
        guard property.length % tuple == 0 else {
            throw .propertyLengthNotMultiple(node: node.offset, length: property.length, tupleBytes: tuple)
        }
        let value = tree.value(of: property)
        var result: [(UInt32, UInt32, UInt32, UInt32)] = []
        var offset = 0
        while offset < value.count {
            result.append((value.bigEndianUInt32(at: offset), value.bigEndianUInt32(at: offset + 4),
                           value.bigEndianUInt32(at: offset + 8), value.bigEndianUInt32(at: offset + 12)))
            offset += tuple
        }
        return result
    }
}

extension FlattenedDeviceTree {
    /// Enabled nodes with `device_type = "pci"` whose parent is not itself a
    /// PCI node: the host bridges (a PCI-PCI bridge below one is not).
    public var pciHostBridgeNodes: [FDTNode] {
        var result: [FDTNode] = []
        for node in nodes where isPCI(node) && isEnabled(node) {
            if let parent = parent(of: node), isPCI(parent) { continue }
            result.append(node)
        }
        return result
    }

    func isPCI(_ node: FDTNode) -> Bool {
        guard let property = property("device_type", of: node), let type = try? string(property) else { return false }
        return ByteString.equals(type, "pci")
    }
}
