import AArch64

/// A stage-1 Context Descriptor: 64 bytes (IHI 0070 5.4). Only TTB0 is used
/// (EPD1 = 1); the table is AArch64, 4 KiB granule, NS-EL1 regime.
public struct ContextDescriptor: Equatable, Sendable {
    public var dw0: UInt64 = 0
    public var dw1: UInt64 = 0
    public var dw2: UInt64 = 0
    public var dw3: UInt64 = 0

    public static let bytes: UInt64 = 64
    /// dw4..dw7 exist in memory and are written as zero.
    public static let dwordCount = 8

    public init() {}

    /// Dword `index`: dw0...dw3 are four consecutive words (stored
    /// properties are laid out in declaration order, Swift ABI TypeLayout),
    /// so one load instead of a switch; dw4...dw7 read as zero.
    public subscript(word index: Int) -> UInt64 {
        guard index >= 0 && index < 4 else { return 0 }
        return withUnsafeBytes(of: self) { $0.load(fromByteOffset: index &* 8, as: UInt64.self) }
    }

    // dw0 (TCR-like fields)
    public static let t0szShift: UInt64 = 0
    public static let t0szMask: UInt64 = 0x3F
    public static let tg0Shift: UInt64 = 6
    /// TG0 uses TCR.TG0's encoding: 0 = 4 KiB (HARDWARE.md trap 10).
    public static let tg0Granule4K: UInt64 = 0
    public static let ir0Shift: UInt64 = 8
    public static let or0Shift: UInt64 = 10
    public static let sh0Shift: UInt64 = 12
    public static let epd1: UInt64 = 1 << 30
    public static let valid: UInt64 = 1 << 31
    public static let ipsShift: UInt64 = 32
    public static let ipsMask: UInt64 = 0b111
    public static let aarch64: UInt64 = 1 << 41
    /// R: record faults (without it translation faults are silent).
    public static let record: UInt64 = 1 << 45
    /// A: terminated transactions abort (required by TERM_MODEL=1, trap 9).
    public static let abortOnFault: UInt64 = 1 << 46
    public static let asidShift: UInt64 = 48
    // dw1
    public static let ttbMask: UInt64 = 0x000F_FFFF_FFFF_FFF0  // [51:4]

    /// Walk cacheability in the TCR encoding (0 NC, 1 WB RA WA); shareability 3 = inner.
    public static let cacheNonCacheable: UInt64 = 0
    public static let cacheWriteBack: UInt64 = 1
    public static let shareNone: UInt64 = 0
    public static let shareInner: UInt64 = 3

    /// Valid T0SZ range for an AArch64 CD without IDR3.STT (IHI 0070 5.4).
    public static let t0szRange: ClosedRange<UInt64> = 16...39

    /// Build the CD for one stage-1 domain.
    /// - inputBits: IOVA width (T0SZ = 64 - inputBits), 25...48.
    /// - ipsCode: the output size, in TCR.IPS encoding (use the SMMU's OAS).
    @_transparent public static func stage1(asid: UInt16, root: PhysAddr, inputBits: Int, ipsCode: UInt32,
                              mair: UInt64, coherent: Bool) -> ContextDescriptor {
        var cd = ContextDescriptor()
        let t0sz = UInt64(64 - inputBits) & t0szMask
        let cache = coherent ? cacheWriteBack : cacheNonCacheable
        let share = coherent ? shareInner : shareNone
        cd.dw0 = t0sz << t0szShift | tg0Granule4K << tg0Shift
            | cache << ir0Shift | cache << or0Shift | share << sh0Shift
            | epd1 | valid | (UInt64(ipsCode) & ipsMask) << ipsShift
            | aarch64 | record | abortOnFault | UInt64(asid) << asidShift
        cd.dw1 = root.raw & ttbMask
        cd.dw3 = mair
        return cd
    }

    public var isValid: Bool { dw0 & Self.valid != 0 }
    public var asid: UInt16 { UInt16(truncatingIfNeeded: dw0 >> Self.asidShift) }
    public var t0sz: UInt64 { dw0 >> Self.t0szShift & Self.t0szMask }
    public var tableRoot: PhysAddr { PhysAddr(dw1 & Self.ttbMask) }
}
