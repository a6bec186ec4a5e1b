/// What a rejected device tree says about itself, in the pieces a board
/// console can print without String interpolation: a fixed sentence, the
/// property the failing rule is about, the node (blob offset of its
/// FDT_BEGIN_NODE, which `FlattenedDeviceTree.ancestor(ofNodeAt:depth:)` turns
/// into a path), a byte offset for `xxd`, and the one number that explains it.
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
        let (first, second) = reportNumbers
        // The one case with three numbers: its third is read here, so the
        // other cases need not clear a third register.
        var third: UInt64 = 0
        if case .propertyNotU32(_, let length, _) = self { third = UInt64(length) }
        let entry = FDTError.reportRows[reportRow]
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

    /// The row of `reportRows` for this case: the cases with numbers in
    /// declaration order, then the two without. The switch maps each case to
    /// a constant, and the two cases without numbers to the same one, so it
    /// is the compiler's own case order for the cases with numbers (its tag)
    /// and compiles to a compare instead of a jump to code per case (-420
    /// bytes); `isMissingEndToken` tells the two apart outside the switch.
    private var reportRow: Int {
        let row = switch self {
        case .truncatedHeader: 0
        case .badMagic: 1
        case .totalSizeTooSmall: 2
        case .totalSizeExceedsBuffer: 3
        case .totalSizeExceedsLimit: 4
        case .unsupportedVersion: 5
        case .misalignedStructureBlock: 6
        case .structureBlockOutOfRange: 7
        case .stringsBlockOutOfRange: 8
        case .misalignedReservationMap: 9
        case .reservationMapOutOfRange: 10
        case .reservationOverflows: 11
        case .truncatedToken: 12
        case .badToken: 13
        case .missingRootNode: 14
        case .nodeAfterRoot: 15
        case .unterminatedNodeName: 16
        case .propertyOutsideNode: 17
        case .propertyAfterChildNode: 18
        case .propertyValueOutOfRange: 19
        case .propertyNameOutOfRange: 20
        case .unterminatedPropertyName: 21
        case .unbalancedEndNode: 22
        case .unclosedNode: 23
        case .nestingTooDeep: 24
        case .propertyNotU32: 25
        case .addressCellsUnsupported: 26
        case .sizeCellsUnsupported: 27
        case .propertyLengthNotMultiple: 28
        case .regionOverflows: 29
        case .unterminatedString: 30
        case .stdoutPathUnresolved: 31
        case .phandleNotFound: 32
        case .untranslatableAddress: 33
        case .missingReg: 34
        case .unknownPSCIMethod: 35
        case .unsupportedIOMMUCells: 36
        case .badBusRange: 37
        case .ecamTooSmall: 38
        case .unsupportedPCISpace: 39
        case .unsupportedUARTLayout: 40
        case .tooManyMemoryBanks: 41
        case .tooManyReservedRegions: 42
        case .tooManySMMUs: 43
        case .tooManyIOMMUMapEntries: 44
        case .tooManyPCIWindows: 45
        case .tooManyMSIMapEntries: 46
        case .tooManyMSIDoorbells: 47
        case .msiDoorbellOutsideReg: 48
        case .multiplePCIHostBridges: 49
        case .memoryBeyondPhysicalRange: 50
        case .overlappingMemoryBanks: 51
        case .memoryOverlapsDevice: 52
        case .emptyRegister: 53
        case .iommuMapOverflows: 54
        case .unterminatedReservationMap, .missingEndToken: 55
        }
        return isMissingEndToken ? row + 1 : row
    }

    /// Out of line: inlined, its test merged into the switch above and gave
    /// its last arm a computed value, which turned the switch back into a
    /// jump per case.
    @inline(never) private var isMissingEndToken: Bool {
        if case .missingEndToken = self { true } else { false }
    }

    /// The case's numbers, in the order its row's fields take them. Node,
    /// offset, token and count numbers are bit patterns of `Int`s; values
    /// convert as numbers. Cases whose numbers sit in the same payload
    /// fields share one arm, so the switch has a few bodies, not one per case.
    private var reportNumbers: (UInt64, UInt64) {
        switch self {
        case .truncatedHeader(let first), .truncatedToken(let first), .missingRootNode(let first),
             .nodeAfterRoot(let first), .unterminatedNodeName(let first), .propertyOutsideNode(let first),
             .propertyAfterChildNode(let first), .unbalancedEndNode(let first), .unterminatedString(let first),
             .stdoutPathUnresolved(let first), .untranslatableAddress(let first), .missingReg(let first),
             .unknownPSCIMethod(let first), .tooManyMemoryBanks(let first), .tooManyReservedRegions(let first),
             .tooManySMMUs(let first), .tooManyIOMMUMapEntries(let first), .tooManyPCIWindows(let first),
             .tooManyMSIMapEntries(let first), .tooManyMSIDoorbells(let first),
             .multiplePCIHostBridges(let first), .emptyRegister(let first):
            (bits(first), 0)
        case .reservationOverflows(let first, _), .regionOverflows(let first, _),
             .memoryBeyondPhysicalRange(let first, _, _), .overlappingMemoryBanks(_, let first),
             .memoryOverlapsDevice(_, let first):
            (first, 0)
        case .badMagic(let first), .totalSizeTooSmall(let first), .totalSizeExceedsBuffer(let first, _),
             .totalSizeExceedsLimit(let first, _), .unsupportedVersion(_, let first),
             .misalignedStructureBlock(let first), .structureBlockOutOfRange(let first, _),
             .stringsBlockOutOfRange(let first, _), .misalignedReservationMap(let first),
             .reservationMapOutOfRange(let first), .phandleNotFound(let first):
            (UInt64(first), 0)
        case .unterminatedReservationMap, .missingEndToken:
            (0, 0)
        case .badToken(let second, let first), .propertyValueOutOfRange(let first, let second),
             .propertyNameOutOfRange(let first, let second), .unterminatedPropertyName(let first, let second),
             .addressCellsUnsupported(let first, let second), .sizeCellsUnsupported(let first, let second),
             .unsupportedIOMMUCells(let first, let second), .unsupportedPCISpace(let first, let second),
             .iommuMapOverflows(let first, _, let second, _):
            (bits(first), UInt64(second))
        case .unclosedNode(let first, let second), .nestingTooDeep(let first, let second),
             .propertyLengthNotMultiple(let first, let second, _):
            (bits(first), bits(second))
        case .ecamTooSmall(let first, let second), .msiDoorbellOutsideReg(let first, let second):
            (bits(first), second)
        case .propertyNotU32(let node, _, let property):
            (bits(property), bits(node))
        case .badBusRange(let node, let first, let last):
            (bits(node), UInt64(first) << 32 | UInt64(last))
        case .unsupportedUARTLayout(let node, let regShift, let ioWidth):
            (bits(node), UInt64(regShift) << 32 | UInt64(ioWidth))
        }
    }

    /// One row per case, in the order of `reportRow` (the declaration order
    /// of `FDTError`, its two cases without numbers last): a table in data
    /// instead of a report built in code per case.
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
        FDTReportRow("reservation map without its (0, 0) terminator", 0, 0),
        FDTReportRow("structure block without FDT_END", 0, 0),
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
    /// The node at `depth` on the path from the root to the node whose
    /// FDT_BEGIN_NODE is at `offset` (depth 0: the root; at the node's own
    /// depth: the node), for printing its path one name at a time; `nil` when
    /// no node starts at `offset` or `depth` is below it. One walk and no
    /// list: in document order a node's ancestor at `depth` is the last node
    /// at that depth before it.
    @_transparent
    public func ancestor(ofNodeAt offset: Int, depth: Int) -> FDTNode? {
        var found: FDTNode?
        for node in nodes {
            if node.depth == depth { found = node }
            if node.offset == offset { return node.depth < depth ? nil : found }
        }
        return nil
    }
}
