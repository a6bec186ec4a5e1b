import AArch64
import Translation
import Ownership
import Platform
import HostExits
import ArchC

/// A guest at EL1 under a P2M: the tiny program in Boot/guest.S makes
/// hypercalls, writes a read-only page (a stage-2 permission fault the
/// hypervisor refuses and skips) and reads a page nothing maps yet (a stage-2
/// translation fault the hypervisor serves by populating it, then retries),
/// then writes the hypervisor's own memory and reads an IPA nothing maps:
/// both come back to it as synchronous external aborts (ExceptionInjection,
/// as for the Linux host), which its EL1 vectors report and step over.
///
/// It runs last: the guest's final hypercall ends the run from the exception
/// handler, so the P2M and the frame allocator live in statics the handler
/// can reach.
enum GuestScenario {
    static let vmid: UInt16 = 3
    static let codeIPA = IPA(0x8000_0000)
    static let readWriteIPA = codeIPA.adding(0x1000)
    static let readOnlyIPA = codeIPA.adding(0x2000)
    static let demandIPA = codeIPA.adding(0x10_0000)
    static let readOnlyMarker: UInt64 = 0x0000_0000_0DDB_A11
    static let demandMarker: UInt64 = 0x0000_0000_D15C_0000
    static let pingAnswer: UInt64 = 0x600D
    static let writtenByGuest: UInt64 = 0xBEEF
    static let floodCountOffset: UInt64 = 8
    static let semihostingFlagOffset: UInt64 = 16
    /// Boot/guest.S writes the address this word holds: `hypervisorCanary`'s.
    static let hypervisorAddressOffset: UInt64 = 48
    /// Boot/guest.S jumps to the IPA in this word first when it is not 0.
    static let jumpOffset: UInt64 = 40
    /// An IPA nothing maps, next to the read-only page: the guest reads it.
    static let unmappedIPA = codeIPA.adding(0x3000)
    /// A word of the hypervisor's own data the guest tries to overwrite.
    static let canaryValue: UInt64 = 0xC0DE_CAFE_0E12_0E12
    nonisolated(unsafe) static var hypervisorCanary = canaryValue
    /// ESR_EL1 the guest must see (Arm ARM D23.2.41 ESR_EL1): EC [31:26] =
    /// 0x25 (data abort taken without a change of EL), IL [25] = 1, DFSC
    /// [5:0] = 0b010000 (synchronous external abort), WnR [6] for the write.
    static let injectedWriteESR: UInt64 = 0x9600_0050
    static let injectedReadESR: UInt64 = 0x9600_0010
    /// SPSR_EL2 for the first eret: EL1h, DAIF masked.
    static let spsrEL1h: UInt64 = 0x3C5
    /// Vector kind 8: synchronous from a lower EL in AArch64 (Boot/vectors.S).
    static let lowerELSynchronous: UInt64 = 8
    /// One page is populated on first touch; a write to a read-only page is skipped.
    static let faultPolicy = Stage2FaultPolicy(populatingOnDemand: demandIPA.frame, count: 1)

    enum Hypercall {
        static let ping: UInt64 = 1
        static let report: UInt64 = 2
        static let abortSeen: UInt64 = 3
        static let done: UInt64 = 0xFF
    }

