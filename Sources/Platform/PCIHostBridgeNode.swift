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
        var msiMap = FixedList<16, MSIMapEntry>()
        if let property = tree.property("iommu-map", of: node) {
            let value = try PCIHostBridgeNode.whole4CellTuples(tree, property, node)
            var offset = 0
            while offset < value.count {
                let entry = IOMMUMapEntry(ridBase: value.bigEndianUInt32(at: offset),
                                          iommu: value.bigEndianUInt32(at: offset + 4),
                                          sidBase: value.bigEndianUInt32(at: offset + 8),
                                          length: value.bigEndianUInt32(at: offset + 12))
                guard iommuMap.append(entry) else { throw .tooManyIOMMUMapEntries(capacity: PCIHostBridgeNode.mapCapacity) }
                offset += PCIHostBridgeNode.tupleBytes
            }
        }
        if let property = tree.property("msi-map", of: node) {
            let value = try PCIHostBridgeNode.whole4CellTuples(tree, property, node)
            var offset = 0
            while offset < value.count {
                let entry = MSIMapEntry(ridBase: value.bigEndianUInt32(at: offset),
                                        controller: value.bigEndianUInt32(at: offset + 4),
                                        msiBase: value.bigEndianUInt32(at: offset + 8),
                                        length: value.bigEndianUInt32(at: offset + 12))
                guard msiMap.append(entry) else { throw .tooManyMSIMapEntries(capacity: PCIHostBridgeNode.mapCapacity) }
                offset += PCIHostBridgeNode.tupleBytes
            }
        }
        self.iommuMap = iommuMap
        self.msiMap = msiMap
        msiParent = PlatformDescription.firstPhandle("msi-parent", of: tree, node)
    }

    /// (rid-base, phandle, base, length), one cell each.
    static let tupleBytes = 16

    static func whole4CellTuples(_ tree: FlattenedDeviceTree, _ property: FDTProperty,
                                 _ node: FDTNode) throws(FDTError) -> UnsafeRawBufferPointer {
        guard property.length % tupleBytes == 0 else {
            throw .propertyLengthNotMultiple(node: node.offset, length: property.length, tupleBytes: tupleBytes)
        }
        return tree.value(of: property)
    }
}

extension FlattenedDeviceTree {
    /// Enabled nodes with `device_type = "pci"` whose parent is not itself a
    /// PCI node: the host bridges (a PCI-PCI bridge below one is not).
    public var pciHostBridgeNodes: PCIHostBridgeNodes { PCIHostBridgeNodes(tree: self, walk: nodes) }

    public struct PCIHostBridgeNodes: IteratorProtocol, Sequence {
        let tree: FlattenedDeviceTree
        var walk: NodeIterator
        public mutating func next() -> FDTNode? {
            while let node = walk.next() {
                guard tree.isPCI(node), tree.isEnabled(node) else { continue }
                if let parent = tree.parent(of: node), tree.isPCI(parent) { continue }
                return node
            }
            return nil
        }
    }

    func isPCI(_ node: FDTNode) -> Bool {
        guard let property = property("device_type", of: node), let type = try? string(property) else { return false }
        return ByteString.equals(type, "pci")
    }
}
