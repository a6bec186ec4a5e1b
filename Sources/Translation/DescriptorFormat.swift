import AArch64

/// A VMSAv8-64 descriptor format for the table engine: the stage-2 format (the P2M,
/// shared with an SMMU's stage 2) and the stage-1 format (SMMU stage-1 tables on
/// SMMUs without stage 2). Both share the structure the engine relies on (Arm ARM
/// "Translation table descriptor formats"): bit 0 valid; bits [1:0] = 0b11 table (levels 0-2) or page (level 3), 0b01
/// block; output address in [47:12]; leaf attributes elsewhere. They differ only in
/// what the attribute bits mean, which is the `Attributes` type.
public protocol DescriptorFormat {
    associatedtype Attributes: Equatable
    /// Leaf descriptor without its output address (AF set), for `level`.
    static func leafTemplate(level: Int, attributes: Attributes) -> UInt64
    /// Attributes of a valid leaf descriptor.
    static func attributes(ofLeaf descriptor: UInt64) -> Attributes
    /// A table descriptor pointing at `frame`.
    static func tableDescriptor(_ frame: MFN) -> UInt64
}

/// Structural bits common to both formats; nothing else in the engine knows bit positions.
enum VMSADescriptor {
    static let validBit: UInt64 = 1 << 0
    static let kindMask: UInt64 = 0b11
    static let tableOrPage: UInt64 = 0b11
    static let block: UInt64 = 0b01
    static let outputAddressMask: UInt64 = Stage2Descriptor.outputAddressMask

    @inline(__always) static func isValid(_ d: UInt64) -> Bool { d & validBit != 0 }
    @inline(__always) static func isTable(_ d: UInt64, level: Int) -> Bool {
        level < TableLevel.leafLevel && d & kindMask == tableOrPage
    }
    @inline(__always) static func outputFrame(_ d: UInt64) -> UInt64 { (d & outputAddressMask) >> PageSize.shift4K }
    /// The leaf at `childLevel` that a block `d` at `childLevel - 1` maps at child index `index`:
    /// same attributes, consecutive outputs (splitting; block and page encodings differ only in bit 1).
    @inline(__always) static func splitEntry(_ d: UInt64, childLevel: Int, index: UInt64) -> UInt64 {
        let kind = childLevel == TableLevel.leafLevel ? tableOrPage : block
        let out = outputFrame(d) &+ index &* TableLevel.pagesPerEntry(childLevel)
        return d & ~outputAddressMask & ~kindMask | kind | out << PageSize.shift4K
    }
    /// A leaf at `level` with the same attributes as leaf `d` of any level.
    @inline(__always) static func leafTemplate(from d: UInt64, level: Int) -> UInt64 {
        d & ~outputAddressMask & ~kindMask | (level == TableLevel.leafLevel ? tableOrPage : block)
    }
}

/// The stage-2 format (Arm ARM "Translation table descriptor formats", stage 2): the P2M's.
public enum Stage2Format: DescriptorFormat {
    public typealias Attributes = Stage2Attributes
    @inline(__always) public static func leafTemplate(level: Int, attributes: Stage2Attributes) -> UInt64 {
        Stage2Descriptor.leafTemplate(level: level, attributes: attributes)
    }
    @inline(__always) public static func attributes(ofLeaf descriptor: UInt64) -> Stage2Attributes {
        Stage2Descriptor(raw: descriptor).attributes
    }
    @inline(__always) public static func tableDescriptor(_ frame: MFN) -> UInt64 { Stage2Descriptor.table(frame).raw }
}

/// The stage-1 format (Arm ARM "Translation table descriptor formats", stage 1): SMMU stage-1 tables.
public enum Stage1Format: DescriptorFormat {
    public typealias Attributes = Stage1Attributes
    @inline(__always) public static func leafTemplate(level: Int, attributes: Stage1Attributes) -> UInt64 {
        Stage1Descriptor.leafTemplate(level: level, attributes: attributes)
    }
    @inline(__always) public static func attributes(ofLeaf descriptor: UInt64) -> Stage1Attributes {
        Stage1Descriptor(raw: descriptor).attributes
    }
    @inline(__always) public static func tableDescriptor(_ frame: MFN) -> UInt64 { Stage1Descriptor.table(frame).raw }
}