    /// The guest's P2M and its lock (taken to build it and by the stage-2
    /// fault handler), in one allocation: a static lock is initialised lazily,
    /// through code of its own.
    struct GuestP2M: ~Copyable {
        var table: PlainBoardP2M
        let lock = P2MLock()
    }
    nonisolated(unsafe) static var p2m: UnsafeMutablePointer<GuestP2M>?
    nonisolated(unsafe) static var allocator: UnsafeMutablePointer<FrameAllocator>?
    /// The first reports, kept for the checks in `done`; later ones are only
    /// counted. A guest decides how often it calls, so nothing here may grow
    /// with it (a heap array did, and 32,768 calls exhausted the bump heap).
    /// Eight words, statically zero (a FixedList static is initialised
    /// lazily, through code of its own); `reportCount` says how many hold one.
    nonisolated(unsafe) static var reports: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (0, 0, 0, 0, 0, 0, 0, 0)
    static let reportsKept: UInt64 = 8
    /// `reports` as words, for the report hypercall and `reported` alike (one
    /// address taken, not a closure over the tuple at each).
    static var reportSlots: UnsafeMutablePointer<UInt64> {
        withUnsafeMutablePointer(to: &reports) { UnsafeMutableRawPointer($0).assumingMemoryBound(to: UInt64.self) }
    }
    nonisolated(unsafe) static var reportCount: UInt64 = 0
    /// Extra report calls the guest makes before `done` (`hv.selftest=report-flood`).
    static let floodReports: UInt64 = 32_768
    static var flood: Bool { BootEnvironment.option(BootEnvironment.Option.reportFlood) }
    nonisolated(unsafe) static var permissionFaults = 0
    nonisolated(unsafe) static var translationFaults = 0
    nonisolated(unsafe) static var unexpected = 0
    /// The injection the guest's vector has yet to report (one at a time).
    nonisolated(unsafe) static var pendingInjection: ExceptionInjection?
    /// ESR_EL1 and FAR_EL1 as the guest's vector read them, for the first two
    /// injected aborts (`abortCount` says which were seen: plain words, not
    /// Optionals, whose unwrapping was code at every use).
    nonisolated(unsafe) static var firstAbortESR: UInt64 = 0
    nonisolated(unsafe) static var firstAbortFAR: UInt64 = 0
    nonisolated(unsafe) static var secondAbortESR: UInt64 = 0
    nonisolated(unsafe) static var secondAbortFAR: UInt64 = 0
    nonisolated(unsafe) static var abortCount = 0
    /// More injections than the guest's program asks for mean it is stuck
    /// faulting (an instruction abort its vector steps past into the next
    /// bad address): reported instead of looping.
    static let maximumInjectedAborts = 8
    nonisolated(unsafe) static var readOnlyFrame = MFN(0)
    nonisolated(unsafe) static var readWriteFrame = MFN(0)
    nonisolated(unsafe) static var savedHCR: UInt64 = 0
    /// Boot/guest.S puts this in SP_EL0 first and hands SP_EL0 back with `done`.
    static let spEL0Marker: UInt64 = 0x5E0E_1000
    /// At the ping: SP_EL0 held this CPU's exception stack, the frame the guest's value.
    nonisolated(unsafe) static var spEL0Switched = false
    /// SMCs the guest made (trapped, decided by HostExits with `IsolatedGuestPSCI`).
    nonisolated(unsafe) static var firmwareCalls = 0
    static let psciAffinityInfo: UInt64 = 0xC400_0004     // AFFINITY_INFO, SMC64 (DEN0022 5.1.8)
    static let psciAffinityOn: UInt64 = 0
    static let psciAffinityOnPending: UInt64 = 2
    /// HCR_EL2 while the guest runs. TSC: the guest's SMCs come here (firmwareCall), never to the firmware.
    static var guestHCR: UInt64 { savedHCR | Stage2Walker.hcrVM | Stage2Walker.hcrRW | HostEL2Registers.hcrTSC }

