import AArch64
import Translation
import Ownership
import Platform
import SMMUv3
import HostExits
import ArchC

/// The registers Boot/vectors.S saved at the exit, as HostExits reads them.
struct SavedRegisters: HostRegisterFile {
    let frame: UnsafeMutablePointer<UInt64>
    static let count = 31
    func x(_ n: Int) -> UInt64 { n >= 0 && n < Self.count ? frame[n] : 0 }
    mutating func setX(_ n: Int, _ value: UInt64) { if n >= 0 && n < Self.count { frame[n] = value } }
}

/// Exits from the host, on the CPU that took them. The board reads the
/// syndrome and registers, HostExitHandler decides, and the board applies
/// the decision. Nothing reachable from here allocates, and no arithmetic on
/// a host-chosen value can trap.
///
/// One lock covers the decision (the PSCI table, the page-state operations
/// behind the control device); it is never held across a firmware call.
extension LinuxHost {
    /// Vector kind 8: synchronous from a lower EL in AArch64 (Boot/vectors.S).
    static let lowerELSynchronous: UInt64 = 8
    /// HPFAR_EL2.FIPA [43:4] holds IPA[55:12].
    static let hpfarShift: UInt64 = 4
    static let hpfarFIPAMask: UInt64 = 0x0000_0FFF_FFFF_FFF0

    /// The page below the control page holds a pattern the host's devices try
    /// to overwrite; the closing report checks it survived.
    static let canaryWord: UInt64 = 0xCA4A_4D1E_5EED_F00D
    static let canaryWords = Int(PageSize.bytes4K / 8)

    /// Written over every host CPU's EL2 stack before the host runs; the
    /// closing report finds how deep each stack was used by where it stops.
    static let stackPaint: UInt64 = 0x57AC_57AC_57AC_57AC
    static let stackWords = Int(HV_HOST_CPU_STACK_SIZE) / 8
    /// The deepest use the report accepts: an overflow would fault on the
    /// guard page below, and a quarter is kept in reserve before that.
    static let stackBudget = Int(HV_HOST_CPU_STACK_SIZE) * 3 / 4

    /// Paints each CPU's stack (not its guard pages, which are unmapped).
    @_transparent
    static func paintStacks() {
        guard let stacks = EL2Protection.cpuStacks else { return }
        // While loops and initialize(repeating:count:) (prepareExits has it
        // for UInt64 already): a range loop stepped a Range iterator in memory.
        var cpu = 0
        while cpu < stacks.cpus {
            if let base = stacks.stackBase(cpu: cpu) {
                UnsafeMutablePointer<UInt64>(bitPattern: UInt(base))!.initialize(repeating: stackPaint, count: stackWords)
            }
            cpu += 1
        }
    }

    /// Bytes of CPU `cpu`'s EL2 stack that were ever written.
    @_transparent
    static func stackUsed(cpu: Int) -> Int {
        guard let base = EL2Protection.cpuStacks?.stackBase(cpu: cpu) else { return 0 }
        let words = UnsafeMutablePointer<UInt64>(bitPattern: UInt(base))!
        var untouched = 0
        while untouched < stackWords && words[untouched] == stackPaint { untouched += 1 }
        return (stackWords - untouched) * 8
    }

    @_transparent
    static func prepareExits() {
        let counts = heapAllocate(UInt64.self, count: HostExitKind.count)
        counts.initialize(repeating: 0, count: HostExitKind.count)
        exitCounts = counts
        let words = UnsafeMutablePointer<UInt64>(bitPattern: UInt(canaryPage))!
        var i = 0
        while i < canaryWords {
            words[i] = canaryWord ^ UInt64(i)
            i += 1
        }
        let files = heapAllocate(ControlRegisterFile.self, count: PSCIMediator.capacity)
        // One slot at a time: initialize(repeating:count:) was a specialisation of its own for this type.
        var cpu = 0
        while cpu < PSCIMediator.capacity {
            (files + cpu).initialize(to: ControlRegisterFile())
            cpu += 1
        }
        controlFiles = files
    }

