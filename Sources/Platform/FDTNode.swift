/// A node of a validated tree: where its FDT_BEGIN_NODE token is, its name,
/// and where its parent starts (for `#address-cells`/`#size-cells`).
public struct FDTNode: Equatable, Sendable {
    /// Blob offset of the node's FDT_BEGIN_NODE token; unique per node.
    public let offset: Int
    let nameStart: Int
    let nameLength: Int
    /// Blob offset of the first token after the name.
    let propertiesStart: Int
    /// 0 for the root.
    public let depth: Int
    /// `nil` for the root.
    public let parentOffset: Int?
}

/// A property of a node: its name (in the strings block) and value bytes.
public struct FDTProperty: Sendable {
    /// Blob offset of the FDT_PROP token.
    public let offset: Int
    /// The node it belongs to (offset of its FDT_BEGIN_NODE).
    public let node: Int
    let nameStart: Int
    let valueStart: Int
    public let length: Int
}
