import AArch64

/// The pages holding the MSI doorbells PCI devices write: the register of
/// each MSI controller a PCI host bridge names in `msi-parent` or `msi-map`
/// (Linux bindings `pci-msi.txt`, `arm,gic.yaml`'s v2m frame,
/// `arm,gic-v3-its`). An MSI is a DMA write of the event's data to this
/// address, so a host whose DMA is translated must be able to reach exactly
/// these pages and nothing else of the interrupt controller.
public struct MSIDoorbells: Sendable {
    public static let capacity = 8

    /// GICv2m: MSI_SETSPI_NS at 0x040 of the frame (SBSA, appendix "GICv2m").
    static let v2mSetSPIOffset: UInt64 = 0x040
    /// GICv3 ITS: GITS_TRANSLATER at 0x0040 of the translation register
    /// frame, the ITS's second 64 KiB frame (GIC architecture spec, "The ITS
    /// register map").
    static let itsTranslaterOffset: UInt64 = 0x1_0040
    static let registerBytes: UInt64 = 4

    /// One 4 KiB page per doorbell, ascending, no duplicates; at most
    /// `capacity` (checked in `add`). The list has `HostPlatformScan`'s
    /// window-list type so that the image has one `insert` for both.
    public private(set) var pages = FixedList<32, MemoryRange>()

    /// Controllers other than a GICv2m frame or a GICv3 ITS are not known
    /// doorbells and are left out (their MSIs then fault in the SMMU, which is
    /// the safe side); a phandle naming no node, or a `reg` too short to hold
    /// the doorbell register, is a broken tree. A disabled controller takes no MSIs.
    public init(_ tree: FlattenedDeviceTree) throws(FDTError) {
        var bridges = FlattenedDeviceTree.PCIHostBridgeNodes(tree: tree, walk: tree.nodes)
        while let bridge = bridges.nextBridge() {
            let description = try PCIHostBridgeNode(reading: tree, bridge)
            // One copy, then slots read in place (a plain subscript read copies the list).
            var map = description.msiMap
            // `msi-parent` first (position -1, when present), then each
            // `msi-map` entry's controller: one call site, so `add` is inlined.
            var index = description.msiParent == nil ? 0 : -1
            while index < map.count {
                try add(tree, controller: index < 0 ? description.msiParent! : map[slot: index].target)
                index += 1
            }
        }
    }

    @_transparent  // one call site, in init
    mutating func add(_ tree: FlattenedDeviceTree, controller handle: UInt32) throws(FDTError) {
        guard let node = tree.node(withPhandle: handle) else { throw .phandleNotFound(handle) }
        guard tree.isEnabled(node) else { return }
        let offset: UInt64
        if tree.isCompatible(node, with: "arm,gic-v2m-frame") {
            offset = Self.v2mSetSPIOffset
        } else if tree.isCompatible(node, with: "arm,gic-v3-its") {
            offset = Self.itsTranslaterOffset
        } else {
            return
        }
        guard let frame = try tree.firstCPURange(of: node) else { throw .missingReg(node: node.offset) }
        guard frame.size >= offset + Self.registerBytes else {
            throw .msiDoorbellOutsideReg(node: node.offset, size: frame.size)
        }
        // The frame's base plus an offset inside its size: no wrap-around (checked when `reg` was read).
        let page = (frame.base.raw + offset) & ~PageSize.offsetMask4K
        // Slots read in place (`[slot:]`): a plain subscript read copies the whole list.
        var index = 0
        while index < pages.count && pages[slot: index].base.raw < page { index += 1 }
        if index < pages.count && pages[slot: index].base.raw == page { return }
        guard pages.count < Self.capacity,
              pages.insert(MemoryRange(base: PhysAddr(raw: page), size: PageSize.bytes4K)!, at: index) else {
            throw .tooManyMSIDoorbells(capacity: Self.capacity)
        }
    }
}
