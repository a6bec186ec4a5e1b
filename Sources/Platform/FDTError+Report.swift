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
        let (row, first, second) = reportNumbers
        // The one case with three numbers: its third is read here, so the
        // other cases need not clear a third register.
        var third: UInt64 = 0
        if case .propertyNotU32(_, let length, _) = self { third = UInt64(length) }
        let entry = FDTError.reportRows[row]
        // The case's numbers fill the row's fields in the order propertyAt,
        // node, offset, value; each field taken moves the rest up.
        var numbers = (first, second, third)
        var propertyAt: Int?
        var node: Int?
        var offset: Int?
        var value: UInt64?
        if entry.fields & FDTReportRow.propertyAt != 0 {
            propertyAt = Int(bitPattern: UInt(numbers.0))
            numbers = (numbers.1, numbers.2, 0)
        }
        if entry.fields & FDTReportRow.node != 0 {
            node = Int(bitPattern: UInt(numbers.0))
            numbers = (numbers.1, numbers.2, 0)
        }
        if entry.fields & FDTReportRow.offset != 0 {
            offset = Int(bitPattern: UInt(numbers.0))
            numbers = (numbers.1, numbers.2, 0)
        }
        if entry.fields & FDTReportRow.value != 0 { value = numbers.0 }
        return FDTErrorReport(entry.reason, property: FDTError.reportProperties[Int(entry.property)],
                              propertyAt: propertyAt, node: node,
                              offset: offset, value: value)
    }

    /// The row of `reportRows` for this case and its numbers, in the order
    /// the row's fields take them. Node, offset and token numbers are bit
    /// patterns of `Int`s; values convert as numbers.
    private var reportNumbers: (Int, UInt64, UInt64) {
        switch self {
        case .truncatedHeader(let available): (0, UInt64(available), 0)
        case .badMagic(let magic): (1, UInt64(magic), 0)
        case .totalSizeTooSmall(let size): (2, UInt64(size), 0)
        case .totalSizeExceedsBuffer(let size, _): (3, UInt64(size), 0)
        case .totalSizeExceedsLimit(let size, _): (4, UInt64(size), 0)
        case .unsupportedVersion(_, let last): (5, UInt64(last), 0)
        case .misalignedStructureBlock(let offset): (6, UInt64(offset), 0)
        case .structureBlockOutOfRange(let offset, _): (7, UInt64(offset), 0)
        case .stringsBlockOutOfRange(let offset, _): (8, UInt64(offset), 0)
        case .misalignedReservationMap(let offset): (9, UInt64(offset), 0)
        case .reservationMapOutOfRange(let offset): (10, UInt64(offset), 0)
        case .unterminatedReservationMap: (11, 0, 0)
        case .reservationOverflows(let address, _): (12, address, 0)
        case .truncatedToken(let offset): (13, bits(offset), 0)
        case .badToken(let word, let offset): (14, bits(offset), UInt64(word))
        case .missingRootNode(let offset): (15, bits(offset), 0)
        case .nodeAfterRoot(let offset): (16, bits(offset), 0)
        case .unterminatedNodeName(let offset): (17, bits(offset), 0)
        case .propertyOutsideNode(let offset): (18, bits(offset), 0)
        case .propertyAfterChildNode(let offset): (19, bits(offset), 0)
        case .propertyValueOutOfRange(let offset, let length): (20, bits(offset), UInt64(length))
        case .propertyNameOutOfRange(let offset, let nameOffset): (21, bits(offset), UInt64(nameOffset))
        case .unterminatedPropertyName(let offset, let nameOffset): (22, bits(offset), UInt64(nameOffset))
        case .unbalancedEndNode(let offset): (23, bits(offset), 0)
        case .unclosedNode(let offset, let depth): (24, bits(offset), UInt64(depth))
        case .missingEndToken: (25, 0, 0)
        case .nestingTooDeep(let offset, let limit): (26, bits(offset), UInt64(limit))
        case .propertyNotU32(let node, _, let property): (27, bits(property), bits(node))
        case .addressCellsUnsupported(let node, let cells): (28, bits(node), UInt64(cells))
        case .sizeCellsUnsupported(let node, let cells): (29, bits(node), UInt64(cells))
        case .propertyLengthNotMultiple(let node, let length, _): (30, bits(node), UInt64(length))
        case .regionOverflows(let base, _): (31, base, 0)
        case .unterminatedString(let node): (32, bits(node), 0)
        case .stdoutPathUnresolved(let node): (33, bits(node), 0)
        case .phandleNotFound(let handle): (34, UInt64(handle), 0)
        case .untranslatableAddress(let node): (35, bits(node), 0)
        case .missingReg(let node): (36, bits(node), 0)
        case .unknownPSCIMethod(let node): (37, bits(node), 0)
        case .unsupportedIOMMUCells(let node, let cells): (38, bits(node), UInt64(cells))
        case .badBusRange(let node, let first, let last): (39, bits(node), UInt64(first) << 32 | UInt64(last))
        case .ecamTooSmall(let node, let size): (40, bits(node), size)
        case .unsupportedPCISpace(let node, let physHigh): (41, bits(node), UInt64(physHigh))
        case .unsupportedUARTLayout(let node, let regShift, let ioWidth):
            (42, bits(node), UInt64(regShift) << 32 | UInt64(ioWidth))
        case .tooManyMemoryBanks(let capacity): (43, UInt64(capacity), 0)
        case .tooManyReservedRegions(let capacity): (44, UInt64(capacity), 0)
        case .tooManySMMUs(let capacity): (45, UInt64(capacity), 0)
        case .tooManyIOMMUMapEntries(let capacity): (46, UInt64(capacity), 0)
        case .tooManyPCIWindows(let capacity): (47, UInt64(capacity), 0)
        case .tooManyMSIMapEntries(let capacity): (48, UInt64(capacity), 0)
        case .tooManyMSIDoorbells(let capacity): (49, UInt64(capacity), 0)
        case .msiDoorbellOutsideReg(let node, let size): (50, bits(node), size)
        case .multiplePCIHostBridges(let node): (51, bits(node), 0)
        case .memoryBeyondPhysicalRange(let base, _, _): (52, base, 0)
        case .overlappingMemoryBanks(_, let second): (53, second, 0)
        case .memoryOverlapsDevice(_, let device): (54, device, 0)
        case .emptyRegister(let node): (55, bits(node), 0)
        case .iommuMapOverflows(let node, _, let sidBase, _): (56, bits(node), UInt64(sidBase))
        }
    }

    /// One row per case, in the declaration order of `FDTError` (the
    /// numbers of `reportNumbers`): a table in data instead of a report
    /// built in code per case.
    static let reportRows: InlineArray<57, FDTReportRow> = [
        FDTReportRow("blob shorter than the 40-byte header", 0, FDTReportRow.value),
        FDTReportRow("bad magic (want 0xd00dfeed)", 0, FDTReportRow.value),
        FDTReportRow("totalsize smaller than the header", 0, FDTReportRow.value),
        FDTReportRow("totalsize beyond the buffer", 0, FDTReportRow.value),
        FDTReportRow("totalsize beyond the size limit", 0, FDTReportRow.value),
        FDTReportRow("last_comp_version newer than 17", 0, FDTReportRow.value),
        FDTReportRow("off_dt_struct not 4-aligned", 0, FDTReportRow.value),
        FDTReportRow("structure block outside the blob", 0, FDTReportRow.value),
        FDTReportRow("strings block outside the blob", 0, FDTReportRow.value),
        FDTReportRow("off_mem_rsvmap not 8-aligned", 0, FDTReportRow.value),
        FDTReportRow("reservation map outside the blob", 0, FDTReportRow.value),
        FDTReportRow("reservation map without its (0, 0) terminator", 0, 0),
        FDTReportRow("/memreserve/ entry wraps past 2^64", 0, FDTReportRow.value),
        FDTReportRow("token cut off by the end of the structure block", 0, FDTReportRow.offset),
        FDTReportRow("unknown structure token", 0, FDTReportRow.offset | FDTReportRow.value),
        FDTReportRow("no root node", 0, FDTReportRow.offset),
        FDTReportRow("a second top-level node", 0, FDTReportRow.offset),
        FDTReportRow("node name without NUL", 0, FDTReportRow.offset),
        FDTReportRow("property outside any node", 0, FDTReportRow.offset),
        FDTReportRow("property after a child node", 0, FDTReportRow.offset),
        FDTReportRow("property length runs past the structure block", 0, FDTReportRow.offset | FDTReportRow.value),
        FDTReportRow("property nameoff outside the strings block", 0, FDTReportRow.offset | FDTReportRow.value),
        FDTReportRow("property name without NUL", 0, FDTReportRow.offset | FDTReportRow.value),
        FDTReportRow("FDT_END_NODE with no open node", 0, FDTReportRow.offset),
        FDTReportRow("FDT_END with nodes still open", 0, FDTReportRow.offset | FDTReportRow.value),
        FDTReportRow("structure block without FDT_END", 0, 0),
        FDTReportRow("nodes nested deeper than the limit", 0, FDTReportRow.offset | FDTReportRow.value),
        FDTReportRow("a one-cell property is not 4 bytes", 0,
                     FDTReportRow.propertyAt | FDTReportRow.node | FDTReportRow.value),
        FDTReportRow("unsupported cell count", 1, FDTReportRow.node | FDTReportRow.value),
        FDTReportRow("unsupported cell count", 2, FDTReportRow.node | FDTReportRow.value),
        FDTReportRow("length not a multiple of the tuple size", 0, FDTReportRow.node | FDTReportRow.value),
        FDTReportRow("address + size wraps past 2^64", 3, FDTReportRow.value),
        FDTReportRow("string without NUL", 0, FDTReportRow.node),
        FDTReportRow("names no node", 4, FDTReportRow.node),
        FDTReportRow("no node has this phandle", 5, FDTReportRow.value),
        FDTReportRow("no parent ranges entry covers it", 3, FDTReportRow.node),
        FDTReportRow("required property missing", 3, FDTReportRow.node),
        FDTReportRow("neither smc nor hvc", 6, FDTReportRow.node),
        FDTReportRow("not 1", 7, FDTReportRow.node | FDTReportRow.value),
        FDTReportRow("bus range empty, reversed or beyond 255", 8, FDTReportRow.node | FDTReportRow.value),
        FDTReportRow("ECAM smaller than one bus (1 MiB)", 3, FDTReportRow.node | FDTReportRow.value),
        FDTReportRow("PCI space not I/O or memory", 9, FDTReportRow.node | FDTReportRow.value),
        FDTReportRow("8250 reg-shift or reg-io-width the binding does not allow", 10,
                     FDTReportRow.node | FDTReportRow.value),
        FDTReportRow("more memory banks than", 0, FDTReportRow.value),
        FDTReportRow("more reserved regions than", 0, FDTReportRow.value),
        FDTReportRow("more arm,smmu-v3 nodes than", 0, FDTReportRow.value),
        FDTReportRow("more entries than", 11, FDTReportRow.value),
        FDTReportRow("more windows than", 9, FDTReportRow.value),
        FDTReportRow("more entries than", 12, FDTReportRow.value),
        FDTReportRow("more MSI doorbells than", 13, FDTReportRow.value),
        FDTReportRow("MSI controller too small for its doorbell register", 3, FDTReportRow.node | FDTReportRow.value),
        FDTReportRow("a second pci-host-ecam-generic", 14, FDTReportRow.node),
        FDTReportRow("memory bank beyond the CPU's physical address range", 3, FDTReportRow.value),
        FDTReportRow("memory banks overlap", 3, FDTReportRow.value),
        FDTReportRow("memory bank covers device registers", 3, FDTReportRow.value),
        FDTReportRow("device registers of size 0", 3, FDTReportRow.node),
        FDTReportRow("StreamID or requester ID range wraps past 2^32", 11,
                     FDTReportRow.node | FDTReportRow.value),
    ]

    /// The properties rows name (`FDTReportRow.property`; 0: none).
    static let reportProperties: InlineArray<15, StaticString?> = [
        nil,  // 0
        "#address-cells",  // 1
        "#size-cells",  // 2
        "reg",  // 3
        "stdout-path",  // 4
        "phandle",  // 5
        "method",  // 6
        "#iommu-cells",  // 7
        "bus-range",  // 8
        "ranges",  // 9
        "reg-io-width",  // 10
        "iommu-map",  // 11
        "msi-map",  // 12
        "msi-parent",  // 13
        "compatible",  // 14
    ]
}

