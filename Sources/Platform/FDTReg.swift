import AArch64

/// The `reg` property (Devicetree Specification v0.4, section 2.3.6): a list
/// of (address, length) pairs, each sized by the *parent's* `#address-cells`
/// and `#size-cells`.
public struct FDTReg: RandomAccessCollection {
    /// Physical addresses are at most 64 bits, i.e. two cells.
    public static let maxCells: UInt32 = 2

    // Three words (offsets and counts fit 32 bits: the blob's `totalsize`
    // is a 32-bit field), and the pointer cannot be null, so a `reg` and an
    // optional one pass and return in registers; with the blob's whole
    // buffer pointer an optional `reg` went through memory.
    /// The blob's first byte (a validated blob is at least a header long).
    let start: UnsafeRawPointer
    let rawValueStart: UInt32
    let rawCount: UInt32
    let addressCells: UInt32
    let sizeCells: UInt32

    var valueStart: Int { Int(rawValueStart) }
    public var count: Int { Int(rawCount) }
    /// The blob up to the end of the property's value.
    @_transparent
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: start, count: valueStart + count * Int(addressCells + sizeCells) * 4)
    }

    @inline(__always) public var startIndex: Int { 0 }
    @inline(__always) public var endIndex: Int { count }

    public subscript(index: Int) -> MemoryRange {
        precondition(index >= 0 && index < count, "FDTReg index out of range")
        let tuple = Int(addressCells + sizeCells) * 4
        let offset = valueStart + index * tuple
        let base = FDTReg.cells(bytes, offset, addressCells)
        let size = FDTReg.cells(bytes, offset + Int(addressCells) * 4, sizeCells)
        // Checked for wrap-around when the list was built.
        return MemoryRange(base: PhysAddr(raw: base), size: size)!
    }

    /// Reads `count` big-endian cells (0...2) at `offset` as one number.
    static func cells(_ bytes: UnsafeRawBufferPointer, _ offset: Int, _ count: UInt32) -> UInt64 {
        var result: UInt64 = 0
        var i = 0
        while i < Int(count) {
            result = result << 32 | UInt64(bytes.bigEndianUInt32(at: offset + 4 * i))
            i += 1
        }
        return result
    }

    /// Checks the cell counts, the length and every entry for wrap-around.
    @_transparent
    init(_ tree: FlattenedDeviceTree, _ property: FDTProperty,
         addressCells: UInt32, sizeCells: UInt32) throws(FDTError) {
        guard addressCells >= 1, addressCells <= FDTReg.maxCells else {
            throw .addressCellsUnsupported(node: property.node, cells: addressCells)
        }
        guard sizeCells <= FDTReg.maxCells else {
            throw .sizeCellsUnsupported(node: property.node, cells: sizeCells)
        }
        let tuple = Int(addressCells + sizeCells) * 4
        guard property.length % tuple == 0 else {
            throw .propertyLengthNotMultiple(node: property.node, length: property.length, tupleBytes: tuple)
        }
        start = tree.bytes.baseAddress!
        rawValueStart = property.rawOffset + UInt32(FDTToken.propertyHeaderSize)
        self.addressCells = addressCells
        self.sizeCells = sizeCells
        let count = property.length / tuple
        rawCount = UInt32(count)
        let bytes = tree.bytes
        var index = 0
        while index < count {
            let offset = property.valueStart + index * tuple
            let base = FDTReg.cells(bytes, offset, addressCells)
            let size = FDTReg.cells(bytes, offset + Int(addressCells) * 4, sizeCells)
            guard base <= UInt64.max - size else { throw .regionOverflows(base: base, size: size) }
            index += 1
        }
    }
}

extension FlattenedDeviceTree {
    /// `node`'s `reg`, decoded with its parent's cell counts (defaults 2 and 1
    /// when the parent does not say). `nil` if the node has no `reg`.
    public func reg(of node: FDTNode) throws(FDTError) -> FDTReg? {
        try reg(of: node, onBus: parent(of: node) ?? root)
    }

    /// `reg` of a child of `bus`, when the caller already holds `bus`
    /// (saves the walk from the root that `reg(of:)` does to find the parent).
    public func reg(of node: FDTNode, onBus bus: FDTNode) throws(FDTError) -> FDTReg? {
        guard let property = property("reg", of: node) else { return nil }
        return try FDTReg(self, property, addressCells: try addressCells(of: bus), sizeCells: try sizeCells(of: bus))
    }
}