    static func run(cpu: CPUIDRegisters, frames: inout FrameAllocator) -> Never {
        let code = PhysAddr(arch_guest_start()).frame
        // The frames in locals for the set-up below (the statics are for
        // `done`): each use of a static was a reload after every store.
        let readWrite: MFN
        let readOnly: MFN
        do throws(FrameAllocatorError) {
            readWrite = try frames.allocate()
            readOnly = try frames.allocate()
        } catch {
            Checks.expect(false, "frames for the guest")
            finish()
        }
        readWriteFrame = readWrite
        readOnlyFrame = readOnly
        let memory = IdentityMemory()
        memory.zeroFrame(readWrite)
        memory.zeroFrame(readOnly)
        // Boot/guest.S writes to the address in this word: the hypervisor's own memory.
        memory.store64(readWrite.address.adding(hypervisorAddressOffset), canaryAddress)
        memory.store64(readWrite.address.adding(jumpOffset), BootEnvironment.option(BootEnvironment.Option.guestFetchAbort) ? unmappedIPA.raw : 0)
        memory.store64(readOnly.address, readOnlyMarker)
        // Boot/guest.S reads how many extra reports to make from this word.
        memory.store64(readWrite.address.adding(floodCountOffset), flood ? floodReports : 0)
        memory.store64(readWrite.address.adding(semihostingFlagOffset), BootEnvironment.option(BootEnvironment.Option.guestSemihosting) ? 1 : 0)
        // The guest runs with its caches off: what was just written sits in
        // this CPU's cache until cleaned to the point of coherency.
        savedHCR = arch_read_hcr_el2()
        var cache = BoardCache()
        GuestFrameCoherence(hcr: guestHCR).prepareForGuest(readWrite, cache: &cache)
        GuestFrameCoherence(hcr: guestHCR).prepareForGuest(readOnly, cache: &cache)

        let pool: FramePool
        do throws(FrameAllocatorError) { pool = try FramePool(frames: 32, from: &frames) } catch {
            Checks.expect(false, "table pages for the guest's P2M")
            finish()
        }
        let guest = heapAllocate(GuestP2M.self)
        do throws(P2MError) {
            guest.initialize(to: GuestP2M(table: try PlainBoardP2M(
                configuration: P2MConfiguration(vmid: vmid, cpu: cpu), pool: pool)))
        } catch {
            Checks.expect(false, "the guest's P2M")
            finish()
        }
        let held = guest.pointee.lock.acquire()
        var batch = BoardBatch.make()
        var mapped = true
        do throws(P2MError) {
            try guest.pointee.table.map(codeIPA.frame, to: code, count: 1, as: .ramRO, flushing: &batch, holding: held)
            try guest.pointee.table.map(readWriteIPA.frame, to: readWrite, count: 1, as: .ramRW,
                                        flushing: &batch, holding: held)
            try guest.pointee.table.map(readOnlyIPA.frame, to: readOnly, count: 1, as: .ramRO,
                                        flushing: &batch, holding: held)
        } catch { mapped = false }
        guest.pointee.table.commitCPU(&batch, holding: held)
        guest.pointee.lock.release(held)
        Checks.expect(mapped, "guest P2M: code (read-only), a read-write page and a read-only page")
        p2m = guest
        let kept = heapAllocate(FrameAllocator.self)
        kept.initialize(to: frames)
        allocator = kept

        arch_write_sctlr_el1(Stage2Walker.sctlrEL1Off)
        var entryRegisters = BoardEntryRegisters()
        LowerELEntry.prepare(&entryRegisters, vtcr: guest.pointee.table.vtcr, vttbr: guest.pointee.table.vttbr,
                             hcr: guestHCR)
        Console.say("guest: entering EL1 at IPA %x (code frame %x) under VMID 3\n", codeIPA.raw, code.address.raw)
        Power.lowerELEntered = true
        hv_guest_enter(codeIPA.raw, spsrEL1h)
    }

    /// Called by `hv_exception` for every exception; true when it was the
    /// guest's and has been served (the frame then returns to the guest).
    static func handle(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) -> Bool {
        guard p2m != nil, kind == lowerELSynchronous else { return false }
        let esr = ExceptionSyndrome(raw: frame[ExceptionFrame.esr])
        switch esr.exceptionClass {
        case .hvc64:
            hypercall(frame)
            return true
        case .smc64:
            return firmwareCall(frame, esr)
        case .dataAbortLowerEL, .instructionAbortLowerEL:
            guard let abort = Stage2Abort(syndrome: esr, hpfar: arch_read_hpfar_el2(),
                                          far: frame[ExceptionFrame.far]) else { return false }
            return apply(faultPolicy.action(for: abort, elr: frame[ExceptionFrame.elr]), abort, frame)
        default:
            return false
        }
    }

    @_transparent
    private static func hypercall(_ frame: UnsafeMutablePointer<UInt64>) {
        switch frame[0] {
        case Hypercall.ping:
            Console.line("guest: hypercall ping")
            spEL0Switched = arch_read_sp_el0() == EL2Protection.cpuStacks?.exceptionStackTop(cpu: 0)
                && frame[ExceptionFrame.spEL0] == spEL0Marker
            frame[0] = pingAnswer
        case Hypercall.report:
            if reportCount < reportsKept {
                reportSlots[Int(reportCount)] = frame[1]
                Console.say("guest: hypercall report %x\n", frame[1])
            }
            reportCount &+= 1
            frame[0] = 0
        case Hypercall.abortSeen:
            abortSeen(frame)
        case Hypercall.done:
            done(spEL0: frame[1])
        default:
            unexpected += 1
            frame[0] = UInt64.max   // unknown call: an error code, the guest goes on
        }
    }

