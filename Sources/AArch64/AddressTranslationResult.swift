/// PAR_EL1 after an address translation instruction (`AT`), in its 64-bit
/// format (Arm ARM register description "PAR_EL1").
///
/// Success (F = 0): PA [55:12] (bits above the implemented PA size are RES0),
/// with ATTR [63:56], NS [9] and SH [8:7] around it. Failure (F = 1): FST [6:1]
/// (the fault status code ESR uses), PTW [8], S [9] (the fault came from stage 2).
public enum AddressTranslationResult: Equatable, Sendable {
    case translated(PhysAddr)
    case stage1Fault(FaultStatus)
    case stage2Fault(FaultStatus)

    @usableFromInline static let failed: UInt64 = 1 << 0
    @usableFromInline static let stage2: UInt64 = 1 << 9
    @usableFromInline static let statusShift: UInt64 = 1
    @usableFromInline static let statusMask: UInt64 = 0x3F
    @usableFromInline static let addressMask: UInt64 = 0x00FF_FFFF_FFFF_F000

    /// `par` as the instruction left it for the input address `input`; a
    /// translated result keeps the input's offset in its 4 KiB page.
    @_transparent public init(par: UInt64, input: UInt64) {
        guard par & Self.failed != 0 else {
            self = .translated(PhysAddr(raw: par & Self.addressMask | input & PageSize.offsetMask4K))
            return
        }
        let status = FaultStatus(code: UInt8(truncatingIfNeeded: par >> Self.statusShift & Self.statusMask))
        self = par & Self.stage2 != 0 ? .stage2Fault(status) : .stage1Fault(status)
    }
}
