import AArch64
import ArchC

/// Whether a device the DTB describes answers at all. A machine whose DTB
/// names a device it does not have (a `-dtb` from another machine, a board
/// variant without the part) makes a load from its registers a synchronous
/// external abort; the probe turns that into `false` so the checks that need
/// the device are reported as skipped instead of ending the run.
///
/// Only a synchronous abort can be caught this way: hardware that reports a
/// missing slave as an SError (asynchronous) still ends in the exception report.
enum Probe {
    /// One 32-bit read of `address`; `nil` if it aborted.
    static func read32(_ address: UInt64) -> UInt32? {
        var value: UInt32 = 0
        return hv_probe_read32(address, &value) == 1 ? value : nil
    }

    /// Whether a semihosting call was served: `false` when `hlt #0xf000` was
    /// an undefined instruction (no semihosting there), which the handler
    /// below turns into a return. Only for EL2, before any lower EL has run.
    static func semihosting(_ op: UInt64, _ parameter: UInt64) -> Bool {
        hv_try_semihosting(op, parameter) == 1
    }

    /// Called first by the exception handler: a data abort on the probe's own
    /// load, or an undefined instruction (EC 0x00, "unknown reason") on the
    /// semihosting probe's HLT, resumes in its caller with "no answer"
    /// (x0 = 0, return via x30).
    static func handle(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) -> Bool {
        let synchronousCurrentEL: UInt64 = 4
        guard kind == synchronousCurrentEL else { return false }
        let esr = ExceptionSyndrome(raw: frame[ExceptionFrame.esr])
        switch frame[ExceptionFrame.elr] {
        case arch_probe_read32_load(): guard case .dataAbortSameEL = esr.exceptionClass else { return false }
        case arch_try_semihosting_hlt(): guard case .unknown = esr.exceptionClass else { return false }
        default: return false
        }
        frame[0] = 0
        frame[ExceptionFrame.elr] = frame[30]
        return true
    }
}
