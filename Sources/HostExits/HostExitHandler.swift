import AArch64
import Ownership

/// The host's general-purpose registers as the board saved them at the exit.
public protocol HostRegisterFile {
    /// X`n`, 0...30.
    func x(_ n: Int) -> UInt64
    /// Sets X`n`, 0...30.
    mutating func setX(_ n: Int, _ value: UInt64)
}

/// What the board read at a synchronous exit from the host (EL1 or EL0).
public struct HostExit: Equatable, Sendable {
    public var syndrome: ExceptionSyndrome
    /// ELR_EL2.
    public var elr: UInt64
    /// SPSR_EL2.
    public var spsr: UInt64
    /// FAR_EL2 (the faulting virtual address of an abort).
    public var far: UInt64
    /// The faulting IPA of a stage-2 abort, decoded from HPFAR_EL2 and
    /// FAR_EL2 by the caller; nil when the exit is not a stage-2 abort or
    /// HPFAR_EL2 is not valid.
    public var faultIPA: IPA?
    /// The host's SCTLR_EL1 (read only when an exception is injected).
    public var sctlrEL1: UInt64

    public init(syndrome: ExceptionSyndrome, elr: UInt64, spsr: UInt64, far: UInt64 = 0,
                faultIPA: IPA? = nil, sctlrEL1: UInt64 = 0) {
        self.syndrome = syndrome
        self.elr = elr
        self.spsr = spsr
        self.far = far
        self.faultIPA = faultIPA
        self.sctlrEL1 = sctlrEL1
    }
}

/// What the board does after `HostExitHandler.handle`. Register results
/// (an SMCCC answer, an emulated load) are already in the register file.
public enum HostExitDecision: Equatable, Sendable {
    /// Return to the host at `pc` (ELR_EL2 = pc, SPSR_EL2 unchanged).
    case resume(pc: UInt64)
    /// A trapped WFI: wait for an interrupt, then return at `pc`.
    case waitForInterrupt(resumeAt: UInt64)
    /// Make `call` to the firmware (SMC), pass its X0 to
    /// `HostExitHandler.completeFirmwareCall`, then return at `resumeAt`.
    case callFirmware(FirmwareCall, resumeAt: UInt64)
    /// Make the host take this exception (see `ExceptionInjection`).
    case inject(ExceptionInjection, reason: InjectionReason)
    /// The host asked for the end of the run (PSCI SYSTEM_OFF/SYSTEM_RESET):
    /// print the hypervisor's report and stop.
    case endRun(RunEnd)
    /// Nothing the host can be given back: report and stop.
    case fatal(FatalExit)
}

/// Why an exception was injected, for the log.
public enum InjectionReason: Equatable, Sendable {
    /// An access to an IPA the host's stage 2 does not map (hypervisor
    /// memory, the SMMU); the IPA is nil when HPFAR_EL2 was not valid.
    case stage2Refused(IPA?)
    /// An access to the control page that cannot be emulated.
    case controlDeviceRefused(ControlAccessError)
    /// An exception class the host may not cause (the EC, ESR_EL2[31:26]).
    case undefined(exceptionClass: UInt8)
}

/// Exits that end the run.
public enum FatalExit: Equatable, Sendable {
    /// An SError routed to EL2.
    case serror(syndrome: UInt64)
    /// An exception class taken from EL2 itself reached the host handler.
    case hypervisorException(syndrome: UInt64)
}

/// The kinds of exit the hypervisor counts for its report.
public enum HostExitKind: Int, Sendable {
    case psci = 0
    case smcccOther
    case controlDevice
    case stage2Refused
    case controlDeviceRefused
    case waitForInterrupt
    case undefined
    case fatal

    /// How many kinds there are: `HostExitKind(rawValue:)` is defined for 0..<count.
    public static let count = 8

    @_transparent public var name: StaticString {
        switch self {
        case .psci: "PSCI calls"
        case .smcccOther: "other SMC/HVC calls"
        case .controlDevice: "control device accesses"
        case .stage2Refused: "stage-2 aborts refused"
        case .controlDeviceRefused: "control device accesses refused"
        case .waitForInterrupt: "WFI"
        case .undefined: "undefined instructions injected"
        case .fatal: "fatal exits"
        }
    }
}

