/// Why a flattened device tree was rejected. Offsets are byte offsets from the
/// start of the blob unless the case says otherwise, so a failing blob can be
/// inspected with `xxd` at the reported place.
public enum FDTError: Error, Equatable, Sendable {
    // Header (Devicetree Specification v0.4, section 5.2).
    /// Fewer bytes than the 40-byte header.
    case truncatedHeader(available: Int)
    case badMagic(UInt32)
    /// `totalsize` is smaller than the header itself.
    case totalSizeTooSmall(UInt32)
    /// `totalsize` claims more bytes than the caller's buffer holds.
    case totalSizeExceedsBuffer(totalSize: UInt32, available: Int)
    /// `totalsize` is larger than the caller is willing to map.
    case totalSizeExceedsLimit(totalSize: UInt32, limit: Int)
    /// We read the v17 layout (`size_dt_struct` exists from v17); a blob whose
    /// `last_comp_version` is newer than 17 cannot be read with it.
    case unsupportedVersion(version: UInt32, lastCompatible: UInt32)
    case misalignedStructureBlock(offset: UInt32)
    case structureBlockOutOfRange(offset: UInt32, size: UInt32)
    case stringsBlockOutOfRange(offset: UInt32, size: UInt32)
    case misalignedReservationMap(offset: UInt32)
    case reservationMapOutOfRange(offset: UInt32)

    // Memory reservation block (section 5.3).
    /// No (0, 0) terminator before the reservation map runs into the end of the blob.
    case unterminatedReservationMap
    case reservationOverflows(address: UInt64, size: UInt64)

    // Structure block (section 5.4).
    /// A token, or the fixed part of a property, does not fit in the structure block.
    case truncatedToken(offset: Int)
    case badToken(UInt32, offset: Int)
    /// The first real token is not `FDT_BEGIN_NODE`.
    case missingRootNode(offset: Int)
    /// A second top-level node follows the root.
    case nodeAfterRoot(offset: Int)
    case unterminatedNodeName(offset: Int)
    case propertyOutsideNode(offset: Int)
    /// The spec puts every property of a node before its first child.
    case propertyAfterChildNode(offset: Int)
    case propertyValueOutOfRange(offset: Int, length: UInt32)
    /// `nameoff` points outside the strings block.
    case propertyNameOutOfRange(offset: Int, nameOffset: UInt32)
    case unterminatedPropertyName(offset: Int, nameOffset: UInt32)
    /// `FDT_END_NODE` with no open node.
    case unbalancedEndNode(offset: Int)
    /// `FDT_END` while nodes are still open.
    case unclosedNode(offset: Int, depth: Int)
    /// The structure block ends without `FDT_END`.
    case missingEndToken
    case nestingTooDeep(offset: Int, limit: Int)

    // Property values (section 2.3 and 2.3.5; node offsets are those of FDT_BEGIN_NODE).
    /// `#address-cells`/`#size-cells`/a phandle or other u32 property that is
    /// not 4 bytes; `property` is the offset of its FDT_PROP token, which
    /// names it (`FlattenedDeviceTree.propertyName(atToken:)`).
    case propertyNotU32(node: Int, length: Int, property: Int)
    /// The decoded address would need more than 64 bits (or, for the PCI
    /// child side of `ranges`, is not the 3-cell PCI form).
    case addressCellsUnsupported(node: Int, cells: UInt32)
    case sizeCellsUnsupported(node: Int, cells: UInt32)
    /// The property's length is not a multiple of its tuple size.
    case propertyLengthNotMultiple(node: Int, length: Int, tupleBytes: Int)
    case regionOverflows(base: UInt64, size: UInt64)
    /// A string property lacks its NUL terminator.
    case unterminatedString(node: Int)
    /// `stdout-path` names an alias that /aliases lacks, or a path with no node.
    case stdoutPathUnresolved(node: Int)
    case phandleNotFound(UInt32)
    /// No `ranges` entry of this bus covers the address (or the bus has no `ranges`).
    case untranslatableAddress(node: Int)
    /// A node has a property the spec requires it to have, missing.
    case missingReg(node: Int)
    case unknownPSCIMethod(node: Int)
    /// `iommu-map` points at an IOMMU whose `#iommu-cells` is not 1.
    case unsupportedIOMMUCells(node: Int, cells: UInt32)
    case badBusRange(node: Int, first: UInt32, last: UInt32)
    /// A PCIe host bridge whose ECAM `reg` is smaller than one bus's
    /// configuration space (1 MiB: 32 devices x 8 functions x 4 KiB).
    case ecamTooSmall(node: Int, size: UInt64)
    /// A `ranges` entry whose PCI space code is not I/O, 32-bit or 64-bit memory.
    case unsupportedPCISpace(node: Int, physHigh: UInt32)
    /// An 8250-family UART whose `reg-shift` or `reg-io-width` the binding
    /// does not allow (width 1, 2 or 4; see `NS16550Layout`).
    case unsupportedUARTLayout(node: Int, regShift: UInt32, ioWidth: UInt32)

    // Capacities of the fixed tables in `PlatformDescription`.
    case tooManyMemoryBanks(capacity: Int)
    case tooManyReservedRegions(capacity: Int)
    case tooManySMMUs(capacity: Int)
    case tooManyIOMMUMapEntries(capacity: Int)
    case tooManyPCIWindows(capacity: Int)
    case tooManyMSIMapEntries(capacity: Int)
    case tooManyMSIDoorbells(capacity: Int)
    /// An MSI controller's `reg` ends before its doorbell register (`size` is the first entry's).
    case msiDoorbellOutsideReg(node: Int, size: UInt64)
    /// Two `pci-host-ecam-generic` nodes: we drive one host bridge.
    case multiplePCIHostBridges(node: Int)

    // The description as a whole (checked after every node has been read).
    /// A memory bank reaches above what the CPU can address
    /// (ID_AA64MMFR0_EL1.PARange, Arm ARM D19.2.74): mapping it would name
    /// RAM that does not exist.
    case memoryBeyondPhysicalRange(base: UInt64, size: UInt64, bits: Int)
    /// Two memory banks share addresses: the frame table would count a frame twice.
    case overlappingMemoryBanks(first: UInt64, second: UInt64)
    /// A memory bank covers a device's registers (console, SMMU, ECAM or a PCI window).
    case memoryOverlapsDevice(bank: UInt64, device: UInt64)
    /// A device whose registers the hypervisor drives has a `reg` of size 0.
    case emptyRegister(node: Int)
    /// An `iommu-map` entry whose requester-ID or StreamID range wraps past
    /// 2^32: its last devices would alias StreamID 0 and up.
    case iommuMapOverflows(node: Int, ridBase: UInt32, sidBase: UInt32, length: UInt32)
}
