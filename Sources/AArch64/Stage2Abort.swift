/// A data or instruction abort taken to EL2 from a lower EL (with
/// HCR_EL2.VM = 1 that is a stage-2 fault, or a stage-2 fault on a stage-1
/// table walk), with the addresses the architecture gives for it.
///
/// The IPA comes from HPFAR_EL2.FIPA (the page) and FAR_EL2 (the offset, the
/// same in the VA and the IPA for any granule of 4 KiB or more). HPFAR_EL2 is
/// written only for translation, access flag and address size faults, and on a
/// stage-1 table walk for permission faults as well; for a permission fault on
/// the access itself it is UNKNOWN (Arm ARM register description "HPFAR_EL2",
/// "Configuration"), so no IPA is claimed for one.
public struct Stage2Abort: Equatable, Sendable {
    public enum Access: Equatable, Sendable {
        case read
        case write
        case instructionFetch
    }

    public let syndrome: ExceptionSyndrome
    public let access: Access
    public let fault: FaultStatus
    /// The faulting page, where HPFAR_EL2 holds it.
    public let page: GFN?
    /// FAR_EL2, unless ESR.ISS.FnV says it is not valid.
    public let virtualAddress: UInt64?

    /// HPFAR_EL2.FIPA, bits [47:4]: IPA bits [55:12] at most (FEAT_D128); the
    /// bits above the implemented IPA size are RES0, and so are [62:48]. NS [63]
    /// is RES0 for aborts taken to Non-secure EL2.
    @usableFromInline static let fipaMask: UInt64 = 0x0000_FFFF_FFFF_FFF0
    @usableFromInline static let fipaShift: UInt64 = 4

    /// nil when the syndrome is not an abort from a lower EL. Transparent: on
    /// the board its one caller is the guest scenario's abort handler.
    @_transparent public init?(syndrome: ExceptionSyndrome, hpfar: UInt64, far: UInt64) {
        switch syndrome.exceptionClass {
        case .dataAbortLowerEL: access = syndrome.isWrite ? .write : .read
        case .instructionAbortLowerEL: access = .instructionFetch
        default: return nil
        }
        self.syndrome = syndrome
        fault = syndrome.fault
        virtualAddress = syndrome.farIsValid ? far : nil
        let hpfarWritten = switch fault {
        case .translation, .accessFlag, .addressSize: true
        case .permission: syndrome.onStage1Walk
        case .other: false
        }
        page = hpfarWritten ? GFN(raw: (hpfar & Self.fipaMask) >> Self.fipaShift) : nil
    }

    /// The stage-1 table walk, not the access itself, faulted at stage 2
    /// (ESR.ISS.S1PTW): `page` then holds the stage-1 table.
    public var onStage1Walk: Bool { syndrome.onStage1Walk }

    /// The faulting IPA to the byte: `page` with FAR_EL2's page offset. nil on
    /// a stage-1 walk (FAR is the VA being translated, not the descriptor's
    /// address) or where either register does not hold it.
    public var ipa: IPA? {
        guard let page, let virtualAddress, !onStage1Walk else { return nil }
        return page.address.adding(virtualAddress & PageSize.offsetMask4K)
    }
}
