/// The 40-byte header of a flattened device tree (Devicetree Specification
/// v0.4, section 5.2). All fields are big-endian 32-bit words.
public struct FDTHeader: Equatable, Sendable {
    public static let magicValue: UInt32 = 0xD00D_FEED
    public static let size = 40
    /// The layout we read (`size_dt_struct` appeared in version 17).
    public static let readableVersion: UInt32 = 17

    static let magicOffset = 0
    static let totalSizeOffset = 4
    static let structOffsetOffset = 8
    static let stringsOffsetOffset = 12
    static let reservationMapOffsetOffset = 16
    static let versionOffset = 20
    static let lastCompatibleVersionOffset = 24
    static let bootCPUOffset = 28
    static let stringsSizeOffset = 32
    static let structSizeOffset = 36

    public let totalSize: UInt32
    public let structOffset: UInt32
    public let stringsOffset: UInt32
    public let reservationMapOffset: UInt32
    public let version: UInt32
    public let lastCompatibleVersion: UInt32
    public let bootCPU: UInt32
    public let stringsSize: UInt32
    public let structSize: UInt32

    /// Parses and checks the header against a buffer of `bytes.count` bytes.
    /// Every block must lie inside `totalsize`, which must lie inside the buffer.
    public init(_ bytes: UnsafeRawBufferPointer) throws(FDTError) {
        try self.init(checking: bytes)
    }

    /// The public initialiser's body, inlined into `FlattenedDeviceTree.init`,
    /// its one caller on the board (the public wrapper is then dropped there).
    @_transparent
    init(checking bytes: UnsafeRawBufferPointer) throws(FDTError) {
        guard bytes.count >= FDTHeader.size else { throw .truncatedHeader(available: bytes.count) }
        let magic = bytes.bigEndianUInt32(at: FDTHeader.magicOffset)
        guard magic == FDTHeader.magicValue else { throw .badMagic(magic) }
        totalSize = bytes.bigEndianUInt32(at: FDTHeader.totalSizeOffset)
        structOffset = bytes.bigEndianUInt32(at: FDTHeader.structOffsetOffset)
        stringsOffset = bytes.bigEndianUInt32(at: FDTHeader.stringsOffsetOffset)
        reservationMapOffset = bytes.bigEndianUInt32(at: FDTHeader.reservationMapOffsetOffset)
        version = bytes.bigEndianUInt32(at: FDTHeader.versionOffset)
        lastCompatibleVersion = bytes.bigEndianUInt32(at: FDTHeader.lastCompatibleVersionOffset)
        bootCPU = bytes.bigEndianUInt32(at: FDTHeader.bootCPUOffset)
        stringsSize = bytes.bigEndianUInt32(at: FDTHeader.stringsSizeOffset)
        structSize = bytes.bigEndianUInt32(at: FDTHeader.structSizeOffset)

        guard totalSize >= UInt32(FDTHeader.size) else { throw .totalSizeTooSmall(totalSize) }
        guard Int(totalSize) <= bytes.count else {
            throw .totalSizeExceedsBuffer(totalSize: totalSize, available: bytes.count)
        }
        guard version >= FDTHeader.readableVersion, lastCompatibleVersion <= FDTHeader.readableVersion else {
            throw .unsupportedVersion(version: version, lastCompatible: lastCompatibleVersion)
        }
        // Section 5.4: the structure block is 4-byte aligned; 5.3: the
        // reservation block is 8-byte aligned.
        guard structOffset % 4 == 0 else { throw .misalignedStructureBlock(offset: structOffset) }
        guard FDTHeader.fits(structOffset, structSize, in: totalSize), structSize % 4 == 0 else {
            throw .structureBlockOutOfRange(offset: structOffset, size: structSize)
        }
        guard FDTHeader.fits(stringsOffset, stringsSize, in: totalSize) else {
            throw .stringsBlockOutOfRange(offset: stringsOffset, size: stringsSize)
        }
        guard reservationMapOffset % 8 == 0 else {
            throw .misalignedReservationMap(offset: reservationMapOffset)
        }
        guard reservationMapOffset >= UInt32(FDTHeader.size), reservationMapOffset < totalSize else {
            throw .reservationMapOutOfRange(offset: reservationMapOffset)
        }
    }

    /// `offset + size <= total` without 32-bit wrap-around, and not inside the header.
    static func fits(_ offset: UInt32, _ size: UInt32, in total: UInt32) -> Bool {
        UInt64(offset) >= UInt64(FDTHeader.size) && UInt64(offset) + UInt64(size) <= UInt64(total)
    }

    /// Reads `totalsize` from a blob in memory whose length is not yet known
    /// (a boot loader passes only its address), checking the magic first so a
    /// wrong pointer does not make us map garbage. Only the first 8 bytes are
    /// read, with unaligned big-endian loads. `limit` bounds what the caller
    /// will then wrap in a buffer.
    public static func totalSize(ofBlobAt pointer: UnsafeRawPointer, limit: Int) throws(FDTError) -> Int {
        try checkedTotalSize(ofBlobAt: pointer, limit: limit)
    }

    /// `totalSize(ofBlobAt:limit:)`'s body, inlined into
    /// `FlattenedDeviceTree.init(blobAt:limit:)`, its one caller on the board.
    @_transparent
    static func checkedTotalSize(ofBlobAt pointer: UnsafeRawPointer, limit: Int) throws(FDTError) -> Int {
        let probe = UnsafeRawBufferPointer(start: pointer, count: 8)
        let magic = probe.bigEndianUInt32(at: magicOffset)
        guard magic == magicValue else { throw .badMagic(magic) }
        let total = probe.bigEndianUInt32(at: totalSizeOffset)
        guard total >= UInt32(size) else { throw .totalSizeTooSmall(total) }
        guard Int(total) <= limit else { throw .totalSizeExceedsLimit(totalSize: total, limit: limit) }
        return Int(total)
    }
}

extension UnsafeRawBufferPointer {
    /// Callers check `offset + 4 <= count` first; every FDT word is big-endian
    /// and may sit at any alignment inside an arbitrary buffer.
    @inline(__always) func bigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always) func bigEndianUInt64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}
