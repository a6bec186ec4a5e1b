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
        // Each tuple goes straight into its entry (no list of raw tuples in between).
        var iommuMap = FixedList<16, IOMMUMapEntry>()
        let iommu = try PCIHostBridgeNode.mapValue(tree, "iommu-map", node)
        var offset = 0
        while offset < iommu.count {
            let (ridBase, target, base, length) = PCIHostBridgeNode.tuple(iommu, offset)
            guard iommuMap.append(IOMMUMapEntry(ridBase: ridBase, iommu: target, sidBase: base, length: length)) else {
                throw .tooManyIOMMUMapEntries(capacity: PCIHostBridgeNode.mapCapacity)
            }
            offset += PCIHostBridgeNode.tupleBytes
        }
        var msiMap = FixedList<16, MSIMapEntry>()
        let msi = try PCIHostBridgeNode.mapValue(tree, "msi-map", node)
        offset = 0
        while offset < msi.count {
            let (ridBase, controller, base, length) = PCIHostBridgeNode.tuple(msi, offset)
            guard msiMap.append(MSIMapEntry(ridBase: ridBase, controller: controller, msiBase: base, length: length)) else {
                throw .tooManyMSIMapEntries(capacity: PCIHostBridgeNode.mapCapacity)
            }
            offset += PCIHostBridgeNode.tupleBytes
        }
        self.iommuMap = iommuMap
        self.msiMap = msiMap
        msiParent = PlatformDescription.firstPhandle("msi-parent", of: tree, node)
    }

    /// (rid-base, phandle, base, length), one cell each.
    static let tupleBytes = 16

    /// The value of an `iommu-map` or `msi-map` (the two share one layout:
    /// requester ID base, phandle, output base, length); empty when the
    /// property is absent. It must be whole tuples.
    static func mapValue(_ tree: FlattenedDeviceTree, _ name: StaticString,
                         _ node: FDTNode) throws(FDTError) -> UnsafeRawBufferPointer {
        guard let property = tree.property(name, of: node) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard property.length % tupleBytes == 0 else {
            throw .propertyLengthNotMultiple(node: node.offset, length: property.length, tupleBytes: tupleBytes)
        }
        return tree.value(of: property)
    }

    /// The tuple at `offset` of a map's value.
    static func tuple(_ value: UnsafeRawBufferPointer, _ offset: Int) -> (UInt32, UInt32, UInt32, UInt32) {
        (value.bigEndianUInt32(at: offset), value.bigEndianUInt32(at: offset + 4),
         value.bigEndianUInt32(at: offset + 8), value.bigEndianUInt32(at: offset + 12))
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

    func isPCI(_ node: FDTNode) -> Bool { hasDeviceType(node, "pci") }
}
