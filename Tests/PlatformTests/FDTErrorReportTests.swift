import XCTest
@testable import Platform

/// `FDTError.report` reads a table; these pin every case's report to what
/// the per-case code it replaced built: the same sentence, property and
/// numbers in the same fields.
final class FDTErrorReportTests: XCTestCase {
    struct Expected: Equatable {
        let row: Int
        let reason: String
        let property: String?
        let propertyAt: Int?
        let node: Int?
        let offset: Int?
        let value: UInt64?

        init(_ row: Int, _ reason: StaticString, property: StaticString? = nil, propertyAt: Int? = nil,
             node: Int? = nil, offset: Int? = nil, value: UInt64? = nil) {
            self.row = row
            self.reason = "\(reason)"
            self.property = property.map { "\($0)" }
            self.propertyAt = propertyAt
            self.node = node
            self.offset = offset
            self.value = value
        }
    }

    /// The report each case built before the table (an exhaustive switch:
    /// a new case does not compile until it is added here), with its row
    /// (declaration order, the two cases without numbers last).
    static func expected(_ error: FDTError) -> Expected {
        switch error {
        case .truncatedHeader(let available):
            return Expected(0, "blob shorter than the 40-byte header", value: UInt64(available))
        case .badMagic(let magic): return Expected(1, "bad magic (want 0xd00dfeed)", value: UInt64(magic))
        case .totalSizeTooSmall(let size): return Expected(2, "totalsize smaller than the header", value: UInt64(size))
        case .totalSizeExceedsBuffer(let size, _): return Expected(3, "totalsize beyond the buffer", value: UInt64(size))
        case .totalSizeExceedsLimit(let size, _): return Expected(4, "totalsize beyond the size limit", value: UInt64(size))
        case .unsupportedVersion(_, let last): return Expected(5, "last_comp_version newer than 17", value: UInt64(last))
        case .misalignedStructureBlock(let offset): return Expected(6, "off_dt_struct not 4-aligned", value: UInt64(offset))
        case .structureBlockOutOfRange(let offset, _): return Expected(7, "structure block outside the blob", value: UInt64(offset))
        case .stringsBlockOutOfRange(let offset, _): return Expected(8, "strings block outside the blob", value: UInt64(offset))
        case .misalignedReservationMap(let offset): return Expected(9, "off_mem_rsvmap not 8-aligned", value: UInt64(offset))
        case .reservationMapOutOfRange(let offset): return Expected(10, "reservation map outside the blob", value: UInt64(offset))
        case .unterminatedReservationMap: return Expected(55, "reservation map without its (0, 0) terminator")
        case .reservationOverflows(let address, _): return Expected(11, "/memreserve/ entry wraps past 2^64", value: address)
        case .truncatedToken(let offset): return Expected(12, "token cut off by the end of the structure block", offset: offset)
        case .badToken(let word, let offset): return Expected(13, "unknown structure token", offset: offset, value: UInt64(word))
        case .missingRootNode(let offset): return Expected(14, "no root node", offset: offset)
        case .nodeAfterRoot(let offset): return Expected(15, "a second top-level node", offset: offset)
        case .unterminatedNodeName(let offset): return Expected(16, "node name without NUL", offset: offset)
        case .propertyOutsideNode(let offset): return Expected(17, "property outside any node", offset: offset)
        case .propertyAfterChildNode(let offset): return Expected(18, "property after a child node", offset: offset)
        case .propertyValueOutOfRange(let offset, let length):
            return Expected(19, "property length runs past the structure block", offset: offset, value: UInt64(length))
        case .propertyNameOutOfRange(let offset, let nameOffset):
            return Expected(20, "property nameoff outside the strings block", offset: offset, value: UInt64(nameOffset))
        case .unterminatedPropertyName(let offset, let nameOffset):
            return Expected(21, "property name without NUL", offset: offset, value: UInt64(nameOffset))
        case .unbalancedEndNode(let offset): return Expected(22, "FDT_END_NODE with no open node", offset: offset)
        case .unclosedNode(let offset, let depth):
            return Expected(23, "FDT_END with nodes still open", offset: offset, value: UInt64(depth))
        case .missingEndToken: return Expected(56, "structure block without FDT_END")
        case .nestingTooDeep(let offset, let limit):
            return Expected(24, "nodes nested deeper than the limit", offset: offset, value: UInt64(limit))
        case .propertyNotU32(let node, let length, let property):
            return Expected(25, "a one-cell property is not 4 bytes", propertyAt: property, node: node, value: UInt64(length))
        case .addressCellsUnsupported(let node, let cells):
            return Expected(26, "unsupported cell count", property: "#address-cells", node: node, value: UInt64(cells))
        case .sizeCellsUnsupported(let node, let cells):
            return Expected(27, "unsupported cell count", property: "#size-cells", node: node, value: UInt64(cells))
        case .propertyLengthNotMultiple(let node, let length, _):
            return Expected(28, "length not a multiple of the tuple size", node: node, value: UInt64(length))
        case .regionOverflows(let base, _): return Expected(29, "address + size wraps past 2^64", property: "reg", value: base)
        case .unterminatedString(let node): return Expected(30, "string without NUL", node: node)
        case .stdoutPathUnresolved(let node): return Expected(31, "names no node", property: "stdout-path", node: node)
        case .phandleNotFound(let handle): return Expected(32, "no node has this phandle", property: "phandle", value: UInt64(handle))
        case .untranslatableAddress(let node): return Expected(33, "no parent ranges entry covers it", property: "reg", node: node)
        case .missingReg(let node): return Expected(34, "required property missing", property: "reg", node: node)
        case .unknownPSCIMethod(let node): return Expected(35, "neither smc nor hvc", property: "method", node: node)
        case .unsupportedIOMMUCells(let node, let cells):
            return Expected(36, "not 1", property: "#iommu-cells", node: node, value: UInt64(cells))
        case .badBusRange(let node, let first, let last):
            return Expected(37, "bus range empty, reversed or beyond 255", property: "bus-range", node: node,
                         value: UInt64(first) << 32 | UInt64(last))
        case .ecamTooSmall(let node, let size):
            return Expected(38, "ECAM smaller than one bus (1 MiB)", property: "reg", node: node, value: size)
        case .unsupportedPCISpace(let node, let physHigh):
            return Expected(39, "PCI space not I/O or memory", property: "ranges", node: node, value: UInt64(physHigh))
        case .tooManyMemoryBanks(let capacity): return Expected(41, "more memory banks than", value: UInt64(capacity))
        case .tooManyReservedRegions(let capacity): return Expected(42, "more reserved regions than", value: UInt64(capacity))
        case .tooManySMMUs(let capacity): return Expected(43, "more arm,smmu-v3 nodes than", value: UInt64(capacity))
        case .tooManyIOMMUMapEntries(let capacity):
            return Expected(44, "more entries than", property: "iommu-map", value: UInt64(capacity))
        case .tooManyPCIWindows(let capacity): return Expected(45, "more windows than", property: "ranges", value: UInt64(capacity))
        case .multiplePCIHostBridges(let node):
            return Expected(49, "a second pci-host-ecam-generic", property: "compatible", node: node)
        case .unsupportedUARTLayout(let node, let regShift, let ioWidth):
            return Expected(40, "8250 reg-shift or reg-io-width the binding does not allow", property: "reg-io-width",
                         node: node, value: UInt64(regShift) << 32 | UInt64(ioWidth))
        case .tooManyMSIMapEntries(let capacity):
            return Expected(46, "more entries than", property: "msi-map", value: UInt64(capacity))
        case .tooManyMSIDoorbells(let capacity):
            return Expected(47, "more MSI doorbells than", property: "msi-parent", value: UInt64(capacity))
        case .msiDoorbellOutsideReg(let node, let size):
            return Expected(48, "MSI controller too small for its doorbell register", property: "reg", node: node, value: size)
        case .memoryBeyondPhysicalRange(let base, _, _):
            return Expected(50, "memory bank beyond the CPU's physical address range", property: "reg", value: base)
        case .overlappingMemoryBanks(_, let second):
            return Expected(51, "memory banks overlap", property: "reg", value: second)
        case .memoryOverlapsDevice(_, let device):
            return Expected(52, "memory bank covers device registers", property: "reg", value: device)
        case .emptyRegister(let node): return Expected(53, "device registers of size 0", property: "reg", node: node)
        case .iommuMapOverflows(let node, _, let sidBase, _):
            return Expected(54, "StreamID or requester ID range wraps past 2^32", property: "iommu-map", node: node,
                         value: UInt64(sidBase))
        }
    }

