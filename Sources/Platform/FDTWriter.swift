import AArch64

/// Writes a flattened device tree (Devicetree Specification v0.4, chapter 5)
/// into a buffer the caller owns; it never allocates.
///
/// Use it in order: `addReservation` (optional, any number), then nodes and
/// properties (`beginNode`, `property…`, `endNode`), then `finish`, which
/// returns the blob's size. The structure block grows up from the front of
/// the buffer and the strings block down from its end, so neither needs to
/// be sized in advance; `finish` moves the strings next to the structure and
/// rewrites each property's name offset. The header (and so the magic) is
/// written last: a writer that throws leaves no blob a parser would accept,
/// and the first 40 bytes of the buffer as they were.
///
/// The writer enforces what the parser checks (properties before child nodes,
/// balanced nodes, bounded nesting, names without NUL), so what it produces
/// always parses.
public struct FDTWriter {
    let buffer: UnsafeMutableRawBufferPointer
    /// One past the last usable byte: the buffer's size, capped so every
    /// header field fits its 32 bits.
    let end: Int
    /// Next free byte of the reservation map, then of the structure block.
    var cursor: Int
    var structStart = 0
    /// Lowest byte used by the strings block (which ends at `end`).
    var stringsLow: Int
    var phase = Phase.reservations
    var depth = 0
    /// Bit `d`: the open node at depth `d` has begun a child (properties must
    /// come first). Depth is at most `maxDepth` (32), so 64 bits hold them all.
    var childBegun: UInt64 = 0
    let bootCPU: UInt32

    enum Phase { case reservations, structure, finished }

    /// The version written and the oldest it stays compatible with (16: the
    /// v17 fields are additions).
    static let version: UInt32 = 17
    static let lastCompatibleVersion: UInt32 = 16

    /// - Throws: `.bufferTooSmall` when the buffer cannot hold even a header
    ///   and an empty reservation map.
    public init(buffer: UnsafeMutableRawBufferPointer, bootCPU: UInt32 = 0) throws(FDTWriteError) {
        self.buffer = buffer
        end = min(buffer.count, Int(UInt32.max))
        self.bootCPU = bootCPU
        cursor = FDTHeader.size
        stringsLow = end
        guard end >= FDTHeader.size + FlattenedDeviceTree.reservationEntrySize else {
            throw .bufferTooSmall(capacity: buffer.count)
        }
    }

    // MARK: Reservation map (section 5.3)

    /// Adds a `/memreserve/` entry; only before the first node.
    public mutating func addReservation(_ range: MemoryRange) throws(FDTWriteError) {
        try reserve(range)
    }

    /// `addReservation`'s body, inlined into `HostDeviceTree.derive`, its one
    /// caller on the board.
    @_transparent
    mutating func reserve(_ range: MemoryRange) throws(FDTWriteError) {
        guard phase == .reservations else { throw .outOfOrder }
        // Room for this entry and the terminator.
        try requireRoom(2 * FlattenedDeviceTree.reservationEntrySize)
        buffer.putU64(range.base.raw, at: cursor)
        buffer.putU64(range.size, at: cursor + 8)
        cursor += FlattenedDeviceTree.reservationEntrySize
    }

    // MARK: Structure block (section 5.4)

    /// Opens a node; the first one is the root. `name` must be free of NUL.
    public mutating func beginNode(_ name: UnsafeRawBufferPointer) throws(FDTWriteError) {
        try beginNode(name, unitAddress: nil)
    }

    public mutating func beginNode(_ name: StaticString) throws(FDTWriteError) {
        try beginNode(try Self.bytes(of: name), unitAddress: nil)
    }

    /// Opens a node named `prefix@<address in lowercase hex, no leading zeros>`
    /// (section 2.2.1).
    public mutating func beginNode(_ prefix: StaticString, unitAddress: UInt64) throws(FDTWriteError) {
        try beginNode(try Self.bytes(of: prefix), unitAddress: unitAddress)
    }

