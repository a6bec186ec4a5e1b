import AArch64

/// A validated flattened device tree blob.
///
/// `init` checks the header, the reservation map and every token of the
/// structure block once (bounds, name terminators, string offsets, nesting),
/// so later walks cannot step outside the blob. The tree borrows the caller's
/// bytes: they must stay mapped and unchanged while the tree is used.
public struct FlattenedDeviceTree {
    /// Deeper nesting than this is rejected; QEMU's virt tree is 4 deep and
    /// real boards stay well under 16.
    public static let maxDepth = 32

    public let header: FDTHeader
    /// The blob and where its blocks are.
    @usableFromInline let blocks: FDTBlocks
    /// The root node; a validated tree always has one.
    public let root: FDTNode

    public init(_ buffer: UnsafeRawBufferPointer) throws(FDTError) {
        try self.init(validating: buffer)
    }

    /// The public initialiser's body, inlined into `init(blobAt:limit:)`, its
    /// one caller on the board.
    @_transparent
    init(validating buffer: UnsafeRawBufferPointer) throws(FDTError) {
        let header = try FDTHeader(checking: buffer)
        self.header = header
        // `FDTHeader` checked that both blocks lie inside `totalsize`, a 32-bit count.
        let blocks = FDTBlocks(
            bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<Int(header.totalSize)]),
            rawStructStart: header.structOffset, rawStructEnd: header.structOffset + header.structSize,
            rawStringsStart: header.stringsOffset, rawStringsEnd: header.stringsOffset + header.stringsSize)
        self.blocks = blocks
        try FlattenedDeviceTree.validateReservationMap(blocks.bytes, from: Int(header.reservationMapOffset))
        root = try blocks.validateStructure()
    }

    /// The blob, cut to `totalsize`.
    public var bytes: UnsafeRawBufferPointer { blocks.bytes }
    @usableFromInline var structStart: Int { blocks.structStart }
    var stringsEnd: Int { blocks.stringsEnd }

    /// Convenience for a boot loader's raw pointer: reads `totalsize` safely
    /// first, then wraps exactly that many bytes.
    public init(blobAt pointer: UnsafeRawPointer, limit: Int) throws(FDTError) {
        let size = try FDTHeader.checkedTotalSize(ofBlobAt: pointer, limit: limit)
        try self.init(validating: UnsafeRawBufferPointer(start: pointer, count: size))
    }

    // MARK: Memory reservation block (section 5.3)

    static let reservationEntrySize = 16

    @_transparent
    private static func validateReservationMap(_ bytes: UnsafeRawBufferPointer, from start: Int) throws(FDTError) {
        var offset = start
        while true {
            guard offset + FlattenedDeviceTree.reservationEntrySize <= bytes.count else {
                throw .unterminatedReservationMap
            }
            let address = bytes.bigEndianUInt64(at: offset)
            let size = bytes.bigEndianUInt64(at: offset + 8)
            if address == 0 && size == 0 { return }
            guard address <= UInt64.max - size else { throw .reservationOverflows(address: address, size: size) }
            offset += FlattenedDeviceTree.reservationEntrySize
        }
    }

    /// The `/memreserve/` entries, in blob order.
    public var memoryReservations: MemoryReservations { MemoryReservations(tree: self) }

    public struct MemoryReservations: Sequence {
        let tree: FlattenedDeviceTree
        public struct Iterator: IteratorProtocol {
            let bytes: UnsafeRawBufferPointer
            var offset: Int
            public mutating func next() -> MemoryRange? {
                // Validated in init: a terminator exists and no entry wraps.
                guard offset + FlattenedDeviceTree.reservationEntrySize <= bytes.count else { return nil }
                let address = bytes.bigEndianUInt64(at: offset)
                let size = bytes.bigEndianUInt64(at: offset + 8)
                if address == 0 && size == 0 { return nil }
                offset += FlattenedDeviceTree.reservationEntrySize
                return MemoryRange(base: .init(raw: address), size: size)
            }
        }
        public func makeIterator() -> Iterator {
            Iterator(bytes: tree.bytes, offset: Int(tree.header.reservationMapOffset))
        }
    }
}

/// Where the blocks of a validated blob are: all a token walk needs, in
/// four words (every offset is below `totalsize`, a 32-bit field), so walks
/// and iterators carry it in registers instead of a copy of the tree.
@usableFromInline
struct FDTBlocks {
    /// The blob, cut to `totalsize`.
    let bytes: UnsafeRawBufferPointer
    let rawStructStart: UInt32
    let rawStructEnd: UInt32
    let rawStringsStart: UInt32
    let rawStringsEnd: UInt32