    /// A trapped SMC: the host's SMCCC path (HostExits) with a PSCI policy
    /// that gives this guest no power over CPUs or the machine.
    @_transparent
    private static func firmwareCall(_ frame: UnsafeMutablePointer<UInt64>, _ esr: ExceptionSyndrome) -> Bool {
        let function = frame[0]
        let exit = HostExit(syndrome: esr, elr: frame[ExceptionFrame.elr], spsr: frame[ExceptionFrame.spsr])
        var registers = SavedRegisters(frame: frame)
        var policy = IsolatedGuestPSCI()
        guard let outcome = HostExitHandler.firmwareCall(exit, cpu: 0, registers: &registers, policy: &policy),
              case .resume(let pc) = outcome.decision else { return false }
        Console.say("guest: SMC function %x trapped (HCR_EL2.TSC), answered %x at EL2; the firmware never saw it\n",
                    function, frame[0])
        firmwareCalls += 1
        frame[ExceptionFrame.elr] = pc
        return true
    }

    /// Carries out what the policy decided; false sends the abort on as unexpected.
    @_transparent
    private static func apply(_ action: Stage2FaultAction, _ abort: Stage2Abort,
                              _ frame: UnsafeMutablePointer<UInt64>) -> Bool {
        switch action {
        case .skipInstruction(let next):
            // HPFAR_EL2 is UNKNOWN for this fault; FAR_EL2 is the VA, which is the IPA (EL1's stage 1 is off).
            Console.say("guest: stage-2 permission fault, write to FAR_EL2 %x refused and skipped\n",
                        abort.virtualAddress ?? 0)
            permissionFaults += 1
            frame[ExceptionFrame.elr] = next
            return true
        case .populate(let gfn):
            return populate(gfn)
        case .injectAbort:
            // A second abort before the guest's vector reported the first one is not this guest's program.
            guard pendingInjection == nil, abortCount < maximumInjectedAborts else { return false }
            let kind: ExceptionInjection.Kind = abort.access == .instructionFetch
                ? .instructionAbort : .dataAbort(write: abort.access == .write)
            let injection = ExceptionInjection(kind, spsr: frame[ExceptionFrame.spsr], elr: frame[ExceptionFrame.elr],
                                               far: frame[ExceptionFrame.far], sctlrEL1: arch_read_sctlr_el1())
            Console.say("guest: stage-2 abort at FAR_EL2 %x refused: external abort injected, ESR_EL1 %x\n",
                        frame[ExceptionFrame.far], injection.esr)
            injection.apply(to: frame)
            pendingInjection = injection
            return true
        }
    }

    /// The guest's EL1 vector says what it took: it must be the abort just
    /// injected, at the vector the injection chose. Anything else (an
    /// exception of the guest's own, such as an UNDEFINED instruction) is not
    /// this guest's program and ends the run as unexpected.
    @_transparent
    private static func abortSeen(_ frame: UnsafeMutablePointer<UInt64>) {
        let esr = frame[1], far = frame[2], elr = frame[3], vector = frame[4]
        guard let injected = pendingInjection, esr == injected.esr, far == injected.far,
              elr == injected.returnAddress, vector == injected.vectorOffset else {
            Console.say("guest: its EL1 vector took an exception the hypervisor did not inject: ESR_EL1 %x ELR_EL1 %x\n",
                        esr, elr)
            reportUnexpected(frame, lowerELSynchronous)
        }
        pendingInjection = nil
        if abortCount == 0 {
            firstAbortESR = esr
            firstAbortFAR = far
        } else if abortCount == 1 {
            secondAbortESR = esr
            secondAbortFAR = far
        }
        abortCount += 1
        Console.say("guest: its EL1 vector took the injected abort: ESR_EL1 %x FAR_EL1 %x, and steps over the access\n",
                    esr, far)
        frame[0] = 0
    }

    static var canaryAddress: UInt64 {
        withUnsafeMutablePointer(to: &hypervisorCanary) { UInt64(UInt(bitPattern: $0)) }
    }

