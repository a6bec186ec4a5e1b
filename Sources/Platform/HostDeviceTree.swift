import AArch64

/// What the hypervisor changes in the firmware's device tree before handing
/// it to its deprivileged host.
public struct HostDeviceTreeEdits: Sendable {
    /// RAM the host must not use: the hypervisor's image, frame table, table
    /// pools, SMMU tables and queues. Each becomes a `/reserved-memory` child
    /// with `no-map`: Linux then neither allocates from it nor maps it in its
    /// linear map, and `/proc/iomem` does not call it System RAM.
    public private(set) var hypervisorRanges = FixedList<16, MemoryRange>()
    /// The paravirtual control device's page; described under the root with
    /// `compatible = HostDeviceTree.controlCompatible`.
    public var controlDevice: MemoryRange
    /// A small `no-map` region for the DMA test: not System RAM, so
    /// `/dev/mem` (STRICT_DEVMEM) lets the host's shell read it.
    public var dmaTestRegion: MemoryRange?

    @_transparent  // one caller on the board (in Hypervisor): inlined there
    public init(controlDevice: MemoryRange, dmaTestRegion: MemoryRange? = nil) {
        self.controlDevice = controlDevice
        self.dmaTestRegion = dmaTestRegion
    }

    /// Adds a hypervisor range; `false` (nothing added) when the list is full.
    @discardableResult
    public mutating func reserveForHypervisor(_ range: MemoryRange) -> Bool {
        hypervisorRanges.append(range)
    }
}

/// Derives the host's device tree from the firmware's.
///
/// Copied unchanged: the reservation map, every node and property (so
/// `/chosen` keeps `bootargs` and `linux,initrd-start/-end`), except:
/// - every node compatible with `arm,smmu-v3`, with its subtree, is dropped:
///   the hypervisor owns the SMMU, and a host that saw it would drive it;
/// - every `iommu-map`, `iommu-map-mask` and `iommus` property is dropped,
///   since they would name the missing SMMU and the host would then wait
///   for an IOMMU that never probes;
/// - `/reserved-memory` gains one `no-map` child per hypervisor range and
///   one for the DMA test region (the node is created, with
///   `#address-cells = <2>`, `#size-cells = <2>` and an empty `ranges`, if
///   the firmware had none);
/// - the root gains the control device's node.
public enum HostDeviceTree {
    /// The control device's `compatible`.
    public static let controlCompatible: StaticString = "hvmem,control-v1"
    public static let controlNodeName: StaticString = "hvmem-control"
    public static let hypervisorNodeName: StaticString = "hypervisor"
    public static let dmaTestNodeName: StaticString = "hvmem-dma-test"
    /// Cells of a `/reserved-memory` node we create (64-bit addresses and sizes).
    static let createdCells: UInt32 = 2

