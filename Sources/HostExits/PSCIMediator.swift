import AArch64
import Platform

/// The hypervisor's side of the host's PSCI calls (Arm DEN0022): which calls
/// reach the firmware, with which arguments, and the per-CPU boot requests
/// that `CPU_ON` leaves for the hypervisor's own entry.
///
/// `CPU_ON` is never forwarded as the host wrote it: the firmware would start
/// the CPU at EL2 at an address the host chose. It is rewritten to start the
/// CPU at the hypervisor's entry with the CPU's index as context; the entry
/// calls `takeBootRequest` to learn where the host wanted it to start, and
/// enters it at EL1 under the same stage 2.
///
/// Concurrency: one mediator serves every CPU. Each method is a short
/// read-modify-write of the table; the board calls them under one lock,
/// never holding it across the firmware call (`CPU_ON` parks the target in
/// `onPending` so a second `CPU_ON` to it is answered without the firmware).
public struct PSCIMediator: Sendable {
    /// More CPUs than this is refused at set-up (a fixed table, no heap).
    public static let capacity = 8

    /// What the hypervisor knows about one CPU's power state.
    public enum Power: Equatable, Sendable {
        case off
        /// `CPU_ON` sent to the firmware; the CPU has not reached the entry yet.
        case onPending
        case on
    }

    /// Where the host wants a CPU to start (CPU_ON) or resume (CPU_SUSPEND).
    public struct BootRequest: Equatable, Sendable {
        /// The host's entry point: the physical address the CPU starts at, at EL1, MMU off.
        public let entry: PhysAddr
        /// The host's context ID, passed to it in X0.
        public let context: UInt64

        @usableFromInline init(entry: PhysAddr, context: UInt64) {
            self.entry = entry
            self.context = context
        }
    }

    @usableFromInline struct Slot: Sendable {
        @usableFromInline var mpidr: UInt64
        @usableFromInline var power: Power
        @usableFromInline var request: BootRequest?

        @usableFromInline init(mpidr: UInt64, power: Power, request: BootRequest?) {
            self.mpidr = mpidr
            self.power = power
            self.request = request
        }
    }

    @usableFromInline var slots = InlineArray<8, Slot>(repeating: Slot(mpidr: 0, power: .off, request: nil))
    /// How many CPUs the device tree listed.
    public let cpuCount: Int
    /// The physical address CPUs started for the host enter the hypervisor at.
    public let hypervisorEntry: PhysAddr
    @usableFromInline let hostRAM: HostStage2Layout

    /// MPIDR_EL1 affinity fields (Aff3 [39:32], Aff2..Aff0 [23:0]): the bits a
    /// PSCI target_cpu may have set (DEN0022 5.1.4).
    public static let affinityMask: UInt64 = 0xFF_00FF_FFFF

    /// - Parameters:
    ///   - cpuMPIDRs: each CPU's affinity (the `reg` of the `/cpus` children),
    ///     in the order that gives each CPU its index.
    ///   - bootCPU: the index of the CPU running now; it starts `on`.
    ///   - hypervisorEntry: where secondary CPUs must enter.
    ///   - hostRAM: the host's layout; an entry point outside its RAM is refused.
    /// - Throws: a typed error for an empty or oversized list, a duplicate or
    ///   malformed MPIDR, or a boot CPU index out of range.
    @_transparent public init(cpuMPIDRs: some Sequence<UInt64>, bootCPU: Int, hypervisorEntry: PhysAddr,
                hostRAM: HostStage2Layout) throws(PSCISetupError) {
        var count = 0
        for mpidr in cpuMPIDRs {
            guard count < Self.capacity else { throw .tooManyCPUs(capacity: Self.capacity) }
            guard mpidr & ~Self.affinityMask == 0 else { throw .malformedMPIDR(mpidr) }
            for i in 0..<count where slots.span[i].mpidr == mpidr { throw .duplicateMPIDR(mpidr) }
            slots[count] = Slot(mpidr: mpidr, power: .off, request: nil)
            count += 1
        }
        guard count > 0 else { throw .noCPUs }
        guard bootCPU >= 0 && bootCPU < count else { throw .bootCPUOutOfRange(bootCPU) }
        slots[bootCPU].power = .on
        cpuCount = count
        self.hypervisorEntry = hypervisorEntry
        self.hostRAM = hostRAM
    }

    /// The CPU index of an affinity value, if the device tree listed it.
    public func index(ofMPIDR mpidr: UInt64) -> Int? {
        Self.index(ofMPIDR: mpidr, in: slots.span, count: cpuCount)
    }

    /// Static, over a span of the slots: an element read of the InlineArray
    /// copied all of it per step on the board, and `cpuOn` (mutating) calling
    /// a method on `self` copied the whole mediator first.
    @_transparent @usableFromInline static func index(ofMPIDR mpidr: UInt64, in slots: Span<Slot>, count: Int) -> Int? {
        for i in 0..<count where slots[i].mpidr == mpidr { return i }
        return nil
    }

    public func power(of cpu: Int) -> Power? {
        guard cpu >= 0 && cpu < cpuCount else { return nil }
        return slots.span[cpu].power
    }

