import AArch64

/// One command-queue entry: 16 bytes, two little-endian dwords, opcode in
/// dw0[7:0] (IHI 0070 chapter 4; field positions cross-checked with Linux
/// `CMDQ_*` and QEMU 7.2's extractors).
public struct Command: Equatable, Sendable {
    public var dw0: UInt64
    public var dw1: UInt64
    public init(dw0: UInt64, dw1: UInt64) {
        self.dw0 = dw0
        self.dw1 = dw1
    }

    public static let bytes: UInt64 = 16

    public enum Opcode: UInt8, Equatable, Sendable {
        case prefetchConfig = 0x01
        case cfgiSTE = 0x03
        /// CFGI_STE_RANGE; CFGI_ALL is this opcode with Range = 31 (trap 4).
        case cfgiSTERange = 0x04
        case cfgiCD = 0x05
        case cfgiCDAll = 0x06
        case tlbiNHAll = 0x10
        case tlbiNHASID = 0x11
        case tlbiNHVA = 0x12
        case tlbiEL2All = 0x20
        case tlbiS12VMAll = 0x28
        case tlbiS2IPA = 0x2A
        case tlbiNSNHAll = 0x30
        case sync = 0x46
    }

    // dw0
    public static let opcodeMask: UInt64 = 0xFF
    public static let substreamValid: UInt64 = 1 << 11
    public static let substreamShift: UInt64 = 12
    public static let substreamMask: UInt64 = 0xF_FFFF
    public static let streamShift: UInt64 = 32
    public static let numShift: UInt64 = 12
    public static let numMask: UInt64 = 0x1F
    public static let scaleShift: UInt64 = 20
    public static let scaleMask: UInt64 = 0x1F
    public static let vmidShift: UInt64 = 32
    public static let asidShift: UInt64 = 48
    public static let syncCompletionShift: UInt64 = 12
    /// CMD_SYNC.CS = 0: completion is observed by polling CMDQ_CONS.
    public static let syncCompletionNone: UInt64 = 0
    public static let syncCompletionSEV: UInt64 = 2
    // dw1
    public static let leaf: UInt64 = 1 << 0
    public static let rangeMask: UInt64 = 0x1F
    public static let ttlShift: UInt64 = 8
    public static let ttlMask: UInt64 = 0b11
    public static let tgShift: UInt64 = 10
    public static let tgMask: UInt64 = 0b11
    /// TG = 1: 4 KiB granule range (granule = 2^(10 + 2*TG)).
    public static let tg4K: UInt64 = 1
    public static let vaMask: UInt64 = 0xFFFF_FFFF_FFFF_F000  // [63:12]
    public static let ipaMask: UInt64 = 0x000F_FFFF_FFFF_F000  // [51:12]
    /// CFGI_ALL: CFGI_STE_RANGE covering 2^(31+1) StreamIDs.
    public static let rangeAll: UInt64 = 31

    public var opcode: UInt8 { UInt8(dw0 & Self.opcodeMask) }

    @usableFromInline @_transparent static func op(_ o: Opcode) -> UInt64 { UInt64(o.rawValue) }

    // MARK: Configuration invalidation and prefetch

