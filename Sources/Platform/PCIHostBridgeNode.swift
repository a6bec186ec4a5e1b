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
        for (ridBase, iommu, sidBase, length) in try PCIHostBridgeNode.mapTuples(
            tree, "iommu-map", node, whenFull: .tooManyIOMMUMapEntries(capacity: PCIHostBridgeNode.mapCapacity)) {
            _ = iommuMap.append(IOMMUMapEntry(ridBase: ridBase, iommu: iommu, sidBase: sidBase, length: length))
        }
        var msiMap = FixedList<16, MSIMapEntry>()
        for (ridBase, controller, msiBase, length) in try PCIHostBridgeNode.mapTuples(
            tree, "msi-map", node, whenFull: .tooManyMSIMapEntries(capacity: PCIHostBridgeNode.mapCapacity)) {
            _ = msiMap.append(MSIMapEntry(ridBase: ridBase, controller: controller, msiBase: msiBase, length: length))
        }
        self.iommuMap = iommuMap
        self.msiMap = msiMap
        msiParent = PlatformDescription.firstPhandle("msi-parent", of: tree, node)
    }

    /// (rid-base, phandle, base, length), one cell each.
    static let tupleBytes = 16

    /// The (requester ID base, phandle, output base, length) tuples of an
    /// `iommu-map` or `msi-map` (the two share one layout); empty when the
    /// property is absent, `full` when it holds more than `mapCapacity`.
    static func mapTuples(_ tree: FlattenedDeviceTree, _ name: StaticString, _ node: FDTNode,
                          whenFull full: FDTError) throws(FDTError)
        -> FixedList<16, (UInt32, UInt32, UInt32, UInt32)> {
        var tuples = FixedList<16, (UInt32, UInt32, UInt32, UInt32)>()
        guard let property = tree.property(name, of: node) else { return tuples }
        let value = try whole4CellTuples(tree, property, node)
        var offset = 0
        while offset < value.count {
            let tuple = (value.bigEndianUInt32(at: offset), value.bigEndianUInt32(at: offset + 4),
                         value.bigEndianUInt32(at: offset + 8), value.bigEndianUInt32(at: offset + 12))
            guard tuples.append(tuple) else { throw full }
            offset += tupleBytes
        }
        return tuples
    }

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
