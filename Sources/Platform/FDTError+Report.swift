/// What a rejected device tree says about itself, in the pieces a board
/// console can print without String interpolation: a fixed sentence, the
/// property the failing rule is about, the node (blob offset of its
/// FDT_BEGIN_NODE, which `FlattenedDeviceTree.ancestry(ofNodeAt:)` turns into
/// a path), a byte offset for `xxd`, and the one number that explains it.
public struct FDTErrorReport: Equatable, Sendable {
    public let reason: StaticString
    public let property: StaticString?
    /// The property's FDT_PROP token, when the error is about a property
    /// the rule does not name in advance (any one-cell property): the
    /// printer reads its name from the blob.
    public let propertyAt: Int?
    public let node: Int?
    public let offset: Int?
    public let value: UInt64?

    init(_ reason: StaticString, property: StaticString? = nil, propertyAt: Int? = nil, node: Int? = nil,
         offset: Int? = nil, value: UInt64? = nil) {
        self.reason = reason
        self.property = property
        self.propertyAt = propertyAt
        self.node = node
        self.offset = offset
        self.value = value
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.reason.utf8Start == b.reason.utf8Start && a.property?.utf8Start == b.property?.utf8Start
            && a.propertyAt == b.propertyAt && a.node == b.node && a.offset == b.offset && a.value == b.value
    }
}

extension FDTError {
    /// The node the error is about (blob offset of its FDT_BEGIN_NODE), when it is about one.
    public var node: Int? { report.node }

    /// The property the rule is about, when one property is.
    public var property: StaticString? { report.property }