/// The bit pattern of an `Int` (a node, token or byte offset) in a report number.
@inline(__always) private func bits(_ value: Int) -> UInt64 { UInt64(UInt(bitPattern: value)) }

/// What one `FDTError` case reports besides its numbers: the sentence, the
/// property (an index into `FDTError.reportProperties`), and which report
/// fields its numbers fill.
struct FDTReportRow: Sendable {
    static let propertyAt: UInt8 = 1 << 0
    static let node: UInt8 = 1 << 1
    static let offset: UInt8 = 1 << 2
    static let value: UInt8 = 1 << 3

    let reason: StaticString
    let property: UInt8
    let fields: UInt8

    // Inlined so the table is built at compile time (a static data object,
    // no initializer code).
    @inline(__always) init(_ reason: StaticString, _ property: UInt8, _ fields: UInt8) {
        self.reason = reason
        self.property = property
        self.fields = fields
    }
}

extension FlattenedDeviceTree {
    /// The nodes from the root down to the node whose FDT_BEGIN_NODE is at
    /// `offset` (root first), for printing its path; empty when no node starts there.
    public func ancestry(ofNodeAt offset: Int) -> FixedList<33, FDTNode> {
        // Document order: a node's ancestors are the open nodes before it,
        // one per depth, so each node takes its depth's slot (depth is at
        // most `maxDepth`, 32, in a validated tree).
        var path = InlineArray<33, FDTNode>(repeating: root)
        var chain = FixedList<33, FDTNode>()
        for node in nodes {
            path[node.depth] = node
            if node.offset == offset {
                var depth = 0
                while depth <= node.depth {
                    chain.append(path[depth])
                    depth += 1
                }
                break
            }
        }
        return chain
    }
}
