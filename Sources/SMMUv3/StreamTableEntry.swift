import AArch64

/// A Stream Table Entry: 64 bytes, eight little-endian dwords (IHI 0070 5.2).
///
/// The driver only ever builds the four configurations below; every field it
/// writes is named once here. Fields it leaves at zero (S1DSS, S1CIR/COR/CSH
/// on a single CD, EATS, MemAttr overrides, S2S/S2HA/S2HD) mean "no override,
/// no stall, no ATS, no hardware update".
public struct StreamTableEntry: Equatable, Sendable {
    public var dw0: UInt64 = 0
    public var dw1: UInt64 = 0
    public var dw2: UInt64 = 0
    public var dw3: UInt64 = 0
    public var dw4: UInt64 = 0
    public var dw5: UInt64 = 0
    public var dw6: UInt64 = 0
    public var dw7: UInt64 = 0

    public static let bytes: UInt64 = 64
    public static let dwordCount = 8

    public init() {}

    /// Dword `index` (0...7). A struct's stored properties are laid out in
    /// declaration order (Swift ABI, TypeLayout), so dw0...dw7 are eight
    /// consecutive words: one bounds check and one load or store, instead
    /// of an eight-way switch.
    public subscript(word index: Int) -> UInt64 {
        get {
            precondition(index >= 0 && index < Self.dwordCount, "STE has eight dwords")
            return withUnsafeBytes(of: self) { $0.load(fromByteOffset: index &* 8, as: UInt64.self) }
        }
        set {
            precondition(index >= 0 && index < Self.dwordCount, "STE has eight dwords")
            withUnsafeMutableBytes(of: &self) { $0.storeBytes(of: newValue, toByteOffset: index &* 8, as: UInt64.self) }
        }
    }

    /// Dword `index` of `entry`, read where the entry is: the getter above
    /// reads from a copy of all 64 bytes on the board (`withUnsafeBytes(of:)`
    /// of a borrowed value), so a caller reading several dwords keeps one
    /// variable and reads through this.
    @_transparent static func word(_ index: Int, in entry: inout StreamTableEntry) -> UInt64 {
        precondition(index >= 0 && index < dwordCount, "STE has eight dwords")
        return withUnsafeBytes(of: &entry) { $0.load(fromByteOffset: index &* 8, as: UInt64.self) }
    }

    // dw0
    public static let valid: UInt64 = 1 << 0
    public static let configShift: UInt64 = 1
    public static let configMask: UInt64 = 0b111 << configShift
    public static let contextPointerMask: UInt64 = 0x000F_FFFF_FFFF_FFC0  // [51:6]
    // dw1
    public static let s1CDFetchInnerShift: UInt64 = 2
    public static let s1CDFetchOuterShift: UInt64 = 4
    public static let s1CDFetchShareShift: UInt64 = 6
    public static let streamWorldShift: UInt64 = 30
    /// SHCFG, dw1 [45:44] (STE bits [109:108]): 0b00 non-shareable, 0b01 use the
    /// incoming shareability, 0b10 outer, 0b11 inner shareable (IHI 0070 5.2).
    /// It overrides the shareability of bypass and stage-2-only traffic (13.5)
    /// only where SMMU_IDR1.ATTR_TYPES_OVR is 1; otherwise it is RES0.
    public static let shareConfigShift: UInt64 = 44
    public static let shareConfigMask: UInt64 = 0b11 << shareConfigShift
    public static let shareConfigIncoming: UInt64 = 0b01 << shareConfigShift

    /// dw1's SHCFG for an SMMU with or without SMMU_IDR1.ATTR_TYPES_OVR: "use
    /// incoming" where the field is an override (0 there would force
    /// non-shareable), 0 where it is RES0 (Linux: the same rule for bypass and
    /// stage-2 STEs).
    static func shareConfig(attributeTypesOverride: Bool) -> UInt64 {
        attributeTypesOverride ? shareConfigIncoming : 0
    }
    // dw2
    public static let s2VMIDMask: UInt64 = 0xFFFF
    /// VTCR_EL2[18:0] (T0SZ, SL0, IRGN0, ORGN0, SH0, TG0, PS) land unchanged in
    /// dw2[50:32]: the STE's stage-2 fields are laid out exactly as VTCR's.
    public static let s2VTCRShift: UInt64 = 32
    public static let vtcrFieldsMask: UInt64 = 0x7_FFFF
    public static let s2AArch64: UInt64 = 1 << 51
    /// S2PTW: a stage-1 walk hitting device memory at stage 2 faults.
    public static let s2ProtectedTableWalk: UInt64 = 1 << 54
    /// S2R: record stage-2 faults in the event queue.
    public static let s2Record: UInt64 = 1 << 58
    // dw3
    public static let s2TTBMask: UInt64 = 0x000F_FFFF_FFFF_FFF0  // [51:4]

