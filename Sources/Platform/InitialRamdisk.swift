import AArch64

/// `/chosen/linux,initrd-start` and `linux,initrd-end` (the chosen binding:
/// one or two cells each, `end` exclusive): where the loader put the initrd.
extension FlattenedDeviceTree {
    /// The initrd's range; nil when either property is absent. A value that
    /// is not 4 or 8 bytes, or an end before the start, is a typed error
    /// (the host's tree must not be built around an initrd nobody can place).
    /// Inlined into `LinuxHost.run`, its one caller on the board.
    @_transparent
    public func initialRamdisk() throws(FDTError) -> MemoryRange? {
        guard let chosen = node(atPath: "/chosen"),
              let start = property("linux,initrd-start", of: chosen),
              let end = property("linux,initrd-end", of: chosen) else { return nil }
        let s = try cellValue(start)
        let e = try cellValue(end)
        guard e >= s, let range = MemoryRange(base: PhysAddr(raw: s), size: e - s) else {
            throw .regionOverflows(base: s, size: e &- s)
        }
        return range
    }

    @usableFromInline
    func cellValue(_ property: FDTProperty) throws(FDTError) -> UInt64 {
        let bytes = value(of: property)
        switch bytes.count {
        case 4: return UInt64(bytes.loadUnaligned(as: UInt32.self).bigEndian)
        case 8: return bytes.loadUnaligned(as: UInt64.self).bigEndian
        default: throw .propertyLengthNotMultiple(node: property.node, length: bytes.count, tupleBytes: 8)
        }
    }
}