    /// Writes the host's tree into `buffer` and returns its size in bytes.
    ///
    /// - Throws: `.bufferTooSmall` when the buffer cannot hold the result
    ///   (the buffer's first 40 bytes are then untouched, so no valid blob is
    ///   left behind); `.buffersOverlap` when `buffer` overlaps the source;
    ///   `.valueDoesNotFitCells` when an added range does not fit the cells of
    ///   an existing `/reserved-memory` or of the root; `.source` when a
    ///   `#address-cells`/`#size-cells` of the source is malformed.
    public static func derive(from tree: FlattenedDeviceTree, edits: HostDeviceTreeEdits,
                              into buffer: UnsafeMutableRawBufferPointer) throws(FDTWriteError) -> Int {
        if let out = buffer.baseAddress, let source = tree.bytes.baseAddress {
            let outStart = UInt(bitPattern: out)
            let sourceStart = UInt(bitPattern: source)
            if outStart < sourceStart + UInt(tree.bytes.count) && sourceStart < outStart + UInt(buffer.count) {
                throw .buffersOverlap
            }
        }
        let rootAddressCells: UInt32
        let rootSizeCells: UInt32
        var reservedCells: (address: UInt32, size: UInt32)?
        do throws(FDTError) {
            rootAddressCells = try tree.addressCells(of: tree.root)
            rootSizeCells = try tree.sizeCells(of: tree.root)
            if let reserved = tree.node(atPath: "/reserved-memory") {
                reservedCells = (try tree.addressCells(of: reserved), try tree.sizeCells(of: reserved))
            }
        } catch {
            throw .source(error)
        }

        var writer = try FDTWriter(buffer: buffer, bootCPU: tree.header.bootCPU)
        for reservation in tree.memoryReservations { try writer.reserve(reservation) }

        var offset = tree.structStart
        var depth = 0
        // Depth at which a dropped subtree began; its tokens are skipped.
        var droppedAt: Int?
        // Depth of the open `/reserved-memory` node, while it is open.
        var inReservedMemory = false
        while true {
            let decoded: FDTToken.Decoded
            let next: Int
            do throws(FDTError) {
                (decoded, next) = try tree.blocks.token(at: offset)
            } catch {
                throw .source(error)
            }
            switch decoded {
            case .beginNode(let nameLength):
                depth += 1
                if droppedAt == nil {
                    let node = FDTNode(offset: offset, nameLength: nameLength, depth: depth - 1, parentOffset: nil)
                    if tree.isCompatible(node, with: "arm,smmu-v3") {
                        droppedAt = depth
                    } else {
                        let name = tree.name(of: node)
                        if depth == 2 && ByteString.equals(name, "reserved-memory") { inReservedMemory = true }
                        // The writer's own entry, not the one-line public wrapper (one call fewer).
                        try writer.beginNode(name, unitAddress: nil)
                    }
                }
            case .endNode:
                if let dropped = droppedAt {
                    if dropped == depth { droppedAt = nil }
                } else {
                    if depth == 2 && inReservedMemory {
                        try addReservedChildren(&writer, edits,
                                                cells: reservedCells ?? (createdCells, createdCells))
                        inReservedMemory = false
                    }
                    if depth == 1 {
                        if reservedCells == nil {
                            try writer.beginNode("reserved-memory")
                            try writer.property("#address-cells", u32: createdCells)
                            try writer.property("#size-cells", u32: createdCells)
                            try writer.emptyProperty("ranges")
                            try addReservedChildren(&writer, edits, cells: (createdCells, createdCells))
                            try writer.endNode()
                        }
                        try writer.beginNode(controlNodeName, unitAddress: edits.controlDevice.base.raw)
                        try writer.stringProperty("compatible", controlCompatible)
                        try writer.property("reg", address: edits.controlDevice.base.raw, size: edits.controlDevice.size,
                                            addressCells: rootAddressCells, sizeCells: rootSizeCells)
                        try writer.endNode()
                    }
                    try writer.endNode()
                }
                depth -= 1
            case .property(let nameStart, let valueLength):
                if droppedAt == nil {
                    // The tree's own name and value readers (`node` is only
                    // for error reports, and none is made here).
                    let property = FDTProperty(offset: offset, node: 0, nameStart: nameStart, length: valueLength)
                    let name = tree.name(of: property)
                    if !isIOMMUReference(name) {
                        let value = tree.value(of: property)
                        _ = try writer.property(name, value, length: value.count)
                    }
                }
            case .nop:
                break
            case .end:
                return try writer.finishBlob()
            }
            offset = next
        }
    }

    /// Properties that point a device at an IOMMU (the IOMMU binding and
    /// the PCI `iommu-map` binding).
    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    static func isIOMMUReference(_ name: UnsafeRawBufferPointer) -> Bool {
        ByteString.listContains("iommu-map\0iommu-map-mask\0iommus", name)
    }

    private static func addReservedChildren(_ writer: inout FDTWriter, _ edits: HostDeviceTreeEdits,
                                            cells: (address: UInt32, size: UInt32)) throws(FDTWriteError) {
        for range in edits.hypervisorRanges {
            try addNoMap(&writer, hypervisorNodeName, range, cells: cells)
        }
        if let region = edits.dmaTestRegion {
            try addNoMap(&writer, dmaTestNodeName, region, cells: cells)
        }
    }

    private static func addNoMap(_ writer: inout FDTWriter, _ name: StaticString, _ range: MemoryRange,
                                 cells: (address: UInt32, size: UInt32)) throws(FDTWriteError) {
        try writer.beginNode(name, unitAddress: range.base.raw)
        try writer.property("reg", address: range.base.raw, size: range.size,
                            addressCells: cells.address, sizeCells: cells.size)
        try writer.emptyProperty("no-map")
        try writer.endNode()
    }
}
