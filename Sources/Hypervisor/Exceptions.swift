import AArch64
import ArchC

/// Layout of the frame Boot/vectors.S saves (in 64-bit words).
enum ExceptionFrame {
    static let elr = 31
    static let spsr = 32
    static let esr = 33
    static let far = 34
    /// The lower EL's SP_EL0, kept here while EL2 serves its exit (Boot/vectors.S).
    static let spEL0 = 35
}

/// Vector kinds: 4 * group + type (Boot/vectors.S). Names as entries of
/// NUL-separated literals (`Console.putEntry`), not static arrays: nothing to
/// allocate or initialise on the way to a report, and no switch of literals.
enum ExceptionKind {
    /// By `kind & 3`.
    static let typeNames: StaticString = "synchronous\0IRQ\0FIQ\0SError"
    /// By `kind >> 2 & 3`.
    static let groupNames: StaticString = "EL2 with SP_EL0\0EL2\0lower EL (AArch64)\0lower EL (AArch32)"
}

/// Every exception the hypervisor does not expect ends here: it says what
/// happened, with ESR_EL2 / ELR_EL2 / FAR_EL2 decoded, and powers off (a
/// silent hang is the one outcome `make test` cannot tell from slowness).
@c(hv_exception)
func hvException(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) {
    // The Linux host's exits come from another CPU's EL1 as often as from
    // this one's: they are decided per CPU (LinuxHost.exit), outside the
    // single-CPU latch below, which guards the board checks' own handler.
    if LinuxHost.active { LinuxHost.exit(frame, kind); return }
    ExceptionLatch.enter(frame, kind)
    if Probe.handle(frame, kind) || GuestScenario.handle(frame, kind) {
        ExceptionLatch.leave()
        return
    }
    reportUnexpected(frame, kind)
}

/// Says what happened and powers off (the end of every unexpected exception).
func reportUnexpected(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) -> Never {
    Power.claimTheEnd()
    let esr = ExceptionSyndrome(raw: frame[ExceptionFrame.esr])
    Console.line("")
    Console.put("exception: unexpected ")
    Console.putEntry(ExceptionKind.typeNames.utf8Start, Int(kind & 3))
    Console.put(" from ")
    Console.putEntry(ExceptionKind.groupNames.utf8Start, Int(kind >> 2 & 3))
    Console.put(": ")
    Console.lineComputed(esr.exceptionClass.name)
    Console.say("  ESR_EL2 %x  ELR_EL2 %x  FAR_EL2 %x  SPSR_EL2 %x\n",
                esr.raw, frame[ExceptionFrame.elr], frame[ExceptionFrame.far], frame[ExceptionFrame.spsr])
    if kind >> 2 < 2 { TrapSite.report(elr: frame[ExceptionFrame.elr], isTrap: esr.exceptionClass.isBRK64) }
    let far = frame[ExceptionFrame.far]
    if EL2Protection.isStackGuard(far) {
        Console.line("  the EL2 stack overflowed into its guard page")
    } else if kind >> 2 < 2, let stacks = EL2Protection.cpuStacks, let guardPage = stacks.guardPage(containing: far) {
        switch guardPage {
        case .stack(let cpu):
            Console.say("  CPU %d's EL2 stack overflowed into its guard page\n", UInt64(cpu))
        case .exceptionStack(let cpu):
            Console.say("  CPU %d's EL2 exception stack overflowed into its guard page\n", UInt64(cpu))
        }
    }
    Checks.failed += 1
    Checks.summary()
    Power.exit(code: ExitCode.exception)
}

/// Names the function an exception of EL2 itself hit, from the image's
/// address -> name table (AArch64's SymbolTable): "trap at <ELR> (image
/// offset <o>) in <function>+<offset>" for a BRK (a Swift trap: overflow,
/// precondition, force-unwrap), "fault at" otherwise. The image offset is
/// what `llvm-symbolizer --obj=build/hypervisor.elf` takes.
enum TrapSite {
    static func report(elr: UInt64, isTrap: Bool) {
        let start = arch_image_start()
        guard elr >= start, elr < arch_text_end() else { return }
        let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(arch_symbols())),
                                           count: Int(arch_symbols_end() - arch_symbols()))
        Console.put(isTrap ? "  trap at " : "  fault at ")
        Console.say("%x (image offset %x)", elr, elr - start)
        guard let table = try? SymbolTable(bytes), let symbol = table.lookup(elr - start) else {
            Console.line(" in no function the image's symbol table lists")
            return
        }
        Console.put(" in ")
        Console.bytes(table.name(of: symbol))
        Console.say("+%x\n", elr - start - UInt64(symbol.start))
    }
}

/// Exit statuses of the image (semihosting), as `make run` returns them.
enum ExitCode {
    static let passed: UInt64 = 0
    static let checksFailed: UInt64 = 1
    static let exception: UInt64 = 2
    static let wrongExceptionLevel: UInt64 = 3
    static let deviceTreeRejected: UInt64 = 4
}
