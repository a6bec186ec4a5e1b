/// Where in the blob a rejected value is: the node (blob offset of its
/// FDT_BEGIN_NODE) and the property the rule is about, so a report can name
/// both. Errors about the blob's layout rather than one property have neither.
extension FDTError {
    /// The node the error is about, when it is about one.
    public var node: Int? {
        switch self {
        case .propertyNotU32(let node, _), .addressCellsUnsupported(let node, _), .sizeCellsUnsupported(let node, _),
             .propertyLengthNotMultiple(let node, _, _), .unterminatedString(let node), .stdoutPathUnresolved(let node),
             .untranslatableAddress(let node), .missingReg(let node), .unknownPSCIMethod(let node),
             .unsupportedIOMMUCells(let node, _), .unsupportedPCISpace(let node, _),
             .unsupportedUARTLayout(let node, _, _), .multiplePCIHostBridges(let node):
            return node
        default:
            return nil
        }
    }

    /// The property the rule is about, when one property is.
    public var property: StaticString? {
        switch self {
        case .addressCellsUnsupported: return "#address-cells"
        case .sizeCellsUnsupported: return "#size-cells"
        case .stdoutPathUnresolved: return "stdout-path"
        case .untranslatableAddress: return "ranges"
        case .missingReg: return "reg"
        case .unknownPSCIMethod: return "method"
        case .unsupportedIOMMUCells: return "#iommu-cells"
        case .unsupportedPCISpace: return "ranges"
        case .unsupportedUARTLayout: return "reg-io-width"
        case .multiplePCIHostBridges: return "compatible"
        case .badBusRange: return "bus-range"
        default: return nil
        }
    }
}