/// A decision and the kind it is counted as.
public struct HostExitOutcome: Equatable, Sendable {
    public let decision: HostExitDecision
    public let kind: HostExitKind

    /// (Explicit for `firmwareCall`, which is inlined where it is used.)
    @usableFromInline init(decision: HostExitDecision, kind: HostExitKind) {
        self.decision = decision
        self.kind = kind
    }
}

/// Per-kind exit counts (one per CPU, summed for the report).
public struct HostExitCounts: Equatable, Sendable {
    public private(set) var counts = InlineArray<8, UInt64>(repeating: 0)
    public init() {}
    public mutating func record(_ kind: HostExitKind) { counts[kind.rawValue] &+= 1 }
    public subscript(kind: HostExitKind) -> UInt64 { counts[kind.rawValue] }

    public static func == (a: Self, b: Self) -> Bool {
        for i in 0..<8 where a.counts[i] != b.counts[i] { return false }
        return true
    }
}

/// Decides every synchronous exit of the deprivileged host. The board reads
/// the exit's registers, calls `handle`, and applies the decision; nothing
/// here touches hardware.
///
/// | EC (ESR_EL2[31:26]) | decision |
/// |---|---|
/// | 0x16 HVC64, 0x17 SMC64 | SMCCC: PSCI through `PSCIMediator`, SMCCC_VERSION / ARCH_FEATURES answered, everything else NOT_SUPPORTED (X0 = -1); resume after the instruction (HVC: ELR already past it; trapped SMC: ELR + 4, wrapping) |
/// | 0x24 data abort, lower EL | on the control page: emulated, resume at ELR + 4 (+ 2 for a 16-bit T32 instruction); elsewhere: refused, synchronous external abort injected, IPA logged |
/// | 0x20 instruction abort, lower EL | synchronous external abort injected (instruction fetch), IPA logged |
/// | 0x01 WFI/WFE | WFI: wait for an interrupt; WFE: resume; both past the instruction |
/// | 0x2F SError | fatal: reported, run ends |
/// | 0x21, 0x25 (EL2's own aborts) | fatal: they cannot come from the host |
/// | any other | undefined instruction injected |
public struct HostExitHandler: Sendable {
    /// The control device's page.
    public let controlPage: IPA

    public init(controlPage: IPA) {
        self.controlPage = controlPage
    }

    @usableFromInline static let instructionBytes: UInt64 = 4
    static let t16InstructionBytes: UInt64 = 2
    @usableFromInline static let immediateMask: UInt32 = 0xFFFF
    static let wfxTypeMask: UInt32 = 0b11
    static let ecHVC64: UInt8 = 0x16
    static let ecSMC64: UInt8 = 0x17