    /// STE.Config (IHI 0070 5.2): values with bit 2 clear abort with no event.
    public enum Config: UInt64, Equatable, Sendable {
        case abort = 0b000
        case bypass = 0b100
        case stage1 = 0b101
        case stage2 = 0b110
        case nested = 0b111
    }

    /// STE.STRW: only NS-EL1 is used (HARDWARE.md trap 6: EL2 streams would need
    /// EL2 TLBIs, which QEMU 7.2 ignores).
    public static let streamWorldNSEL1: UInt64 = 0

    public var isValid: Bool { dw0 & Self.valid != 0 }
    public var config: UInt64 { (dw0 & Self.configMask) >> Self.configShift }
    /// Config bit 2: the stream's traffic passes (bypass or a translating stage);
    /// with it clear every value aborts.
    static let configPassesTraffic: UInt64 = 0b100
    /// Valid and passing traffic (bypass or translating): the SMMU acts on this
    /// entry, so replacing it must never expose a mix of old and new dwords.
    public var isLive: Bool { isValid && config & Self.configPassesTraffic != 0 }
    /// True when the entry makes the SMMU read any dword beyond dw0.
    public var translates: Bool { isLive && config != Config.bypass.rawValue }

    // MARK: Encoders

    /// V=1, Config=abort: every transaction terminates, no event (IHI 0070 5.2).
    public static func abort() -> StreamTableEntry {
        var e = StreamTableEntry()
        e.dw0 = valid | Config.abort.rawValue << configShift
        return e
    }

    /// V=1, Config=bypass, incoming shareability kept.
    public static func bypass(attributeTypesOverride: Bool) -> StreamTableEntry {
        var e = StreamTableEntry()
        e.dw0 = valid | Config.bypass.rawValue << configShift
        e.dw1 = shareConfig(attributeTypesOverride: attributeTypesOverride)
        return e
    }

    /// Stage-1 translation through a single CD (S1CDMax = 0, S1Fmt ignored,
    /// S1STALLD = 0 as STALL_MODEL=1 requires it: HARDWARE.md trap 8). The CD is
    /// fetched write-back cacheable and inner shareable when the SMMU is
    /// coherent, non-cacheable otherwise. SHCFG follows the same rule as the
    /// other configs (stage-1 output takes the descriptor's SH, IHI 0070 13.5).
    public static func stage1(contextDescriptor: PhysAddr, coherent: Bool,
                              attributeTypesOverride: Bool) -> StreamTableEntry {
        var e = StreamTableEntry()
        e.dw0 = valid | Config.stage1.rawValue << configShift | contextDescriptor.raw & contextPointerMask
        if coherent {
            e.dw1 = ContextDescriptor.cacheWriteBack << s1CDFetchInnerShift
                | ContextDescriptor.cacheWriteBack << s1CDFetchOuterShift
                | ContextDescriptor.shareInner << s1CDFetchShareShift
        }
        e.dw1 |= streamWorldNSEL1 << streamWorldShift | shareConfig(attributeTypesOverride: attributeTypesOverride)
        return e
    }

    /// Stage-2 translation through the domain's P2M root: the VMID, the VTCR
    /// fields, AArch64 tables, fault recording, protected walks; the incoming
    /// shareability is combined with the P2M's SH (SHCFG, see `shareConfig`).
    public static func stage2(vmid: UInt16, vtcr: UInt64, root: PhysAddr,
                              attributeTypesOverride: Bool) -> StreamTableEntry {
        var e = StreamTableEntry()
        e.dw0 = valid | Config.stage2.rawValue << configShift
        e.dw1 = streamWorldNSEL1 << streamWorldShift | shareConfig(attributeTypesOverride: attributeTypesOverride)
        e.dw2 = UInt64(vmid) & s2VMIDMask | (vtcr & vtcrFieldsMask) << s2VTCRShift
            | s2AArch64 | s2ProtectedTableWalk | s2Record
        e.dw3 = root.raw & s2TTBMask
        return e
    }
}
