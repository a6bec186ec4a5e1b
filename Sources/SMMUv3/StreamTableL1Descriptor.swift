import AArch64

/// A level-1 stream table descriptor (IHI 0070 5.1): 8 bytes.
public struct StreamTableL1Descriptor: Equatable, Sendable {
    public var raw: UInt64
    public init(raw: UInt64) { self.raw = raw }

    public static let spanMask: UInt64 = 0x1F
    public static let l2PointerMask: UInt64 = 0x000F_FFFF_FFFF_FFC0  // [51:6]

    /// An L2 array of 2^split STEs: Span = split + 1, since the L2 array holds
    /// 2^(Span-1) STEs (IHI 0070 5.1; HARDWARE.md trap 15).
    @_transparent public static func table(at l2: PhysAddr, split: Int) -> StreamTableL1Descriptor {
        StreamTableL1Descriptor(raw: UInt64(split + 1) & spanMask | l2.raw & l2PointerMask)
    }

    public var span: UInt64 { raw & Self.spanMask }
    public var isValid: Bool { span != 0 }
    public var l2Table: PhysAddr { PhysAddr(raw & Self.l2PointerMask) }
}
