import AArch64

/// Reads the registers of a device the DTB names but that may not be there.
/// On QEMU (and on most interconnects) a load from an address where nothing
/// answers is a synchronous external abort (ESR_EL2.EC 0x25, DFSC 0x10).
/// While a probe is armed, `hv_exception` hands such an abort here: it is
/// recorded, the load is skipped (its destination register keeps whatever it
/// held) and the probe goes on; the caller then discards what it read.
enum MMIOProbe {
    nonisolated(unsafe) static var armed = false
    nonisolated(unsafe) static var faulted = false

    /// Vector kind 4: synchronous, current EL with SP_ELx (Boot/vectors.S).
    static let currentELSynchronous: UInt64 = 4
    /// ESR_ELx.ISS.DFSC for a synchronous external abort, not on a table walk.
    static let externalAbort: UInt64 = 0x10
    static let dfscMask: UInt64 = 0x3F
    static let instructionBytes: UInt64 = 4

    /// Runs `body` with the probe armed; false when any load in it was not answered.
    static func answers(_ body: () -> Void) -> Bool {
        faulted = false
        armed = true
        body()
        armed = false
        return !faulted
    }

    /// Called by `hv_exception` first; true when the exception was a probe's
    /// unanswered load and has been stepped over.
    static func handle(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) -> Bool {
        guard armed, kind == currentELSynchronous else { return false }
        let esr = ExceptionSyndrome(raw: frame[ExceptionFrame.esr])
        guard esr.exceptionClass == .dataAbortSameEL, esr.raw & dfscMask == externalAbort else { return false }
        faulted = true
        frame[ExceptionFrame.elr] &+= instructionBytes
        return true
    }
}