    public var report: FDTErrorReport {
        switch self {
        case .truncatedHeader(let available):
            return .init("blob shorter than the 40-byte header", value: UInt64(available))
        case .badMagic(let magic): return .init("bad magic (want 0xd00dfeed)", value: UInt64(magic))
        case .totalSizeTooSmall(let size): return .init("totalsize smaller than the header", value: UInt64(size))
        case .totalSizeExceedsBuffer(let size, _): return .init("totalsize beyond the buffer", value: UInt64(size))
        case .totalSizeExceedsLimit(let size, _): return .init("totalsize beyond the size limit", value: UInt64(size))
        case .unsupportedVersion(_, let last): return .init("last_comp_version newer than 17", value: UInt64(last))
        case .misalignedStructureBlock(let offset): return .init("off_dt_struct not 4-aligned", value: UInt64(offset))
        case .structureBlockOutOfRange(let offset, _): return .init("structure block outside the blob", value: UInt64(offset))
        case .stringsBlockOutOfRange(let offset, _): return .init("strings block outside the blob", value: UInt64(offset))
        case .misalignedReservationMap(let offset): return .init("off_mem_rsvmap not 8-aligned", value: UInt64(offset))
        case .reservationMapOutOfRange(let offset): return .init("reservation map outside the blob", value: UInt64(offset))
        case .unterminatedReservationMap: return .init("reservation map without its (0, 0) terminator")
        case .reservationOverflows(let address, _): return .init("/memreserve/ entry wraps past 2^64", value: address)
        case .truncatedToken(let offset): return .init("token cut off by the end of the structure block", offset: offset)
        case .badToken(let word, let offset): return .init("unknown structure token", offset: offset, value: UInt64(word))
        case .missingRootNode(let offset): return .init("no root node", offset: offset)
        case .nodeAfterRoot(let offset): return .init("a second top-level node", offset: offset)
        case .unterminatedNodeName(let offset): return .init("node name without NUL", offset: offset)
        case .propertyOutsideNode(let offset): return .init("property outside any node", offset: offset)
        case .propertyAfterChildNode(let offset): return .init("property after a child node", offset: offset)
        case .propertyValueOutOfRange(let offset, let length):
            return .init("property length runs past the structure block", offset: offset, value: UInt64(length))
        case .propertyNameOutOfRange(let offset, let nameOffset):
            return .init("property nameoff outside the strings block", offset: offset, value: UInt64(nameOffset))
        case .unterminatedPropertyName(let offset, let nameOffset):
            return .init("property name without NUL", offset: offset, value: UInt64(nameOffset))
        case .unbalancedEndNode(let offset): return .init("FDT_END_NODE with no open node", offset: offset)
        case .unclosedNode(let offset, let depth):
            return .init("FDT_END with nodes still open", offset: offset, value: UInt64(depth))
        case .missingEndToken: return .init("structure block without FDT_END")
        case .nestingTooDeep(let offset, let limit):
            return .init("nodes nested deeper than the limit", offset: offset, value: UInt64(limit))
        case .propertyNotU32(let node, let length, let property):
            return .init("a one-cell property is not 4 bytes", propertyAt: property, node: node, value: UInt64(length))
        case .addressCellsUnsupported(let node, let cells):
            return .init("unsupported cell count", property: "#address-cells", node: node, value: UInt64(cells))
        case .sizeCellsUnsupported(let node, let cells):
            return .init("unsupported cell count", property: "#size-cells", node: node, value: UInt64(cells))
        case .propertyLengthNotMultiple(let node, let length, _):
            return .init("length not a multiple of the tuple size", node: node, value: UInt64(length))
        case .regionOverflows(let base, _): return .init("address + size wraps past 2^64", property: "reg", value: base)
        case .unterminatedString(let node): return .init("string without NUL", node: node)
        case .stdoutPathUnresolved(let node): return .init("names no node", property: "stdout-path", node: node)
        case .phandleNotFound(let handle): return .init("no node has this phandle", property: "phandle", value: UInt64(handle))
        case .untranslatableAddress(let node): return .init("no parent ranges entry covers it", property: "reg", node: node)
        case .missingReg(let node): return .init("required property missing", property: "reg", node: node)
        case .unknownPSCIMethod(let node): return .init("neither smc nor hvc", property: "method", node: node)
        case .unsupportedIOMMUCells(let node, let cells):
            return .init("not 1", property: "#iommu-cells", node: node, value: UInt64(cells))
        case .badBusRange(let node, let first, let last):
            return .init("bus range empty, reversed or beyond 255", property: "bus-range", node: node,
                         value: UInt64(first) << 32 | UInt64(last))
        case .ecamTooSmall(let node, let size):
            return .init("ECAM smaller than one bus (1 MiB)", property: "reg", node: node, value: size)
        case .unsupportedPCISpace(let node, let physHigh):
            return .init("PCI space not I/O or memory", property: "ranges", node: node, value: UInt64(physHigh))
        case .tooManyMemoryBanks(let capacity): return .init("more memory banks than", value: UInt64(capacity))
        case .tooManyReservedRegions(let capacity): return .init("more reserved regions than", value: UInt64(capacity))
        case .tooManySMMUs(let capacity): return .init("more arm,smmu-v3 nodes than", value: UInt64(capacity))
        case .tooManyIOMMUMapEntries(let capacity):
            return .init("more entries than", property: "iommu-map", value: UInt64(capacity))
        case .tooManyPCIWindows(let capacity): return .init("more windows than", property: "ranges", value: UInt64(capacity))
        case .multiplePCIHostBridges(let node):
            return .init("a second pci-host-ecam-generic", property: "compatible", node: node)
        case .unsupportedUARTLayout(let node, let regShift, let ioWidth):
            return .init("8250 reg-shift or reg-io-width the binding does not allow", property: "reg-io-width",
                         node: node, value: UInt64(regShift) << 32 | UInt64(ioWidth))
        case .tooManyMSIMapEntries(let capacity):
            return .init("more entries than", property: "msi-map", value: UInt64(capacity))
        case .tooManyMSIDoorbells(let capacity):
            return .init("more MSI doorbells than", property: "msi-parent", value: UInt64(capacity))
        case .msiDoorbellOutsideReg(let node, let size):
            return .init("MSI controller too small for its doorbell register", property: "reg", node: node, value: size)
        case .memoryBeyondPhysicalRange(let base, _, _):
            return .init("memory bank beyond the CPU's physical address range", property: "reg", value: base)
        case .overlappingMemoryBanks(_, let second):
            return .init("memory banks overlap", property: "reg", value: second)
        case .memoryOverlapsDevice(_, let device):
            return .init("memory bank covers device registers", property: "reg", value: device)
        case .emptyRegister(let node): return .init("device registers of size 0", property: "reg", node: node)
        case .iommuMapOverflows(let node, _, let sidBase, _):
            return .init("StreamID or requester ID range wraps past 2^32", property: "iommu-map", node: node,
                         value: UInt64(sidBase))
        }
    }
}

extension FlattenedDeviceTree {
    /// The nodes from the root down to the node whose FDT_BEGIN_NODE is at
    /// `offset` (root first), for printing its path; empty when no node starts there.
    public func ancestry(ofNodeAt offset: Int) -> FixedList<33, FDTNode> {
        var chain = FixedList<33, FDTNode>()
        for node in nodes {
            // Document order: a node's ancestors are the open nodes before it,
            // so the chain is cut back to this node's depth before it is added.
            while chain.count > node.depth { chain.remove(at: chain.count - 1) }
            chain.append(node)
            if node.offset == offset { return chain }
        }
        return FixedList<33, FDTNode>()
    }
}
