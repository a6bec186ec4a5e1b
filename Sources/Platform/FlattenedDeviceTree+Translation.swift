import AArch64

/// Translating a `reg` address to a CPU physical address through the
/// `ranges` of every bus above the node (Devicetree Specification v0.4,
/// section 2.3.8). QEMU's virt puts every device at the root, where this is
/// the identity; boards with a `simple-bus` in between need it.
extension FlattenedDeviceTree {
    /// The CPU physical range for `range`, a `reg` entry of `node`.
    public func cpuRange(_ range: MemoryRange, of node: FDTNode) throws(FDTError) -> MemoryRange {
        var current = range
        var bus = parent(of: node)
        // Each step moves one level up; depth is bounded by maxDepth.
        while let child = bus, let above = parent(of: child) {
            current = try translate(current, through: child, into: above)
            bus = above
        }
        return current
    }

    /// The first `reg` entry of `node`, translated to a CPU range; `nil` without `reg`.
    public func firstCPURange(of node: FDTNode) throws(FDTError) -> MemoryRange? {
        guard let reg = try reg(of: node), reg.count > 0 else { return nil }
        return try cpuRange(reg[0], of: node)
    }

    @_transparent
    private func translate(_ range: MemoryRange, through bus: FDTNode,
                           into parentBus: FDTNode) throws(FDTError) -> MemoryRange {
        // Absent `ranges`: the bus's children are not memory-mapped (e.g. an
        // I2C bus); the spec's empty `ranges` is the identity map.
        guard let ranges = property("ranges", of: bus) else { throw .untranslatableAddress(node: bus.offset) }
        if ranges.length == 0 { return range }
        let childCells = try addressCells(of: bus)
        let parentCells = try addressCells(of: parentBus)
        let sizeCells = try sizeCells(of: bus)
        guard childCells >= 1, childCells <= FDTReg.maxCells else {
            throw .addressCellsUnsupported(node: bus.offset, cells: childCells)
        }
        let tuple = try Self.rangesTupleBytes(ranges, of: bus, childCells: childCells, parentCells: parentCells,
                                              sizeCells: sizeCells, parentCellsNode: parentBus)
        let value = self.value(of: ranges)
        // Byte offsets of the parent address and the length inside a tuple.
        let parentAt = Int(childCells) * 4
        let lengthAt = parentAt + Int(parentCells) * 4
        var offset = 0
        while offset < value.count {
            let child = FDTReg.cells(value, offset, childCells)
            let parentBase = FDTReg.cells(value, offset + parentAt, parentCells)
            let length = FDTReg.cells(value, offset + lengthAt, sizeCells)
            offset += tuple
            guard range.base.raw >= child, range.base.raw - child <= length,
                  range.size <= length - (range.base.raw - child) else { continue }
            let delta = range.base.raw - child
            guard parentBase <= UInt64.max - delta,
                  let translated = MemoryRange(base: PhysAddr(raw: parentBase + delta), size: range.size) else {
                throw .regionOverflows(base: parentBase, size: range.size)
            }
            return translated
        }
        throw .untranslatableAddress(node: bus.offset)
    }

    /// The bytes of one `bus` `ranges` tuple (Devicetree Specification v0.4,
    /// section 2.3.8): the bus's address cells (`childCells`, checked by the
    /// caller, whose rule it is), the parent's and the bus's size cells. The
    /// parent and size counts must fit 64 bits and the property must be whole
    /// tuples. An unsupported parent count is reported at `parentCellsNode`.
    static func rangesTupleBytes(_ ranges: FDTProperty, of bus: FDTNode, childCells: UInt32, parentCells: UInt32,
                                 sizeCells: UInt32, parentCellsNode: FDTNode) throws(FDTError) -> Int {
        guard parentCells >= 1, parentCells <= FDTReg.maxCells else {
            throw .addressCellsUnsupported(node: parentCellsNode.offset, cells: parentCells)
        }
        guard sizeCells >= 1, sizeCells <= FDTReg.maxCells else {
            throw .sizeCellsUnsupported(node: bus.offset, cells: sizeCells)
        }
        let tuple = Int(childCells + parentCells + sizeCells) * 4
        guard ranges.length % tuple == 0 else {
            throw .propertyLengthNotMultiple(node: bus.offset, length: ranges.length, tupleBytes: tuple)
        }
        return tuple
    }
}
