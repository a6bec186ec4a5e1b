/// MAIR_ELx: eight 8-bit memory attribute encodings selected by a stage-1
/// descriptor's AttrIndx (Arm ARM "Stage 1 memory attributes", register "MAIR_EL1"). The SMMU's CD carries
/// the same layout in its MAIR field (SMMUv3 5.4).
public struct MAIR: Equatable, Sendable {
    public var raw: UInt64
    @inline(__always) public init(raw: UInt64) { self.raw = raw }

    public static let attributeCount: UInt8 = 8
    static let bitsPerAttribute: UInt64 = 8

    /// Device-nGnRnE.
    public static let deviceNGnRnE: UInt8 = 0x00
    /// Device-nGnRE.
    public static let deviceNGnRE: UInt8 = 0x04
    /// Normal, inner and outer Non-cacheable.
    public static let normalNonCacheable: UInt8 = 0x44
    /// Normal, inner and outer Write-Back non-transient, read- and write-allocate.
    public static let normalWriteBack: UInt8 = 0xFF

    /// The fixed assignment this component uses for its stage-1 tables, so an
    /// AttrIndx means the same thing in every table and CD.
    public static let indexNormalWriteBack: UInt8 = 0
    public static let indexNormalNonCacheable: UInt8 = 1
    public static let indexDeviceNGnRE: UInt8 = 2
    public static let indexDeviceNGnRnE: UInt8 = 3
    /// Each encoding shifted to its index's byte: a constant, not a lazily
    /// initialised global built through the checked subscript setter.
    public static var standard: MAIR {
        MAIR(raw: UInt64(normalWriteBack) << (UInt64(indexNormalWriteBack) &* bitsPerAttribute)
             | UInt64(normalNonCacheable) << (UInt64(indexNormalNonCacheable) &* bitsPerAttribute)
             | UInt64(deviceNGnRE) << (UInt64(indexDeviceNGnRE) &* bitsPerAttribute)
             | UInt64(deviceNGnRnE) << (UInt64(indexDeviceNGnRnE) &* bitsPerAttribute))
    }

    public subscript(index: UInt8) -> UInt8 {
        get {
            precondition(index < Self.attributeCount)
            return UInt8(truncatingIfNeeded: raw >> (UInt64(index) * Self.bitsPerAttribute))
        }
        set {
            precondition(index < Self.attributeCount)
            let shift = UInt64(index) * Self.bitsPerAttribute
            raw = raw & ~(0xFF << shift) | UInt64(newValue) << shift
        }
    }
}
