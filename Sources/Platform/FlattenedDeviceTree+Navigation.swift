/// Walking a validated tree: nodes in document order, properties of a node,
/// paths, aliases and phandles (Devicetree Specification v0.4, chapter 2).
///
/// Every walk is iterative with a fixed-size stack and advances at least one
/// 4-byte token per step, so it ends within `size_dt_struct / 4` steps.
extension FlattenedDeviceTree {
    // MARK: Names and values

    public func name(of node: FDTNode) -> UnsafeRawBufferPointer {
        ByteString.slice(bytes, node.nameStart, node.nameStart + node.nameLength)
    }

    /// The node name without its `@unit-address`.
    public func baseName(of node: FDTNode) -> UnsafeRawBufferPointer {
        let full = name(of: node)
        return ByteString.slice(full, 0, ByteString.firstIndex(of: UInt8(ascii: "@"), in: full))
    }

    public func name(of property: FDTProperty) -> UnsafeRawBufferPointer {
        propertyName(at: property.nameStart)
    }

    /// The name of the property whose FDT_PROP token is at `offset` (from an
    /// error report's `propertyAt`); `nil` when no property token is there.
    /// Inlined into `DeviceTreeReport.reject`, its one caller on the board.
    @_transparent
    public func propertyName(atToken offset: Int) -> UnsafeRawBufferPointer? {
        guard offset >= structStart, offset % 4 == 0,
              case let (.property(nameStart, _), _)? = try? blocks.token(at: offset) else { return nil }
        return propertyName(at: nameStart)
    }

    /// The name starting at `start` in the strings block, without its NUL.
    @usableFromInline
    func propertyName(at start: Int) -> UnsafeRawBufferPointer {
        var end = start
        // Validated in init: terminated inside the strings block.
        while end < stringsEnd && bytes[end] != 0 { end += 1 }
        return ByteString.slice(bytes, start, end)
    }

    public func value(of property: FDTProperty) -> UnsafeRawBufferPointer {
        ByteString.slice(bytes, property.valueStart, property.valueStart + property.length)
    }

    // MARK: Properties

    public func properties(of node: FDTNode) -> PropertyIterator {
        PropertyIterator(blocks: blocks, node: node.offset, offset: node.propertiesStart)
    }

    public struct PropertyIterator: IteratorProtocol, Sequence {
        let blocks: FDTBlocks
        let node: Int
        var offset: Int
        public mutating func next() -> FDTProperty? {
            while true {
                // Validated in init; a failure here would mean the bytes
                // changed under us, and ends the walk.
                guard let (decoded, next) = try? blocks.token(at: offset) else { return nil }
                let here = offset
                offset = next
                switch decoded {
                case .property(let nameStart, let length):
                    return FDTProperty(offset: here, node: node, nameStart: nameStart, length: length)
                case .nop:
                    continue
                case .beginNode, .endNode, .end:
                    return nil
                }
            }
        }
    }

    public func property(_ name: StaticString, of node: FDTNode) -> FDTProperty? {
        for property in properties(of: node) where ByteString.equals(self.name(of: property), name) {
            return property
        }
        return nil
    }

    @_transparent
    public func hasProperty(_ name: StaticString, _ node: FDTNode) -> Bool {
        property(name, of: node) != nil
    }

    // MARK: Nodes

    /// `node` followed by all its descendants, in document order.
    public func subtree(of node: FDTNode) -> NodeIterator {
        NodeIterator(blocks: blocks, start: node, childrenOnly: false)
    }

    /// Every node of the tree, root first.
    public var nodes: NodeIterator { subtree(of: root) }

    public struct NodeIterator: IteratorProtocol, Sequence {
        let blocks: FDTBlocks
        var offset: Int
        let baseDepth: Int
        /// Nodes open below the start's parent (the start node is level 1);
        /// -1 once the walk is over.
        var level = 0
        /// Only the direct children of the start node (`children(of:)`).
        let childrenOnly: Bool
        /// Slot 0: the start node's parent (`FDTNode.noParent` for the root);
        /// slot `l`: the offset of the open node at level `l`, 1...maxDepth + 1
        /// (literal: maxDepth + 2). A node's parent is the slot below its own.
        var stack: InlineArray<34, UInt32>

        @_transparent
        init(blocks: FDTBlocks, start: FDTNode, childrenOnly: Bool) {
            self.blocks = blocks
            offset = start.offset
            baseDepth = start.depth
            self.childrenOnly = childrenOnly
            // Every slot starts as the parent: slot 0 must, and the others
            // are written before they are read.
            stack = InlineArray(repeating: start.rawParent)
        }