    @_transparent
    private static func populate(_ gfn: GFN) -> Bool {
        guard let p2m, let allocator, let page = try? allocator.pointee.allocate() else { return false }
        let memory = IdentityMemory()
        memory.zeroFrame(page)
        memory.store64(page.address, demandMarker)
        var cache = BoardCache()
        GuestFrameCoherence(hcr: guestHCR).prepareForGuest(page, cache: &cache)
        let held = p2m.pointee.lock.acquire()
        var batch = BoardBatch.make()
        var ok = true
        do throws(P2MError) {
            try p2m.pointee.table.map(gfn, to: page, count: 1, as: .ramRW, flushing: &batch, holding: held)
        } catch { ok = false }
        p2m.pointee.table.commitCPU(&batch, holding: held)
        // Ended here: left to the end of the function, it was moved (a
        // 240-byte memcpy) to be destroyed after the print.
        _ = consume batch
        p2m.pointee.lock.release(held)
        Console.say("guest: stage-2 translation fault at IPA %x, populated with frame %x, retrying\n",
                    gfn.address.raw, page.address.raw)
        translationFaults += 1
        return ok
    }

    /// Whether the guest made an `index`th report (one of those kept) and it
    /// was `value`: one read and one comparison for every check.
    @inline(never)
    private static func reported(_ index: Int, _ value: UInt64) -> Bool {
        guard index < Int(min(reportCount, reportsKept)) else { return false }
        return reportSlots[index] == value
    }

    @_transparent
    private static func done(spEL0: UInt64) -> Never {
        arch_write_hcr_el2(savedHCR)
        arch_isb()
        let notSupported = PSCIReturn.x0(PSCIReturn.notSupported)
        Checks.expect(firmwareCalls == 2 && reported(4, notSupported) && reported(5, notSupported),
                      "guest: its SMCs to PSCI CPU_ON and SYSTEM_OFF trapped to EL2 and answered NOT_SUPPORTED there")
        // With a second CPU, the firmware itself says CPU_ON never reached it.
        let affinity = Power.firmwareCall(psciAffinityInfo, 1) ?? UInt64.max
        Console.say("guest: the firmware's AFFINITY_INFO for MPIDR 1 after the guest's CPU_ON: %x\n", affinity)
        Checks.expect(affinity != psciAffinityOn && affinity != psciAffinityOnPending,
                      "guest: the firmware did not start a CPU for the guest's CPU_ON")
        Checks.expect(spEL0Switched,
                      "guest: while EL2 served its exits, SP_EL0 held the hypervisor's exception stack and the frame the guest's value")
        Checks.expect(spEL0 == spEL0Marker, "guest: its SP_EL0 came back unchanged after every exit")
        let memory = IdentityMemory()
        Checks.expect(reported(0, pingAnswer), "guest: HVC ping answered through the hypercall path")
        Checks.expect(reported(1, writtenByGuest)
                      && memory.load64(readWriteFrame.address) == writtenByGuest,
                      "guest: a write to its read-write page lands on the frame the P2M maps")
        Checks.expect(permissionFaults == 1 && reported(2, readOnlyMarker)
                      && memory.load64(readOnlyFrame.address) == readOnlyMarker,
                      "guest: a write to a read-only page takes a stage-2 permission fault and changes nothing")
        let extra = flood ? floodReports : 0
        Checks.expect(translationFaults == 1 && reportCount == 6 + extra && reported(3, demandMarker),
                      "guest: a stage-2 translation fault is served by populating the page, and the access retried")
        let bothSeen = abortCount >= 2
        Checks.expect(abortCount == 2 && pendingInjection == nil
                      && firstAbortESR == injectedWriteESR && firstAbortFAR == canaryAddress
                      && hypervisorCanary == canaryValue,
                      "guest: its write to hypervisor memory came back as a synchronous external abort (ESR_EL1 EC 0x25, WnR) at that address, the memory unchanged")
        Checks.expect(bothSeen && secondAbortESR == injectedReadESR && secondAbortFAR == unmappedIPA.raw,
                      "guest: its read of an unmapped IPA came back as a synchronous external abort (ESR_EL1 EC 0x25) at that IPA, and it ran on")
        Checks.expect(unexpected == 0, "guest: no unexpected hypercall or fault")
        if flood {
            Checks.expect(reportCount == 6 + floodReports && reportCount >= reportsKept,
                          "guest: 32768 more report hypercalls counted in fixed storage, nothing allocated")
        }
        if BootEnvironment.option(BootEnvironment.Option.lateSemihostingProbe) {
            Console.line("selftest: asking for the unasked semihosting exit after the guest has run")
            Power.probeSemihosting = true
        }
        finish()
    }
}
