import AArch64

/// What the device tree says about any PCI host bridge, ECAM or not: its
/// windows (CPU side translated through the buses above it) and how its
/// requester IDs reach IOMMUs and MSI controllers. `PCIHostBridge` is the one
/// bridge this image drives; this is the description every bridge has.
public struct PCIHostBridgeNode: Sendable {
    public static let mapCapacity = 16

    public let node: Int
    /// `compatible` lists `pci-host-ecam-generic`.
    public let isECAMGeneric: Bool
    // `var` only so that `init` can have the readers fill them in place.
    public private(set) var windows = FixedList<8, PCIWindow>()
    public private(set) var iommuMap = FixedList<16, IOMMUMapEntry>()
    public private(set) var msiMap = FixedList<16, MSIMapEntry>()
    public let msiParent: UInt32?

    /// `iommu-map` and `msi-map` are read as 4-cell tuples, as Linux's
    /// `of_map_id` reads them, whatever the target's `#iommu-cells`.
    public init(_ tree: FlattenedDeviceTree, _ node: FDTNode) throws(FDTError) {
        try self.init(reading: tree, node)
    }

    /// The public initialiser's body, inlined into `MSIDoorbells.init`, its
    /// one caller on the board (the public wrapper is then dropped there).
    @_transparent
    init(reading tree: FlattenedDeviceTree, _ node: FDTNode) throws(FDTError) {
        self.node = node.offset
        isECAMGeneric = tree.isCompatible(node, with: "pci-host-ecam-generic")
        try PlatformDescription.pciWindows(tree, node, into: &windows)
        try PCIHostBridgeNode.map(tree, node, msi: false, checkingIOMMUs: false, into: &iommuMap)
        try PCIHostBridgeNode.map(tree, node, msi: true, checkingIOMMUs: false, into: &msiMap)
        msiParent = PlatformDescription.firstPhandle("msi-parent", of: tree, node)
    }

    /// (rid-base, phandle, base, length), one cell each.
    static let tupleBytes = 16

    /// Appends the entries of `msi-map` (`msi`) or `iommu-map`, in blob
    /// order, to `map` (empty: a caller's list, filled in place rather than
    /// returned and copied); none when the property is absent. The value must be whole tuples. Every
    /// reader of either map goes through here, each tuple straight into its
    /// entry.
    ///
    /// `checkingIOMMUs` (the bridge this image drives, whose requester IDs it
    /// turns into StreamIDs): each entry's phandle must name a node with
    /// `#iommu-cells = <1>` (a StreamID), and both ID ranges must fit in 32
    /// bits, or the last requesters would wrap to StreamID 0. Each entry is
    /// checked before it is added, so the first bad entry is the error.
    static func map(_ tree: FlattenedDeviceTree, _ node: FDTNode, msi: Bool, checkingIOMMUs: Bool,
                    into map: inout FixedList<16, RequesterIDMapEntry>) throws(FDTError) {
        guard let property = tree.property(msi ? "msi-map" : "iommu-map", of: node) else { return }
        guard property.length % tupleBytes == 0 else {
            throw .propertyLengthNotMultiple(node: node.offset, length: property.length, tupleBytes: tupleBytes)
        }
        let value = tree.value(of: property)
        var offset = 0
        while offset < value.count {
            let entry = RequesterIDMapEntry(ridBase: value.bigEndianUInt32(at: offset),
                                            target: value.bigEndianUInt32(at: offset + 4),
                                            outputBase: value.bigEndianUInt32(at: offset + 8),
                                            length: value.bigEndianUInt32(at: offset + 12))
            offset += tupleBytes
            if checkingIOMMUs {
                guard let iommu = tree.node(withPhandle: entry.target) else { throw .phandleNotFound(entry.target) }
                let cells = try tree.u32("#iommu-cells", of: iommu) ?? 0
                guard cells == 1 else { throw .unsupportedIOMMUCells(node: iommu.offset, cells: cells) }
                // `iommuTarget` computes outputBase + (rid - ridBase) for rid - ridBase < length.
                guard entry.length == 0 || entry.outputBase <= UInt32.max - (entry.length - 1),
                      entry.length == 0 || entry.ridBase <= UInt32.max - (entry.length - 1) else {
                    throw .iommuMapOverflows(node: node.offset, ridBase: entry.ridBase, sidBase: entry.outputBase,
                                             length: entry.length)
                }
            }
            guard map.append(entry) else {
                throw msi ? .tooManyMSIMapEntries(capacity: mapCapacity)
                          : .tooManyIOMMUMapEntries(capacity: PCIHostBridge.iommuMapCapacity)
            }
        }
    }
}

extension FlattenedDeviceTree {
    /// Enabled nodes with `device_type = "pci"` whose parent is not itself a
    /// PCI node: the host bridges (a PCI-PCI bridge below one is not).
    public var pciHostBridgeNodes: PCIHostBridgeNodes { PCIHostBridgeNodes(tree: self, walk: nodes) }

    public struct PCIHostBridgeNodes: IteratorProtocol, Sequence {
        let tree: FlattenedDeviceTree
        var walk: NodeIterator
        public mutating func next() -> FDTNode? { nextBridge() }

        /// `next`'s body, inlined into `MSIDoorbells.init`, its one caller on
        /// the board (the public `next` is then unused there and dropped).
        @_transparent
        mutating func nextBridge() -> FDTNode? {
            // One local copy of the tree: each call through `self.tree` in a
            // mutating method copied it to the stack first (four per node).
            let tree = self.tree
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