    /// Decides one exit of the host's CPU `cpu` (its index in `psci`).
    ///
    /// - Parameters:
    ///   - registers: the host's X0..X30; SMCCC results and emulated loads are
    ///     written here.
    ///   - psci: shared by every CPU; hold its lock for the call.
    ///   - control: this CPU's own control-device registers (no lock).
    ///   - operations: the page-state operations; their conformance locks.
    public func handle<Registers: HostRegisterFile, Operations: HostPageOperations & ~Copyable>(
        _ exit: HostExit, cpu: Int, registers: inout Registers, psci: inout PSCIMediator,
        control: inout ControlRegisterFile, operations: inout Operations
    ) -> HostExitOutcome {
        let syndrome = exit.syndrome
        // The three injected exceptions share one ExceptionInjection and one
        // outcome at the end (one copy of each on the board, not three).
        let injected: ExceptionInjection.Kind
        let reason: InjectionReason
        let kind: HostExitKind
        var resume = exit.elr  // an HVC's ELR is already past it
        switch syndrome.exceptionClass {
        case .smc64:
            // A trapped SMC is reported with ELR at the SMC itself (Arm ARM
            // D1.11.2); the host may sit at the top of its address space.
            resume = exit.elr &+ Self.instructionBytes
            fallthrough
        case .hvc64:
            // One call for both (two were two copies of its set-up on the board).
            return Self.smccc(exit, resumeAt: resume, cpu: cpu, registers: &registers, psci: &psci)
        case .dataAbortLowerEL:
            injected = .dataAbort(write: syndrome.isWrite)
            if let ipa = exit.faultIPA, ipa.frame == controlPage.frame {
                do throws(ControlAccessError) {
                    return try controlAccess(exit, offset: ipa.raw & PageSize.offsetMask4K, registers: &registers,
                                             control: &control, operations: &operations)
                } catch {
                    // Injected below, with the other refusals (WnR is ISS bit 6 in both syndromes).
                    reason = .controlDeviceRefused(error)
                    kind = .controlDeviceRefused
                }
            } else {
                reason = .stage2Refused(exit.faultIPA)
                kind = .stage2Refused
            }
        case .instructionAbortLowerEL:
            injected = .instructionAbort
            reason = .stage2Refused(exit.faultIPA)
            kind = .stage2Refused
        case .trappedWFxInstruction:
            let next = exit.elr &+ (syndrome.is32BitInstruction ? Self.instructionBytes : Self.t16InstructionBytes)
            // ISS.TI [1:0]: 0b00 WFI, 0b01 WFE, 0b10 WFIT, 0b11 WFET.
            let decision: HostExitDecision = syndrome.iss & Self.wfxTypeMask == 0
                ? .waitForInterrupt(resumeAt: next) : .resume(pc: next)
            return HostExitOutcome(decision: decision, kind: .waitForInterrupt)
        case .serror:
            return HostExitOutcome(decision: .fatal(.serror(syndrome: syndrome.raw)), kind: .fatal)
        case .dataAbortSameEL, .instructionAbortSameEL:
            return HostExitOutcome(decision: .fatal(.hypervisorException(syndrome: syndrome.raw)), kind: .fatal)
        default:
            injected = .undefinedInstruction
            reason = .undefined(exceptionClass: UInt8(truncatingIfNeeded: syndrome.raw >> 26) & 0x3F)
            kind = .undefined
        }
        let injection = ExceptionInjection(injected, spsr: exit.spsr, elr: exit.elr, far: exit.far, sctlrEL1: exit.sctlrEL1)
        return HostExitOutcome(decision: .inject(injection, reason: reason), kind: kind)
    }

    /// After a `.callFirmware` decision: the firmware's X0 goes through the
    /// mediator (which undoes a failed CPU_ON's bookkeeping) into the host's X0.
    @_transparent public func completeFirmwareCall<Registers: HostRegisterFile>(
        _ call: FirmwareCall, firmwareResult: UInt64, registers: inout Registers, psci: inout PSCIMediator
    ) {
        registers.setX(0, psci.complete(call, firmwareResult: firmwareResult))
    }

    // MARK: SMCCC

    /// An HVC or SMC (EC 0x16 / 0x17) of the host or of a guest the
    /// hypervisor runs: SMCCC decoded here, PSCI decided by `policy` (the
    /// host's `PSCIMediator`, or `IsolatedGuestPSCI`, which sends nothing to
    /// the firmware). Nil for any other exception class.
    @_transparent public static func firmwareCall<Registers: HostRegisterFile, Policy: PSCIPolicy>(
        _ exit: HostExit, cpu: Int, registers: inout Registers, policy: inout Policy
    ) -> HostExitOutcome? {
        var resume = exit.elr  // an HVC's ELR is already past it
        switch exit.syndrome.exceptionClass {
        case .smc64:
            // A trapped SMC is reported with ELR at the SMC itself (Arm ARM
            // D1.11.2); the caller may sit at the top of its address space.
            resume = exit.elr &+ instructionBytes
            fallthrough
        case .hvc64:
            return smccc(exit, resumeAt: resume, cpu: cpu, registers: &registers, psci: &policy)
        default:
            return nil
        }
    }