    /// The request waiting for `cpu` at the hypervisor's entry, if any.
    public func bootRequest(of cpu: Int) -> BootRequest? {
        guard cpu >= 0 && cpu < cpuCount else { return nil }
        return slots.span[cpu].request
    }

    /// The MPIDR affinity of a CPU index.
    public func mpidr(of cpu: Int) -> UInt64? {
        guard cpu >= 0 && cpu < cpuCount else { return nil }
        return slots.span[cpu].mpidr
    }

    // MARK: Decisions

    /// Decides a PSCI call from the host's CPU `cpu` (its index).
    ///
    /// `function` is the decoded number; `smc64` whether the SMC64 ID was
    /// used (its arguments are then 64-bit, else only W1..W3 count).
    @_transparent public mutating func decide(_ function: PSCIFunction, smc64: Bool, x1: UInt64, x2: UInt64, x3: UInt64,
                                cpu: Int) -> PSCIDecision {
        if smc64 && !function.hasSMC64Form { return .answer(PSCIReturn.notSupported) }
        let id = smc64 ? PSCIFunction.smc64ID(function.number) : PSCIFunction.smc32ID(function.number)
        // DEN0028 2.6: a 32-bit call's arguments are the low halves only.
        let a1 = smc64 ? x1 : x1 & 0xFFFF_FFFF
        let a2 = smc64 ? x2 : x2 & 0xFFFF_FFFF
        let a3 = smc64 ? x3 : x3 & 0xFFFF_FFFF
        switch function {
        case .version, .migrateInfoType:
            return .forward(FirmwareCall(function: id, x1: 0, x2: 0, x3: 0, completion: .none))
        case .affinityInfo:
            return .forward(FirmwareCall(function: id, x1: a1, x2: a2, x3: 0, completion: .none))
        case .features:
            return Self.features(of: SMCCCFunctionID(raw: UInt32(truncatingIfNeeded: a1)))
        case .cpuOn:
            return cpuOn(target: a1, entry: a2, context: a3, smc64: smc64)
        case .cpuSuspend:
            return cpuSuspend(powerState: a1, entry: a2, context: a3, smc64: smc64, cpu: cpu)
        case .cpuOff:
            guard cpu >= 0 && cpu < cpuCount else { return .answer(PSCIReturn.denied) }
            slots[cpu].power = .off
            slots[cpu].request = nil
            return .forward(FirmwareCall(function: id, x1: 0, x2: 0, x3: 0, completion: .cpuOff(cpu: cpu)))
        case .systemOff:
            return .endRun(.systemOff)
        case .systemReset:
            return .endRun(.systemReset)
        default:
            return .answer(PSCIReturn.notSupported)
        }
    }

    /// PSCI_FEATURES (DEN0022 5.1.14): the firmware's answer for the calls the
    /// hypervisor passes on (its flags, e.g. CPU_SUSPEND's parameter format,
    /// are the firmware's), its own for SMCCC_VERSION, NOT_SUPPORTED for the rest.
    /// Static (it reads no state): a method on `self` called from the mutating
    /// `decide` copied the whole mediator, host layout included, on the board.
    @_transparent @usableFromInline static func features(of queried: SMCCCFunctionID) -> PSCIDecision {
        if queried.raw == SMCCCArchFunction.version { return .answer(PSCIReturn.success) }
        guard queried.isFastCall, queried.owner == SMCCCFunctionID.ownerStandardSecure, !queried.hasReservedBits else {
            return .answer(PSCIReturn.notSupported)
        }
        let function = PSCIFunction(number: queried.number)
        if queried.isSMC64 && !function.hasSMC64Form { return .answer(PSCIReturn.notSupported) }
        switch function {
        case .version, .cpuSuspend, .cpuOff, .cpuOn, .affinityInfo, .migrateInfoType, .systemOff, .systemReset,
             .features:
            return .forward(FirmwareCall(function: PSCIFunction.smc32ID(PSCIFunction.features.number),
                                         x1: UInt64(queried.raw), x2: 0, x3: 0, completion: .none))
        default:
            return .answer(PSCIReturn.notSupported)
        }
    }

    /// Static, given the layout: see `features(of:)`.
    @usableFromInline static func checkEntry(_ entry: UInt64, hostRAM: borrowing HostStage2Layout) -> Bool {
        // A64 instructions are word aligned; the entry runs with the MMU off,
        // so it is a physical address and must be the host's RAM.
        guard entry & 0b11 == 0 else { return false }
        return hostRAM.isHostRAM(PhysAddr(raw: entry))
    }