    /// One error per case, every number distinct.
    static let samples: [FDTError] = [
        .truncatedHeader(available: 11), .badMagic(0xDEAD_BEEF), .totalSizeTooSmall(12),
        .totalSizeExceedsBuffer(totalSize: 13, available: 14), .totalSizeExceedsLimit(totalSize: 15, limit: 16),
        .unsupportedVersion(version: 18, lastCompatible: 19), .misalignedStructureBlock(offset: 21),
        .structureBlockOutOfRange(offset: 22, size: 23), .stringsBlockOutOfRange(offset: 24, size: 25),
        .misalignedReservationMap(offset: 26), .reservationMapOutOfRange(offset: 27), .unterminatedReservationMap,
        .reservationOverflows(address: 0xFFFF_FFFF_FFFF_0000, size: 0x1_0000), .truncatedToken(offset: 28),
        .badToken(0x77, offset: 29), .missingRootNode(offset: 30), .nodeAfterRoot(offset: 31),
        .unterminatedNodeName(offset: 32), .propertyOutsideNode(offset: 33), .propertyAfterChildNode(offset: 34),
        .propertyValueOutOfRange(offset: 35, length: 36), .propertyNameOutOfRange(offset: 37, nameOffset: 38),
        .unterminatedPropertyName(offset: 39, nameOffset: 40), .unbalancedEndNode(offset: 41),
        .unclosedNode(offset: 42, depth: 3), .missingEndToken, .nestingTooDeep(offset: 43, limit: 32),
        .propertyNotU32(node: 44, length: 5, property: 48), .addressCellsUnsupported(node: 52, cells: 3),
        .sizeCellsUnsupported(node: 56, cells: 4), .propertyLengthNotMultiple(node: 60, length: 7, tupleBytes: 8),
        .regionOverflows(base: 0xFFFF_FFFF_0000_0000, size: 0x2_0000_0000), .unterminatedString(node: 64),
        .stdoutPathUnresolved(node: 68), .phandleNotFound(0x99), .untranslatableAddress(node: 72),
        .missingReg(node: 76), .unknownPSCIMethod(node: 80), .unsupportedIOMMUCells(node: 84, cells: 2),
        .badBusRange(node: 88, first: 5, last: 300), .ecamTooSmall(node: 92, size: 0x8_0000),
        .unsupportedPCISpace(node: 96, physHigh: 0x8000_0000), .unsupportedUARTLayout(node: 100, regShift: 6, ioWidth: 3),
        .tooManyMemoryBanks(capacity: 101), .tooManyReservedRegions(capacity: 102), .tooManySMMUs(capacity: 103),
        .tooManyIOMMUMapEntries(capacity: 104), .tooManyPCIWindows(capacity: 105),
        .tooManyMSIMapEntries(capacity: 106), .tooManyMSIDoorbells(capacity: 107),
        .msiDoorbellOutsideReg(node: 108, size: 0x10), .multiplePCIHostBridges(node: 112),
        .memoryBeyondPhysicalRange(base: 0x100_0000_0000, size: 0x1000, bits: 40),
        .overlappingMemoryBanks(first: 0x4000_0000, second: 0x4800_0000),
        .memoryOverlapsDevice(bank: 0x4000_0000, device: 0x4000_1000), .emptyRegister(node: 116),
        .iommuMapOverflows(node: 120, ridBase: 0x10, sidBase: 0xFFFF_FFF0, length: 0x20),
    ]

    func testEveryCaseReportsWhatItsCodeDid() {
        XCTAssertEqual(Self.samples.map { Self.expected($0).row }.sorted(), Array(0..<FDTError.reportRows.count),
                       "one sample per case, each row once")
        for error in Self.samples {
            let report = error.report
            let got = Expected(Self.expected(error).row, report.reason, property: report.property,
                               propertyAt: report.propertyAt, node: report.node, offset: report.offset,
                               value: report.value)
            XCTAssertEqual(got, Self.expected(error), "\(error)")
            XCTAssertEqual(error.node, got.node, "\(error)")
            XCTAssertEqual(error.property.map { "\($0)" }, got.property, "\(error)")
        }
    }
}