        public mutating func next() -> FDTNode? {
            while level >= 0 {
                // Validated in init; a failure here would mean the bytes
                // changed under us, and ends the walk.
                guard let (decoded, next) = try? blocks.token(at: offset) else { break }
                let here = offset
                offset = next
                switch decoded {
                case .beginNode(let nameLength):
                    // Validated in init: never deeper than maxDepth.
                    guard level <= FlattenedDeviceTree.maxDepth else { break }
                    let parent = stack[level]
                    level += 1
                    stack[level] = UInt32(truncatingIfNeeded: here)
                    // Children are at level 2 (the start node is at 1).
                    if childrenOnly && level != 2 { continue }
                    return FDTNode(offset: here, nameLength: nameLength, depth: baseDepth + level - 1, rawParent: parent)
                case .endNode:
                    level -= 1
                    // The start node closed: the walk is over.
                    if level > 0 { continue }
                case .property, .nop:
                    continue
                case .end:
                    break
                }
                level = -1
            }
            return nil
        }
    }

    /// The direct children of `node`: one walk of its subtree that returns
    /// only the nodes one level down.
    public func children(of node: FDTNode) -> ChildIterator {
        NodeIterator(blocks: blocks, start: node, childrenOnly: true)
    }

    public typealias ChildIterator = NodeIterator

    @_transparent
    public func child(of node: FDTNode, named name: StaticString) -> FDTNode? {
        child(of: node, matching: ByteString.bytes(name))
    }

    /// Section 2.2.3: a path component without `@unit-address` matches a node
    /// whose name has one, as long as the base names agree.
    @usableFromInline
    func child(of node: FDTNode, matching component: UnsafeRawBufferPointer) -> FDTNode? {
        let hasUnitAddress = ByteString.firstIndex(of: UInt8(ascii: "@"), in: component) < component.count
        for candidate in children(of: node) {
            let candidateName = hasUnitAddress ? name(of: candidate) : baseName(of: candidate)
            if ByteString.equals(candidateName, component) { return candidate }
        }
        return nil
    }

    /// The parent of `node`, found by walking from the root.
    public func parent(of node: FDTNode) -> FDTNode? {
        guard let parentOffset = node.parentOffset else { return nil }
        for candidate in nodes where candidate.offset == parentOffset { return candidate }
        return nil
    }

    /// Resolves an absolute path (`/a/b@1`) or an alias (`serial0`, `serial0/x`)
    /// through `/aliases` (section 3.3). `nil` when any step is missing.
    public func node(atPath path: UnsafeRawBufferPointer) -> FDTNode? {
        var current = root
        var start = 0
        if path.count == 0 { return nil }
        if path[0] != UInt8(ascii: "/") {
            let aliasEnd = ByteString.firstIndex(of: UInt8(ascii: "/"), in: path)
            let alias = ByteString.slice(path, 0, aliasEnd)
            guard let aliases = child(of: root, named: "aliases") else { return nil }
            var target: UnsafeRawBufferPointer?
            for property in properties(of: aliases) where ByteString.equals(name(of: property), alias) {
                target = value(of: property)
            }
            // An alias value is an absolute path; it may not name another alias.
            guard let target, target.count > 1, target[0] == UInt8(ascii: "/"),
                  target[target.count - 1] == 0 else { return nil }
            guard let aliased = resolveAbsolute(ByteString.slice(target, 0, target.count - 1)) else { return nil }
            current = aliased
            start = aliasEnd
        }
        return resolve(ByteString.slice(path, start, path.count), from: current)
    }

    @_transparent
    public func node(atPath path: StaticString) -> FDTNode? {
        node(atPath: ByteString.bytes(path))
    }

    private func resolveAbsolute(_ path: UnsafeRawBufferPointer) -> FDTNode? {
        resolve(path, from: root)
    }

    private func resolve(_ path: UnsafeRawBufferPointer, from start: FDTNode) -> FDTNode? {
        var current = start
        var index = 0
        while index < path.count {
            if path[index] == UInt8(ascii: "/") {
                index += 1
                continue
            }
            let rest = ByteString.slice(path, index, path.count)
            let length = ByteString.firstIndex(of: UInt8(ascii: "/"), in: rest)
            guard let next = child(of: current, matching: ByteString.slice(rest, 0, length)) else { return nil }
            current = next
            index += length
        }
        return current
    }

    /// The node whose `phandle` (or legacy `linux,phandle`) is `handle`.
    public func node(withPhandle handle: UInt32) -> FDTNode? {
        for node in nodes {
            let property = property("phandle", of: node) ?? property("linux,phandle", of: node)
            if let property, property.length == 4, bytes.bigEndianUInt32(at: property.valueStart) == handle {
                return node
            }
        }
        return nil
    }

    // MARK: Typed values

