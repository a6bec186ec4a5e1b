import AArch64
import ArchC

/// Re-entrancy latch of `hv_exception`. The handler runs with exceptions
/// unmasked only in the sense that synchronous ones cannot be masked: a fault
/// inside it (a bad pointer, an SMC that EL3 does not implement, a Swift trap
/// in a printer) re-enters the vectors on the same stack. Without the latch
/// each nesting pushes another frame until the stack has run through
/// whatever lies below it. With it, the first nested entry is reported in
/// one line and powers off; a fault while doing that parks the CPU.
enum ExceptionLatch {
    nonisolated(unsafe) static var depth = 0
    /// `hv.selftest=nested-exception`: the handler itself loads from outside the EL2 map.
    nonisolated(unsafe) static var faultInsideHandler = false

    /// Called first thing in `hv_exception`; does not return when the
    /// handler was already running.
    static func enter(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) {
        depth += 1
        if depth == 1 {
            if faultInsideHandler {
                Console.line("selftest: the exception handler loads from 0x20000000000")
                Console.hex(UnsafePointer<UInt64>(bitPattern: UInt(0x200_0000_0000))!.pointee)
            }
            return
        }
        if depth > 2 {
            // Reporting the nested fault faulted again (the console or the
            // power-off path itself is what fails): nothing is left to try.
            while true { arch_wfe() }
        }
        Console.line("")
        Console.say("exception: fault inside the EL2 exception handler: ESR_EL2 %x  ELR_EL2 %x  FAR_EL2 %x  kind %d; stopping\n",
                    frame[ExceptionFrame.esr], frame[ExceptionFrame.elr], frame[ExceptionFrame.far], kind)
        // Which function of the handler faulted (a fault in this lookup parks, above).
        TrapSite.report(elr: frame[ExceptionFrame.elr],
                        isTrap: ExceptionSyndrome(raw: frame[ExceptionFrame.esr]).exceptionClass.isBRK64)
        Power.exit(code: ExitCode.exception)
    }

    /// The handler served the exception and is about to return through eret.
    static func leave() { depth -= 1 }
}

extension ExceptionClass {
    /// A BRK from AArch64 (a Swift trap). Matched by pattern, as every
    /// exception class on the board is: the enum's derived `==` (it has a
    /// payload case) was a 372-byte function in the image.
    var isBRK64: Bool {
        if case .brk64 = self { return true }
        return false
    }
}
