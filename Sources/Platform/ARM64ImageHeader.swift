import AArch64

/// The 64-byte header at the start of an arm64 Linux `Image`
/// (Documentation/arch/arm64/booting.rst, "Call the kernel image"): where the
/// kernel must sit and how much memory it will use from there.
///
/// The hypervisor reads it before it enters a host kernel that the loader put
/// at a bootarg-given address, so a wrong address or a file that is not an
/// Image ends in a message instead of a jump into garbage.
public struct ARM64ImageHeader: Equatable, Sendable {
    public static let size = 64
    /// "ARM\x64", little-endian, at offset 56.
    public static let magic: UInt32 = 0x644D_5241
    static let textOffsetOffset = 8
    static let imageSizeOffset = 16
    static let flagsOffset = 24
    static let magicOffset = 56
    /// flags bit 0: big-endian kernel.
    static let bigEndianFlag: UInt64 = 1 << 0
    /// flags bits [2:1]: page size, 0 unspecified, 1 4K, 2 16K, 3 64K.
    static let pageSizeShift: UInt64 = 1
    /// flags bit 3: the image may sit at any 2 MiB-aligned base in RAM.
    static let anywhereFlag: UInt64 = 1 << 3
    /// The base (the load address minus text_offset) must be 2 MiB aligned.
    public static let baseAlignment: UInt64 = 1 << PageSize.shift2M

    public let textOffset: UInt64
    /// Bytes from the load address the kernel uses (BSS included).
    public let imageSize: UInt64
    public let flags: UInt64

    /// - Parameter bytes: at least the 64 header bytes.
    public init(_ bytes: UnsafeRawBufferPointer) throws(ARM64ImageError) {
        guard bytes.count >= Self.size else { throw .truncated(bytes.count) }
        let magic = bytes.loadUnaligned(fromByteOffset: Self.magicOffset, as: UInt32.self).littleEndian
        guard magic == Self.magic else { throw .badMagic(magic) }
        textOffset = bytes.loadUnaligned(fromByteOffset: Self.textOffsetOffset, as: UInt64.self).littleEndian
        imageSize = bytes.loadUnaligned(fromByteOffset: Self.imageSizeOffset, as: UInt64.self).littleEndian
        flags = bytes.loadUnaligned(fromByteOffset: Self.flagsOffset, as: UInt64.self).littleEndian
        // image_size 0 is a pre-3.17 kernel: its extent is unknown, so its
        // placement cannot be checked against the hypervisor's memory.
        guard imageSize != 0 else { throw .unknownImageSize }
        guard flags & Self.bigEndianFlag == 0 else { throw .bigEndian }
        let pageSize = flags >> Self.pageSizeShift & 0b11
        guard pageSize <= 1 else { throw .pageSizeNot4K(pageSize) }
    }

    /// The memory the kernel occupies when loaded at `address`, after checking
    /// that the address satisfies the boot protocol's alignment; nil when it
    /// does not, or the range would wrap.
    public func placement(loadedAt address: PhysAddr) -> MemoryRange? {
        guard address.raw >= textOffset, (address.raw - textOffset) & (Self.baseAlignment - 1) == 0 else { return nil }
        return MemoryRange(base: address, size: imageSize)
    }
}

public enum ARM64ImageError: Error, Equatable, Sendable {
    case truncated(Int)
    case badMagic(UInt32)
    case unknownImageSize
    case bigEndian
    /// The kernel was built for 16 KiB or 64 KiB pages (flags [2:1]); the host
    /// stage 2 and the hypervisor assume 4 KiB.
    case pageSizeNot4K(UInt64)
}