    /// The one node writer: FDT_BEGIN_NODE, then `name` (with `@` and the
    /// unit address when there is one; the name may then hold no `@` of its
    /// own), NUL-padded to 4 bytes.
    mutating func beginNode(_ name: UnsafeRawBufferPointer, unitAddress: UInt64?) throws(FDTWriteError) {
        guard ByteString.firstIndex(of: 0, in: name) == name.count else { throw .badName }
        var digits = 0
        if let unitAddress {
            guard ByteString.firstIndex(of: UInt8(ascii: "@"), in: name) == name.count else { throw .badName }
            // Significant nibbles, at least one (address 0 is "0").
            digits = max((UInt64.bitWidth - unitAddress.leadingZeroBitCount + 3) / 4, 1)
        }
        let nameLength = unitAddress == nil ? name.count : name.count + 1 + digits
        try closeReservationMap()
        guard phase == .structure else { throw .outOfOrder }
        guard depth < FlattenedDeviceTree.maxDepth else { throw .nestingTooDeep(limit: FlattenedDeviceTree.maxDepth) }
        guard depth > 0 || cursor == structStart else { throw .secondRoot }
        guard nameLength < end else { throw .bufferTooSmall(capacity: buffer.count) }
        let size = 4 + alignUp4(nameLength + 1)
        try requireRoom(size)
        if depth > 0 { childBegun |= 1 << UInt64(depth) }
        buffer.putU32(FDTToken.beginNode, at: cursor)
        buffer.zero(from: cursor + 4, to: cursor + size)
        var at = cursor + 4
        cursor += size
        depth += 1
        childBegun &= ~(1 << UInt64(depth))
        buffer.putBytes(name, at: at)
        guard let unitAddress else { return }
        at += name.count
        buffer[at] = UInt8(ascii: "@")
        while digits > 0 {
            digits -= 1
            at += 1
            let nibble = UInt8(truncatingIfNeeded: unitAddress >> (4 * UInt64(digits))) & 0xF
            buffer[at] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
        }
    }

    public mutating func endNode() throws(FDTWriteError) {
        guard phase == .structure, depth > 0 else { throw .unbalancedEndNode }
        try requireRoom(4)
        buffer.putU32(FDTToken.endNode, at: cursor)
        cursor += 4
        depth -= 1
    }