    var structStart: Int { Int(rawStructStart) }
    var structEnd: Int { Int(rawStructEnd) }
    var stringsStart: Int { Int(rawStringsStart) }
    var stringsEnd: Int { Int(rawStringsEnd) }

    // MARK: Tokens

    /// Decodes the token at `offset` (absolute, 4-aligned, inside the
    /// structure block) and returns it with the offset of the next token.
    @usableFromInline
    func token(at offset: Int) throws(FDTError) -> (FDTToken.Decoded, next: Int) {
        guard offset >= structStart, offset + 4 <= structEnd else { throw .truncatedToken(offset: offset) }
        let word = bytes.bigEndianUInt32(at: offset)
        switch word {
        case FDTToken.beginNode:
            let nameStart = offset + 4
            var cursor = nameStart
            while cursor < structEnd && bytes[cursor] != 0 { cursor += 1 }
            guard cursor < structEnd else { throw .unterminatedNodeName(offset: offset) }
            return (.beginNode(nameLength: cursor - nameStart), alignUp4(cursor + 1))
        case FDTToken.endNode:
            return (.endNode, offset + 4)
        case FDTToken.property:
            guard offset + FDTToken.propertyHeaderSize <= structEnd else { throw .truncatedToken(offset: offset) }
            let length = bytes.bigEndianUInt32(at: offset + 4)
            let nameOffset = bytes.bigEndianUInt32(at: offset + 8)
            let valueStart = offset + FDTToken.propertyHeaderSize
            guard UInt64(valueStart) + UInt64(length) <= UInt64(structEnd) else {
                throw .propertyValueOutOfRange(offset: offset, length: length)
            }
            guard Int(nameOffset) < stringsEnd - stringsStart else {
                throw .propertyNameOutOfRange(offset: offset, nameOffset: nameOffset)
            }
            let nameStart = stringsStart + Int(nameOffset)
            var cursor = nameStart
            while cursor < stringsEnd && bytes[cursor] != 0 { cursor += 1 }
            guard cursor < stringsEnd else {
                throw .unterminatedPropertyName(offset: offset, nameOffset: nameOffset)
            }
            let next = alignUp4(valueStart + Int(length))
            return (.property(nameStart: nameStart, valueLength: Int(length)), next)
        case FDTToken.nop:
            return (.nop, offset + 4)
        case FDTToken.end:
            return (.end, offset + 4)
        default:
            throw .badToken(word, offset: offset)
        }
    }

    /// One pass over the whole structure block. Each token advances at least
    /// 4 bytes, so the loop runs at most `size_dt_struct / 4` times.
    @_transparent
    func validateStructure() throws(FDTError) -> FDTNode {
        var offset = structStart
        var depth = 0
        var rootNode: FDTNode?
        // Bit `d`: the open node at depth `d` has started a child (properties
        // must come first). Depth stays within 0...maxDepth (32).
        var sawChild: UInt64 = 0
        while true {
            let (decoded, next) = try token(at: offset)
            // Before the root (depth 0, no root yet) only FDT_BEGIN_NODE and
            // FDT_NOP may come; any other token there is `missingRootNode`.
            // Inside a node the depth is above 0, so the depth-0 cases below
            // tell "before the root" from "after it" by `rootNode`.
            switch decoded {
            case .beginNode(let nameLength):
                if depth == 0 {
                    guard rootNode == nil else { throw .nodeAfterRoot(offset: offset) }
                    rootNode = FDTNode(offset: offset, nameLength: nameLength, depth: 0, parentOffset: nil)
                } else {
                    sawChild |= 1 &<< UInt64(depth)
                }
                guard depth < FlattenedDeviceTree.maxDepth else {
                    throw .nestingTooDeep(offset: offset, limit: FlattenedDeviceTree.maxDepth)
                }
                depth += 1
                sawChild &= ~(1 &<< UInt64(depth))
            case .endNode:
                guard depth > 0 else {
                    throw rootNode == nil ? .missingRootNode(offset: offset) : .unbalancedEndNode(offset: offset)
                }
                depth -= 1
            case .property:
                guard depth > 0 else {
                    throw rootNode == nil ? .missingRootNode(offset: offset) : .propertyOutsideNode(offset: offset)
                }
                guard sawChild & (1 &<< UInt64(depth)) == 0 else { throw .propertyAfterChildNode(offset: offset) }
            case .nop:
                break
            case .end:
                guard let rootNode else { throw .missingRootNode(offset: offset) }
                guard depth == 0 else { throw .unclosedNode(offset: offset, depth: depth) }
                return rootNode
            }
            guard next < structEnd else { throw .missingEndToken }
            offset = next
        }
    }
}