    @_transparent @usableFromInline static func smccc<Registers: HostRegisterFile, Policy: PSCIPolicy>(
        _ exit: HostExit, resumeAt pc: UInt64, cpu: Int, registers: inout Registers, psci: inout Policy
    ) -> HostExitOutcome {
        let id = SMCCCFunctionID(x0: registers.x(0))
        // DEN0028 2.9: SMCCC calls use immediate 0; anything else is not ours to answer.
        guard exit.syndrome.iss & Self.immediateMask == 0, id.isFastCall, !id.hasReservedBits else {
            return answer(PSCIReturn.notSupported, pc, .smcccOther, &registers)
        }
        switch id.owner {
        case SMCCCFunctionID.ownerArchitecture:
            return answer(architectureCall(id, x1: registers.x(1)), pc, .smcccOther, &registers)
        case SMCCCFunctionID.ownerStandardSecure:
            let function = PSCIFunction(number: id.number)
            let decision = psci.decide(function, smc64: id.isSMC64, x1: registers.x(1), x2: registers.x(2),
                                       x3: registers.x(3), cpu: cpu)
            switch decision {
            case .answer(let value):
                return answer(value, pc, .psci, &registers)
            case .forward(let call):
                return HostExitOutcome(decision: .callFirmware(call, resumeAt: pc), kind: .psci)
            case .endRun(let end):
                return HostExitOutcome(decision: .endRun(end), kind: .psci)
            }
        default:
            return answer(PSCIReturn.notSupported, pc, .smcccOther, &registers)
        }
    }

    /// SMCCC architecture calls (DEN0028 section 7).
    @usableFromInline static func architectureCall(_ id: SMCCCFunctionID, x1: UInt64) -> Int64 {
        switch id.raw {
        case SMCCCArchFunction.version:
            return PSCIReturn.smcccVersion1_1
        case SMCCCArchFunction.archFeatures:
            // Only the discovery calls themselves are implemented; the
            // firmware workarounds are not offered (their calls would not
            // reach the firmware).
            let queried = UInt32(truncatingIfNeeded: x1)
            return queried == SMCCCArchFunction.version || queried == SMCCCArchFunction.archFeatures
                ? PSCIReturn.success : PSCIReturn.notSupported
        default:
            return PSCIReturn.notSupported
        }
    }

    @usableFromInline static func answer<Registers: HostRegisterFile>(_ value: Int64, _ pc: UInt64, _ kind: HostExitKind,
                                                                      _ registers: inout Registers) -> HostExitOutcome {
        registers.setX(0, PSCIReturn.x0(value))
        return HostExitOutcome(decision: .resume(pc: pc), kind: kind)
    }

    // MARK: Control device

    /// The emulated access, resumed past the instruction; a refusal throws,
    /// and `handle` injects the data abort (one injection for every refusal).
    @_transparent func controlAccess<Registers: HostRegisterFile, Operations: HostPageOperations & ~Copyable>(
        _ exit: HostExit, offset: UInt64, registers: inout Registers, control: inout ControlRegisterFile,
        operations: inout Operations
    ) throws(ControlAccessError) -> HostExitOutcome {
        let abort = DataAbortSyndrome(exit.syndrome)
        guard abort.isValid else { throw .noSyndrome }
        guard !abort.isCacheMaintenance else { throw .cacheMaintenance }
        guard !abort.onStage1Walk else { throw .tableWalk }
        let bytes = abort.accessBytes
        let widthMask: UInt64 = bytes == 8 ? UInt64.max : (1 << (UInt64(bytes) * 8)) - 1
        var value: UInt64?
        if abort.isWrite {
            // X31 as SRT is the zero register (Arm ARM C1.2.5).
            value = (abort.register == 31 ? 0 : registers.x(abort.register)) & widthMask
        }
        let read = try control.performAccess(ControlAccess(offset: offset, bytes: bytes, writeValue: value),
                                             operations: &operations)
        if let read, abort.register != 31 {
            registers.setX(abort.register, Self.extend(read & widthMask, bytes: bytes, abort))
        }
        let length = exit.syndrome.is32BitInstruction ? Self.instructionBytes : Self.t16InstructionBytes
        return HostExitOutcome(decision: .resume(pc: exit.elr &+ length), kind: .controlDevice)
    }

    /// A loaded value as the register receives it: sign-extended when SSE, to
    /// 64 bits for an X register or 32 for a W register (whose upper half is
    /// then zero).
    @_transparent static func extend(_ value: UInt64, bytes: Int, _ abort: DataAbortSyndrome) -> UInt64 {
        var result = value
        if abort.signExtends && bytes < 8 {
            let shift = UInt64(64 - bytes * 8)
            result = UInt64(bitPattern: Int64(bitPattern: value << shift) >> shift)
        }
        return abort.sixtyFourBitRegister ? result : result & 0xFFFF_FFFF
    }
}