    public static func prefetchConfig(stream: StreamID) -> Command {
        Command(dw0: op(.prefetchConfig) | UInt64(stream.raw) << streamShift, dw1: 0)
    }
    /// CFGI_STE; `leaf: false` also invalidates the CDs reached through it.
    public static func cfgiSTE(stream: StreamID, leaf: Bool = false) -> Command {
        Command(dw0: op(.cfgiSTE) | UInt64(stream.raw) << streamShift, dw1: leaf ? Self.leaf : 0)
    }
    /// 2^(range+1) StreamIDs from `stream` aligned down.
    public static func cfgiSTERange(stream: StreamID, range: UInt8) -> Command {
        Command(dw0: op(.cfgiSTERange) | UInt64(stream.raw) << streamShift, dw1: UInt64(range) & rangeMask)
    }
    public static func cfgiAll() -> Command {
        Command(dw0: op(.cfgiSTERange), dw1: rangeAll)
    }
    public static func cfgiCD(stream: StreamID, substream: UInt32 = 0, leaf: Bool = false) -> Command {
        Command(dw0: op(.cfgiCD) | (UInt64(substream) & substreamMask) << substreamShift
                    | UInt64(stream.raw) << streamShift,
                dw1: leaf ? Self.leaf : 0)
    }
    public static func cfgiCDAll(stream: StreamID) -> Command {
        Command(dw0: op(.cfgiCDAll) | UInt64(stream.raw) << streamShift, dw1: 0)
    }

    // MARK: TLB invalidation

    public static func tlbiNHASID(asid: UInt16, vmid: UInt16 = 0) -> Command {
        Command(dw0: op(.tlbiNHASID) | UInt64(vmid) << vmidShift | UInt64(asid) << asidShift, dw1: 0)
    }
    /// TLBI_NH_VA. `range == nil` is a single-address invalidation (TG = 0);
    /// otherwise (needs IDR3.RIL) `(num+1) * 2^scale` 4 KiB pages from `va`.
    @_transparent public static func tlbiNHVA(asid: UInt16, vmid: UInt16 = 0, va: IOVA, range: TLBIRange? = nil,
                                leaf: Bool = false) -> Command {
        Command(dw0: op(.tlbiNHVA) | rangeFields0(range) | UInt64(vmid) << vmidShift | UInt64(asid) << asidShift,
                dw1: (leaf ? Self.leaf : 0) | rangeFields1(range) | va.raw & vaMask)
    }
    public static func tlbiS12VMAll(vmid: UInt16) -> Command {
        Command(dw0: op(.tlbiS12VMAll) | UInt64(vmid) << vmidShift, dw1: 0)
    }
    /// TLBI_S2_IPA, single address or (with RIL) a range as for `tlbiNHVA`.
    @_transparent public static func tlbiS2IPA(vmid: UInt16, ipa: IPA, range: TLBIRange? = nil, leaf: Bool = false) -> Command {
        Command(dw0: op(.tlbiS2IPA) | rangeFields0(range) | UInt64(vmid) << vmidShift,
                dw1: (leaf ? Self.leaf : 0) | rangeFields1(range) | ipa.raw & ipaMask)
    }
    public static func tlbiNSNHAll() -> Command { Command(dw0: op(.tlbiNSNHAll), dw1: 0) }
    public static func tlbiEL2All() -> Command { Command(dw0: op(.tlbiEL2All), dw1: 0) }

    /// CMD_SYNC with CS = none (completion seen by polling CONS) or SEV.
    public static func sync(signalEvent: Bool = false) -> Command {
        Command(dw0: op(.sync) | (signalEvent ? syncCompletionSEV : syncCompletionNone) << syncCompletionShift,
                dw1: 0)
    }

    @usableFromInline static func rangeFields0(_ r: TLBIRange?) -> UInt64 {
        guard let r else { return 0 }
        return (UInt64(r.num) & numMask) << numShift | (UInt64(r.scale) & scaleMask) << scaleShift
    }
    @usableFromInline static func rangeFields1(_ r: TLBIRange?) -> UInt64 {
        guard let r else { return 0 }
        return tg4K << tgShift | (UInt64(r.ttl) & ttlMask) << ttlShift
    }

    /// The number of 4 KiB pages a range TLBI covers; 1 for a single-address one.
    public var rangePages: UInt64 {
        let tg = dw1 >> Self.tgShift & Self.tgMask
        guard tg != 0 else { return 1 }
        let num = dw0 >> Self.numShift & Self.numMask
        let scale = dw0 >> Self.scaleShift & Self.scaleMask
        return (num + 1) << scale
    }
}