    static func exit(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) {
        guard kind == lowerELSynchronous, let psci, let pages, let handler, let controlFiles, let exitCounts else {
            reportUnexpected(frame, kind)
        }
        let cpu = Int(truncatingIfNeeded: arch_read_tpidr_el2() & 0x7)
        let syndrome = ExceptionSyndrome(raw: frame[ExceptionFrame.esr])
        // Classes are matched by pattern throughout the board: ExceptionClass's
        // derived `==` (it has a payload case) was a 372-byte function in the image.
        var smccc = false, abort = false
        switch syndrome.exceptionClass {
        case .smc64, .hvc64: smccc = true
        case .dataAbortLowerEL, .instructionAbortLowerEL: abort = true
        default: break
        }
        if BootEnvironment.option(BootEnvironment.Option.hostExitFault) && smccc {
            BootEnvironment.options &= ~BootEnvironment.Option.hostExitFault
            Console.say("selftest: serving the host's SMCCC exit with its SP_EL0 %x saved, the handler loads from 0x20000000000\n",
                        frame[ExceptionFrame.spEL0])
            Console.hex(UnsafePointer<UInt64>(bitPattern: UInt(0x200_0000_0000))!.pointee)
        }
        var faultIPA: IPA?
        if abort {
            faultIPA = IPA(((arch_read_hpfar_el2() & hpfarFIPAMask) >> hpfarShift) << PageSize.shift4K
                           | frame[ExceptionFrame.far] & PageSize.offsetMask4K)
        }
        let exit = HostExit(syndrome: syndrome, elr: frame[ExceptionFrame.elr], spsr: frame[ExceptionFrame.spsr],
                            far: frame[ExceptionFrame.far], faultIPA: faultIPA, sctlrEL1: arch_read_sctlr_el1())
        var registers = SavedRegisters(frame: frame)
        lock.lock()
        // A stage-2 fault on a page the host's stage 2 maps again by now hit
        // another CPU's break-before-make window: retry instead of injecting.
        if let ipa = faultIPA, exit.syndrome.fault.isTranslation, let p2m, p2m.pointee.table.lookup(ipa.frame) != nil {
            lock.unlock()
            return
        }
        let outcome = handler.handle(exit, cpu: cpu, registers: &registers, psci: &psci.pointee,
                                     control: &controlFiles[cpu], operations: &pages.pointee)
        lock.unlock()
        _ = arch_atomic_add64(UInt64(UInt(bitPattern: exitCounts + outcome.kind.rawValue)), 1)

        switch outcome.decision {
        case .resume(let pc):
            frame[ExceptionFrame.elr] = pc
        case .waitForInterrupt(let pc):
            arch_wfi()
            frame[ExceptionFrame.elr] = pc
        case .callFirmware(let call, let pc):
            let result = arch_smc_call(call.x0, call.x1, call.x2, call.x3)
            lock.lock()
            handler.completeFirmwareCall(call, firmwareResult: result, registers: &registers, psci: &psci.pointee)
            lock.unlock()
            frame[ExceptionFrame.elr] = pc
        case .inject(let injection, let reason):
            if case .stage2Refused(let ipa) = reason {
                Console.say("host: stage-2 abort at IPA %x (ELR %x): refused, external abort injected\n",
                            ipa?.raw ?? 0, exit.elr)
            }
            injection.apply(to: frame)
        case .endRun(let end):
            endRun(end)
        case .fatal:
            reportUnexpected(frame, kind)
        }
    }