    /// Adds a property to the open node; `name` must be non-empty and free of NUL.
    public mutating func property(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(FDTWriteError) {
        _ = try property(name, value, length: value.count)
    }

    public mutating func property(_ name: StaticString, _ value: UnsafeRawBufferPointer) throws(FDTWriteError) {
        try property(try Self.bytes(of: name), value)
    }

    /// A property with no value (`no-map`, `ranges` for an identity bus).
    public mutating func emptyProperty(_ name: StaticString) throws(FDTWriteError) {
        _ = try property(try Self.bytes(of: name), Self.noBytes, length: 0)
    }

    /// A one-cell property.
    public mutating func property(_ name: StaticString, u32 value: UInt32) throws(FDTWriteError) {
        let start = try property(try Self.bytes(of: name), Self.noBytes, length: 4)
        buffer.putU32(value, at: start)
    }

    /// A string property (section 2.2.4: NUL-terminated).
    public mutating func property(_ name: StaticString, string value: StaticString) throws(FDTWriteError) {
        try stringProperty(name, value)
    }

    /// `property(_:string:)`'s body, inlined into `HostDeviceTree.derive`, its
    /// one caller on the board.
    @_transparent
    mutating func stringProperty(_ name: StaticString, _ value: StaticString) throws(FDTWriteError) {
        let text = try Self.bytes(of: value)
        guard ByteString.firstIndex(of: 0, in: text) == text.count else { throw .badName }
        // The value's last byte is the zero the writer fills in after `text`.
        _ = try property(try Self.bytes(of: name), text, length: text.count + 1)
    }

    /// A `reg`-style property with one (address, size) pair in the given cell
    /// counts (1 or 2 each).
    /// - Throws: `.valueDoesNotFitCells` when a value needs more cells than given.
    public mutating func property(_ name: StaticString, address: UInt64, size: UInt64,
                                  addressCells: UInt32, sizeCells: UInt32) throws(FDTWriteError) {
        try Self.checkCellCount(addressCells)
        try Self.checkCellCount(sizeCells)
        try Self.check(address, fits: addressCells)
        try Self.check(size, fits: sizeCells)
        let length = 4 * Int(addressCells + sizeCells)
        let at = try property(try Self.bytes(of: name), Self.noBytes, length: length)
        buffer.putCells(size, sizeCells, at: buffer.putCells(address, addressCells, at: at))
    }

    private static func checkCellCount(_ cells: UInt32) throws(FDTWriteError) {
        guard cells == 1 || cells == 2 else { throw .unsupportedCells(cells) }
    }

    private static func check(_ value: UInt64, fits cells: UInt32) throws(FDTWriteError) {
        guard cells == 2 || value >> 32 == 0 else { throw .valueDoesNotFitCells(value, cells: cells) }
    }

    /// Ends the blob: FDT_END, the strings block moved next to the structure,
    /// name offsets fixed, then the header. Returns the blob's size in bytes.
    public mutating func finish() throws(FDTWriteError) -> Int {
        try finishBlob()
    }

    /// `finish`'s body, inlined into `HostDeviceTree.derive`, its one caller
    /// on the board (the public wrapper is then dropped there).
    @_transparent
    mutating func finishBlob() throws(FDTWriteError) -> Int {
        try closeReservationMap()
        guard phase == .structure else { throw .outOfOrder }
        guard cursor > structStart else { throw .missingRoot }
        guard depth == 0 else { throw .unclosedNode(depth: depth) }
        try requireRoom(4)
        buffer.putU32(FDTToken.end, at: cursor)
        cursor += 4
        let structSize = cursor - structStart
        let stringsSize = end - stringsLow
        // The strings move down to `cursor`; both ranges are inside the buffer
        // and memmove semantics handle any overlap.
        if stringsSize > 0 {
            (buffer.baseAddress! + cursor).copyMemory(from: buffer.baseAddress! + stringsLow, byteCount: stringsSize)
        }
        FDTWriter.fixNameOffsets(buffer, from: structStart, to: cursor, stringsSize: stringsSize)
        let total = cursor + stringsSize
        buffer.putU32(FDTHeader.magicValue, at: FDTHeader.magicOffset)
        buffer.putU32(UInt32(total), at: FDTHeader.totalSizeOffset)
        buffer.putU32(UInt32(structStart), at: FDTHeader.structOffsetOffset)
        buffer.putU32(UInt32(cursor), at: FDTHeader.stringsOffsetOffset)
        buffer.putU32(UInt32(FDTHeader.size), at: FDTHeader.reservationMapOffsetOffset)
        buffer.putU32(Self.version, at: FDTHeader.versionOffset)
        buffer.putU32(Self.lastCompatibleVersion, at: FDTHeader.lastCompatibleVersionOffset)
        buffer.putU32(bootCPU, at: FDTHeader.bootCPUOffset)
        buffer.putU32(UInt32(stringsSize), at: FDTHeader.stringsSizeOffset)
        buffer.putU32(UInt32(structSize), at: FDTHeader.structSizeOffset)
        phase = .finished
        return total
    }

    // MARK: Internals

    private mutating func closeReservationMap() throws(FDTWriteError) {
        guard phase == .reservations else { return }
        // Room was kept for the terminator by `init` and `addReservation`.
        buffer.putU64(0, at: cursor)
        buffer.putU64(0, at: cursor + 8)
        cursor += FlattenedDeviceTree.reservationEntrySize
        structStart = cursor
        phase = .structure
    }

    /// A StaticString's bytes. Literals of one character may be stored as a
    /// scalar with no pointer; those are refused rather than trapped on.
    private static func bytes(of string: StaticString) throws(FDTWriteError) -> UnsafeRawBufferPointer {
        guard string.hasPointerRepresentation else { throw .badName }
        return UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount)
    }

    static var noBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    /// The one property writer: FDT_PROP, the length and the provisional
    /// name offset, then `value` and zeros up to `length` (at least
    /// `value.count`) and the 4-byte padding; returns where the value starts,
    /// for callers that store their cells over the zeros. All room is
    /// checked before anything is written.
    mutating func property(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer,
                                   length: Int) throws(FDTWriteError) -> Int {
        guard phase == .structure, depth > 0 else { throw .propertyOutsideNode }
        guard childBegun & (1 << UInt64(depth)) == 0 else { throw .propertyAfterChildNode }
        guard name.count > 0, ByteString.firstIndex(of: 0, in: name) == name.count else { throw .badName }
        guard length <= end else { throw .bufferTooSmall(capacity: buffer.count) }
        let size = FDTToken.propertyHeaderSize + alignUp4(length)
        try requireRoom(size)
        let distance = try internString(name, keeping: size)
        buffer.putU32(FDTToken.property, at: cursor)
        buffer.putU32(UInt32(length), at: cursor + 4)
        buffer.putU32(UInt32(distance), at: cursor + 8)
        let start = cursor + FDTToken.propertyHeaderSize
        buffer.putBytes(value, at: start)
        cursor = start + alignUp4(length)
        buffer.zero(from: start + value.count, to: cursor)
        return start
    }

