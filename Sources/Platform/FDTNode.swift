/// A node of a validated tree: where its FDT_BEGIN_NODE token is, its name,
/// and where its parent starts (for `#address-cells`/`#size-cells`).
///
/// Stored as four 32-bit words (a blob's `totalsize` is a 32-bit field, so
/// every offset fits), which Swift passes and returns in two registers:
/// the walks hand nodes around constantly, and a larger node went through
/// memory at every call.
public struct FDTNode: Equatable, Sendable {
    let rawOffset: UInt32
    let rawNameLength: UInt32
    let rawDepth: UInt32
    /// `FDTNode.noParent` for the root (no node starts there: it is not 4-aligned).
    let rawParent: UInt32
    static let noParent = UInt32.max

    init(offset: Int, nameLength: Int, depth: Int, parentOffset: Int?) {
        rawOffset = UInt32(truncatingIfNeeded: offset)
        rawNameLength = UInt32(truncatingIfNeeded: nameLength)
        rawDepth = UInt32(truncatingIfNeeded: depth)
        rawParent = parentOffset.map { UInt32(truncatingIfNeeded: $0) } ?? FDTNode.noParent
    }

    /// `rawParent` as stored: `FDTNode.noParent` for the root.
    init(offset: Int, nameLength: Int, depth: Int, rawParent: UInt32) {
        rawOffset = UInt32(truncatingIfNeeded: offset)
        rawNameLength = UInt32(truncatingIfNeeded: nameLength)
        rawDepth = UInt32(truncatingIfNeeded: depth)
        self.rawParent = rawParent
    }

    /// Blob offset of the node's FDT_BEGIN_NODE token; unique per node.
    public var offset: Int { Int(rawOffset) }
    /// The name follows the token word.
    var nameStart: Int { Int(rawOffset) + 4 }
    var nameLength: Int { Int(rawNameLength) }
    /// Blob offset of the first token after the name (its NUL, padded to 4 bytes).
    var propertiesStart: Int { alignUp4(nameStart + nameLength + 1) }
    /// 0 for the root.
    public var depth: Int { Int(rawDepth) }
    /// `nil` for the root.
    public var parentOffset: Int? { rawParent == FDTNode.noParent ? nil : Int(rawParent) }
}

/// A property of a node: its name (in the strings block) and value bytes.
/// Four 32-bit words, like `FDTNode`.
public struct FDTProperty: Sendable {
    let rawOffset: UInt32
    let rawNode: UInt32
    let rawNameStart: UInt32
    let rawLength: UInt32

    init(offset: Int, node: Int, nameStart: Int, length: Int) {
        rawOffset = UInt32(truncatingIfNeeded: offset)
        rawNode = UInt32(truncatingIfNeeded: node)
        rawNameStart = UInt32(truncatingIfNeeded: nameStart)
        rawLength = UInt32(truncatingIfNeeded: length)
    }

    /// Blob offset of the FDT_PROP token.
    public var offset: Int { Int(rawOffset) }
    /// The node it belongs to (offset of its FDT_BEGIN_NODE).
    public var node: Int { Int(rawNode) }
    /// Blob offset of the name in the strings block.
    var nameStart: Int { Int(rawNameStart) }
    /// The value follows the token, its length and its name offset.
    var valueStart: Int { Int(rawOffset) + FDTToken.propertyHeaderSize }
    public var length: Int { Int(rawLength) }
}