    /// A property that must be exactly one cell.
    public func u32(_ property: FDTProperty) throws(FDTError) -> UInt32 {
        guard property.length == 4 else {
            throw .propertyNotU32(node: property.node, length: property.length, property: property.offset)
        }
        return bytes.bigEndianUInt32(at: property.valueStart)
    }

    public func u32(_ name: StaticString, of node: FDTNode) throws(FDTError) -> UInt32? {
        guard let property = property(name, of: node) else { return nil }
        return try u32(property)
    }

    /// A string property without its terminator.
    public func string(_ property: FDTProperty) throws(FDTError) -> UnsafeRawBufferPointer {
        // The list's first entry: `strings` checked the terminator, so the
        // value is not empty and there is one.
        var list = try strings(property)
        return list.next()!
    }

    /// The strings of a `<stringlist>` property (section 2.2.4).
    public func strings(_ property: FDTProperty) throws(FDTError) -> StringListIterator {
        let raw = value(of: property)
        guard raw.count > 0, raw[raw.count - 1] == 0 else { throw .unterminatedString(node: property.node) }
        return StringListIterator(bytes: raw, offset: 0)
    }

    public struct StringListIterator: IteratorProtocol, Sequence {
        let bytes: UnsafeRawBufferPointer
        var offset: Int
        public mutating func next() -> UnsafeRawBufferPointer? {
            guard offset < bytes.count else { return nil }
            let rest = ByteString.slice(bytes, offset, bytes.count)
            let length = ByteString.firstIndex(of: 0, in: rest)
            offset += length + 1
            return ByteString.slice(rest, 0, length)
        }
    }

    /// Whether `compatible` lists `name` (an unterminated list counts as no).
    @_transparent
    public func isCompatible(_ node: FDTNode, with name: StaticString) -> Bool {
        isCompatible(node, withAnyOf: name)
    }

    /// Whether `compatible` lists any of `names`, literals separated by NUL
    /// (`"arm,psci-0.2\0arm,psci-1.0"`): a family of bindings in one walk of
    /// the property. A `compatible` entry never holds a NUL, so one name
    /// without NUL is the one-entry list.
    public func isCompatible(_ node: FDTNode, withAnyOf names: StaticString) -> Bool {
        guard let property = property("compatible", of: node),
              let list = try? strings(property) else { return false }
        for entry in list where ByteString.listContains(names, entry) { return true }
        return false
    }

    /// Whether `device_type` is the string `type` (absent or unterminated: no).
    func hasDeviceType(_ node: FDTNode, _ type: StaticString) -> Bool {
        guard let property = property("device_type", of: node), let value = try? string(property) else { return false }
        return ByteString.equals(value, type)
    }

    /// Section 2.3.4: `status` absent or "okay" (or the legacy "ok").
    public func isEnabled(_ node: FDTNode) -> Bool {
        guard let property = property("status", of: node) else { return true }
        guard let status = try? string(property) else { return false }
        return ByteString.listContains("okay\0ok", status)
    }

    // MARK: Cells (section 2.3.5)

    public static let defaultAddressCells: UInt32 = 2
    public static let defaultSizeCells: UInt32 = 1

    /// `#address-cells` of `node`, the count its children's `reg` uses.
    public func addressCells(of node: FDTNode) throws(FDTError) -> UInt32 {
        try u32("#address-cells", of: node) ?? FlattenedDeviceTree.defaultAddressCells
    }

    public func sizeCells(of node: FDTNode) throws(FDTError) -> UInt32 {
        try u32("#size-cells", of: node) ?? FlattenedDeviceTree.defaultSizeCells
    }
}

// MARK: Interrupt tree (section 2.4)

extension FlattenedDeviceTree {
    /// The controller `node`'s `interrupts` refer to: its `interrupt-parent`,
    /// else its parent's, up the tree, stopping at the first node that has
    /// `#interrupt-cells`. `nil` when the chain breaks (a dangling phandle,
    /// or the root reached without a controller).
    public func interruptParent(of node: FDTNode) -> FDTNode? {
        interruptController(of: node)
    }

    /// `interruptParent(of:)`'s body, inlined into `PlatformDescription.init`,
    /// its one caller on the board.
    @_transparent
    func interruptController(of node: FDTNode) -> FDTNode? {
        var current = node
        // Each step moves to a phandle target or one level up; a phandle
        // cycle is cut off after as many steps as the tree can be deep.
        var steps = 0
        while steps <= FlattenedDeviceTree.maxDepth {
            steps += 1
            let next: FDTNode?
            if let property = property("interrupt-parent", of: current) {
                guard let handle = try? u32(property) else { return nil }
                next = self.node(withPhandle: handle)
            } else {
                next = parent(of: current)
            }
            guard let next else { return nil }
            if hasProperty("#interrupt-cells", next) { return next }
            current = next
        }
        return nil
    }
}