    /// Finds or adds `name` in the strings block; returns its distance from
    /// `end` (the provisional name offset `finish` rewrites). `reserve` bytes
    /// of structure room must survive the addition.
    @_transparent
    private mutating func internString(_ name: UnsafeRawBufferPointer, keeping reserve: Int) throws(FDTWriteError) -> Int {
        var position = stringsLow
        while position < end {
            var stop = position
            while stop < end && buffer[stop] != 0 { stop += 1 }
            if stop - position == name.count && ByteString.equals(
                UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[position..<stop]), name) {
                return end - position
            }
            position = stop + 1
        }
        let needed = name.count + 1
        guard stringsLow - cursor >= reserve + needed else { throw .bufferTooSmall(capacity: buffer.count) }
        stringsLow -= needed
        buffer.putBytes(name, at: stringsLow)
        buffer[stringsLow + name.count] = 0
        return end - stringsLow
    }

    /// Walks the structure this writer produced (`start..<stop`) and turns
    /// each provisional name offset (distance from `end`) into an offset into
    /// the strings block.
    @_transparent
    private static func fixNameOffsets(_ buffer: UnsafeMutableRawBufferPointer, from start: Int, to stop: Int,
                                       stringsSize: Int) {
        var at = start
        while at < stop {
            let token = buffer.getU32(at)
            switch token {
            case FDTToken.beginNode:
                var stop = at + 4
                while buffer[stop] != 0 { stop += 1 }
                at = alignUp4(stop + 1)
            case FDTToken.property:
                let length = Int(buffer.getU32(at + 4))
                let distance = Int(buffer.getU32(at + 8))
                buffer.putU32(UInt32(stringsSize - distance), at: at + 8)
                at += FDTToken.propertyHeaderSize + alignUp4(length)
            default:
                // FDT_END_NODE, FDT_END: one word.
                at += 4
            }
        }
    }

    /// `mutating` though it changes nothing: a plain method called from the
    /// writer's mutating methods got a copy of the whole writer each time.
    private mutating func requireRoom(_ bytes: Int) throws(FDTWriteError) {
        guard stringsLow - cursor >= bytes else { throw .bufferTooSmall(capacity: buffer.count) }
    }
}

// The byte helpers take the buffer, not the writer: a non-mutating method
// called from a mutating one gets a copy of the whole writer.
extension UnsafeMutableRawBufferPointer {
    fileprivate func putU32(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    fileprivate func putU64(_ value: UInt64, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// `value` as `cells` (1 or 2) big-endian cells at `offset`; returns the offset after them.
    fileprivate func putCells(_ value: UInt64, _ cells: UInt32, at offset: Int) -> Int {
        if cells == 2 {
            putU64(value, at: offset)
            return offset + 8
        }
        putU32(UInt32(truncatingIfNeeded: value), at: offset)
        return offset + 4
    }

    fileprivate func getU32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: UnsafeRawBufferPointer(self).loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    fileprivate func putBytes(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        guard bytes.count > 0 else { return }
        (baseAddress! + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }

    fileprivate func zero(from start: Int, to stop: Int) {
        var i = start
        while i < stop { self[i] = 0; i += 1 }
    }
}

/// Why a device tree could not be written.
public enum FDTWriteError: Error, Equatable, Sendable {
    /// The output buffer (of this many bytes) cannot hold the tree.
    case bufferTooSmall(capacity: Int)
    /// A reservation after the first node, or anything after `finish`.
    case outOfOrder
    case secondRoot
    /// `finish` before any node.
    case missingRoot
    case unbalancedEndNode
    /// `finish` with nodes still open.
    case unclosedNode(depth: Int)
    case nestingTooDeep(limit: Int)
    case propertyOutsideNode
    /// The spec puts every property of a node before its first child.
    case propertyAfterChildNode
    /// An empty property name, or a NUL inside a name or string value.
    case badName
    /// `#address-cells`/`#size-cells` other than 1 or 2.
    case unsupportedCells(UInt32)
    case valueDoesNotFitCells(UInt64, cells: UInt32)
    /// The source tree was rejected while being copied.
    case source(FDTError)
    /// The output buffer overlaps the source blob.
    case buffersOverlap
}