    @_transparent @usableFromInline mutating func cpuOn(target: UInt64, entry: UInt64, context: UInt64, smc64: Bool) -> PSCIDecision {
        guard target & ~Self.affinityMask == 0,
              let index = Self.index(ofMPIDR: target, in: slots.span, count: cpuCount) else {
            return .answer(PSCIReturn.invalidParameters)
        }
        guard Self.checkEntry(entry, hostRAM: hostRAM) else { return .answer(PSCIReturn.invalidAddress) }
        switch slots[index].power {
        case .on: return .answer(PSCIReturn.alreadyOn)
        case .onPending: return .answer(PSCIReturn.onPending)
        case .off: break
        }
        slots[index].power = .onPending
        slots[index].request = BootRequest(entry: PhysAddr(raw: entry), context: context)
        // Always the SMC64 form: the hypervisor's entry may be above 4 GiB.
        return .forward(FirmwareCall(function: PSCIFunction.smc64ID(PSCIFunction.cpuOn.number),
                                     x1: target, x2: hypervisorEntry.raw, x3: UInt64(index),
                                     completion: .cpuOn(target: index)))
    }

    @_transparent @usableFromInline mutating func cpuSuspend(powerState: UInt64, entry: UInt64, context: UInt64, smc64: Bool,
                             cpu: Int) -> PSCIDecision {
        guard cpu >= 0 && cpu < cpuCount else { return .answer(PSCIReturn.denied) }
        // A power-down state resumes at the entry point: like CPU_ON, that must
        // be the hypervisor's. A standby state ignores it; checking it anyway
        // costs a standby caller nothing (Linux passes its resume address).
        guard Self.checkEntry(entry, hostRAM: hostRAM) else { return .answer(PSCIReturn.invalidAddress) }
        slots[cpu].request = BootRequest(entry: PhysAddr(raw: entry), context: context)
        return .forward(FirmwareCall(function: PSCIFunction.smc64ID(PSCIFunction.cpuSuspend.number),
                                     x1: powerState, x2: hypervisorEntry.raw, x3: UInt64(cpu),
                                     completion: .cpuSuspend(cpu: cpu)))
    }

    // MARK: Completions

    /// After the board made `call` and the firmware returned `result` (its X0):
    /// undoes the bookkeeping of a call that failed. Returns the value for the
    /// host's X0.
    @_transparent public mutating func complete(_ call: FirmwareCall, firmwareResult result: UInt64) -> UInt64 {
        let status = Int64(bitPattern: result)
        switch call.completion {
        case .none:
            break
        case .cpuOn(let target):
            // On failure the CPU never started: back to off. On success it may
            // already have taken its request and be on; leave it.
            if status != PSCIReturn.success && slots[target].power == .onPending {
                slots[target].power = .off
                slots[target].request = nil
            }
        case .cpuOff(let cpu):
            // CPU_OFF returns only when it failed: the CPU is still on.
            slots[cpu].power = .on
        case .cpuSuspend(let cpu):
            // A standby state, or a power-down the firmware refused: the CPU
            // resumes here, not at the entry.
            slots[cpu].request = nil
        }
        return result
    }

    /// Called by a CPU arriving at the hypervisor's entry with `cpu` (the
    /// context it was given): where the host wants it to run. The request is
    /// consumed and the CPU marked on. Nil when no request is pending (a CPU
    /// the host did not start), and the CPU must then not enter the host.
    public mutating func takeBootRequest(cpu: Int) -> BootRequest? {
        guard cpu >= 0 && cpu < cpuCount, let request = slots[cpu].request else { return nil }
        slots[cpu].request = nil
        slots[cpu].power = .on
        return request
    }
}

/// What to do with one PSCI call.
public enum PSCIDecision: Equatable, Sendable {
    /// Answer the host with this value in X0, without the firmware.
    case answer(Int64)
    /// Make this call to the firmware; pass its X0 through `complete`.
    case forward(FirmwareCall)
    /// SYSTEM_OFF / SYSTEM_RESET: end the run with the hypervisor's report.
    case endRun(RunEnd)
}

/// How the host asked the run to end.
public enum RunEnd: Equatable, Sendable {
    case systemOff
    case systemReset

    public var name: StaticString {
        switch self {
        case .systemOff: "SYSTEM_OFF"
        case .systemReset: "SYSTEM_RESET"
        }
    }
}

/// A call the board makes to the firmware (SMC, X0..X3), on the host's behalf.
public struct FirmwareCall: Equatable, Sendable {
    public let function: UInt32
    public let x1: UInt64
    public let x2: UInt64
    public let x3: UInt64
    /// Bookkeeping `PSCIMediator.complete` finishes when the call returns.
    public let completion: Completion

    /// (Explicit for `PSCIMediator.decide`, which is inlined where it is used.)
    @usableFromInline init(function: UInt32, x1: UInt64, x2: UInt64, x3: UInt64, completion: Completion) {
        self.function = function
        self.x1 = x1
        self.x2 = x2
        self.x3 = x3
        self.completion = completion
    }

    public enum Completion: Equatable, Sendable {
        case none
        case cpuOn(target: Int)
        case cpuOff(cpu: Int)
        case cpuSuspend(cpu: Int)
    }

    public var x0: UInt64 { UInt64(function) }
}

/// Why the PSCI table could not be set up.
public enum PSCISetupError: Error, Equatable, Sendable {
    case noCPUs
    case tooManyCPUs(capacity: Int)
    case duplicateMPIDR(UInt64)
    /// Bits outside the affinity fields.
    case malformedMPIDR(UInt64)
    case bootCPUOutOfRange(Int)
}