    /// The host asked for SYSTEM_OFF or SYSTEM_RESET: the hypervisor adds what
    /// only it can see, then ends the run with one verdict.
    @_transparent
    static func endRun(_ end: RunEnd) -> Never {
        Power.claimTheEnd()
        Console.put("host: the host asked for ")
        Console.lineComputed(end.name)
        Checks.expect(end == .systemOff,
                      "host: the host ended with SYSTEM_OFF (its test script asks for SYSTEM_RESET when a check failed)")
        // While loops here: a range loop stepped a Range iterator in memory.
        if let exitCounts {
            var raw = 0
            while raw < HostExitKind.count {
                if let kind = HostExitKind(rawValue: raw) {
                    Console.say("host: exits: %d ", exitCounts[raw])
                    Console.lineComputed(kind.name)
                }
                raw += 1
            }
        }
        var deepest = 0
        if let psci {
            var cpu = 0
            while cpu < psci.pointee.cpuCount {
                let used = stackUsed(cpu: cpu)
                deepest = max(deepest, used)
                Console.say("host: CPU %d used %d of its %d-byte EL2 stack\n", UInt64(truncatingIfNeeded: cpu),
                            UInt64(truncatingIfNeeded: used), UInt64(HV_HOST_CPU_STACK_SIZE))
                cpu += 1
            }
        }
        Checks.expect(deepest <= stackBudget, "host: every CPU's EL2 stack stayed within three quarters of its size")
        let heapNow = hv_heap_used()
        Console.say("host: EL2 heap in use: %d bytes when the host started, %d bytes now\n", heapAtEntry, heapNow)
        Checks.expect(heapNow == heapAtEntry, "host: no exit the host caused allocated from the EL2 heap")
        var intact = true
        let words = UnsafeMutablePointer<UInt64>(bitPattern: UInt(canaryPage))!
        var i = 0
        while i < canaryWords {
            if words[i] != canaryWord ^ UInt64(i) { intact = false }
            i += 1
        }
        Checks.expect(intact, "host: the hypervisor's canary page is unchanged")
        if let smmu = smmuHandle {
            let tally = Board.EventTally(smmu, sid: eduStreamID, page: canaryPage)
            let atCanary = tally.translationFaultsAtPage
            Console.say("host: SMMU events drained: %d, F_TRANSLATION %d, from edu's StreamID at the canary %d\n",
                        UInt64(truncatingIfNeeded: tally.drained),
                        UInt64(truncatingIfNeeded: tally.translationFaults), UInt64(truncatingIfNeeded: atCanary))
            if eduStreamID != nil {
                Checks.expect(atCanary > 0,
                              "host: edu's DMA at hypervisor memory faulted (F_TRANSLATION, edu's StreamID, the canary's address)")
            }
            Checks.expect(smmu.smmu.checkGlobalErrors().isClean, "host: no SMMU global errors")
        }
        Console.say("host: %d passed, %d failed\n", UInt64(truncatingIfNeeded: Checks.passed),
                    UInt64(truncatingIfNeeded: Checks.failed))
        Power.exit(code: Checks.failed == 0 ? ExitCode.passed : ExitCode.checksFailed)
    }
}

/// Where a CPU the host started arrives from Boot/host.S (EL2, MMU on, its
/// own stack): the PSCI table says where the host wants it.
@c(hv_cpu_main)
func hvCPUMain(_ cpu: UInt64) {
    if BootEnvironment.option(BootEnvironment.Option.secondaryStackOverflow) {
        Console.say("selftest: CPU %d recurses on its own EL2 stack\n", cpu)
        Console.decimal(overflowStack(1))
    }
    guard let psci = LinuxHost.psci, cpu < UInt64(PSCIMediator.capacity) else { while true { arch_wfe() } }
    LinuxHost.lock.lock()
    let request = psci.pointee.takeBootRequest(cpu: Int(cpu))
    LinuxHost.lock.unlock()
    guard let request else { while true { arch_wfe() } }
    Console.say("host: CPU %d (MPIDR %x) enters the host at %x through the hypervisor's entry\n", cpu,
                arch_read_mpidr_el1() & PSCIMediator.affinityMask, request.entry.raw)
    LinuxHost.enter(cpu: Int(cpu), entry: request.entry.raw, x0: request.context)
}

extension ExceptionInjection {
    /// Deliver this injection to the lower EL about to be resumed from `frame`:
    /// its EL1 syndrome, fault address and return state, then the `eret` goes to
    /// its vector (VBAR_EL1 + the offset) with the new PSTATE.
    @_transparent
    func apply(to frame: UnsafeMutablePointer<UInt64>) {
        arch_write_esr_el1(esr)
        arch_write_far_el1(far)
        arch_write_elr_el1(returnAddress)
        arch_write_spsr_el1(savedPSTATE)
        frame[ExceptionFrame.elr] = handlerAddress(vbarEL1: arch_read_vbar_el1())
        frame[ExceptionFrame.spsr] = newPSTATE
    }
}
