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
    /// The blob, cut to `totalsize`.
    public let bytes: UnsafeRawBufferPointer
    let structStart: Int
    let structEnd: Int
    let stringsStart: Int
    let stringsEnd: Int
    /// The root node; a validated tree always has one.
    public private(set) var root: FDTNode

    public init(_ buffer: UnsafeRawBufferPointer) throws(FDTError) {
        let header = try FDTHeader(buffer)
        self.header = header
        self.bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<Int(header.totalSize)])
        structStart = Int(header.structOffset)
        structEnd = structStart + Int(header.structSize)
        stringsStart = Int(header.stringsOffset)
        stringsEnd = stringsStart + Int(header.stringsSize)
        // Every stored property must be set before the validating methods can run;
        // an empty node at offset 0 stands until `validateStructure` returns the root.
        root = FDTNode(offset: 0, nameLength: 0, depth: 0, parentOffset: nil)
        try validateReservationMap()
        root = try validateStructure()
    }

    /// Convenience for a boot loader's raw pointer: reads `totalsize` safely
    /// first, then wraps exactly that many bytes.
    public init(blobAt pointer: UnsafeRawPointer, limit: Int) throws(FDTError) {
        let size = try FDTHeader.totalSize(ofBlobAt: pointer, limit: limit)
        try self.init(UnsafeRawBufferPointer(start: pointer, count: size))
    }

    // MARK: Memory reservation block (section 5.3)

    static let reservationEntrySize = 16

    private func validateReservationMap() throws(FDTError) {
        var offset = Int(header.reservationMapOffset)
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

    // MARK: Tokens

    /// Decodes the token at `offset` (absolute, 4-aligned, inside the
    /// structure block) and returns it with the offset of the next token.
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
    private func validateStructure() throws(FDTError) -> FDTNode {
        var offset = structStart
        var depth = 0
        var rootNode: FDTNode?
        // Per open node: whether a child has started (properties must come first).
        // Indexed by depth 0...maxDepth (a generic value parameter must be a literal).
        var sawChild = InlineArray<33, Bool>(repeating: false)
        while true {
            let (decoded, next) = try token(at: offset)
            if rootNode == nil {
                switch decoded {
                case .beginNode, .nop: break
                default: throw .missingRootNode(offset: offset)
                }
            }
            switch decoded {
            case .beginNode(let nameLength):
                if depth == 0 {
                    guard rootNode == nil else { throw .nodeAfterRoot(offset: offset) }
                    rootNode = FDTNode(offset: offset, nameLength: nameLength, depth: 0, parentOffset: nil)
                } else {
                    sawChild[depth] = true
                }
                guard depth < FlattenedDeviceTree.maxDepth else {
                    throw .nestingTooDeep(offset: offset, limit: FlattenedDeviceTree.maxDepth)
                }
                depth += 1
                sawChild[depth] = false
            case .endNode:
                guard depth > 0 else { throw .unbalancedEndNode(offset: offset) }
                depth -= 1
            case .property:
                guard depth > 0 else { throw .propertyOutsideNode(offset: offset) }
                guard !sawChild[depth] else { throw .propertyAfterChildNode(offset: offset) }
            case .nop:
                break
            case .end:
                guard depth == 0 else { throw .unclosedNode(offset: offset, depth: depth) }
                guard let rootNode else { throw .missingRootNode(offset: offset) }
                return rootNode
            }
            guard next < structEnd else { throw .missingEndToken }
            offset = next
        }
    }
}
