import ArchC
import HostExits

/// How the image ends: a semihosting exit code where the loader said
/// semihosting is there (`hv.exit=semihosting` in /chosen/bootargs: QEMU's
/// `-append`), otherwise PSCI SYSTEM_OFF through the conduit the DTB names.
/// Semihosting is otherwise attempted unasked only where the exit status is
/// the one report left (`probeSemihosting`: a device tree rejected with no
/// console to print on, so no bootargs could say it either), and then only
/// guarded: on a board without a debugger `hlt #0xf000` is an undefined
/// instruction, which `Probe` turns into "not there"; then PSCI follows.
enum Power {
    enum Conduit { case smc, hvc, none }
    nonisolated(unsafe) static var conduit: Conduit = .none
    nonisolated(unsafe) static var semihostingAllowed = false
    /// Try the guarded semihosting exit once even though nothing asked for it.
    nonisolated(unsafe) static var probeSemihosting = false
    /// Set before the first eret to EL1: from then on a semihosting exit
    /// that nothing asked for is never tried (with -semihosting on, a guest
    /// can reach it too, so the status would prove nothing), and the probe's
    /// HLT must not run at all once the exception vectors serve a guest.
    nonisolated(unsafe) static var lowerELEntered = false

    static let psciSystemOff: UInt64 = 0x8400_0008
    static let semihostingExit: UInt64 = 0x20          // SYS_EXIT_EXTENDED
    static let applicationExit: UInt64 = 0x20026      // ADP_Stopped_ApplicationExit

    /// Only one CPU reports the end of the run and powers off (the host's
    /// CPUs can end it together): see `RunEndLatch`.
    static let end = RunEndLatch()

    /// Called first by every path that ends the run with a report: the
    /// first CPU goes on, any other one parks here for good, and the first
    /// one arriving again (its report faulted) powers off at once.
    static func claimTheEnd() {
        switch end.claim(cpu: arch_read_tpidr_el2() & 0x7) {
        case .first: return
        case .again: exit(code: ExitCode.exception)
        case .taken: while true { arch_wfe() }
        }
    }

    /// An SMCCC call with one argument through the conduit the DTB names:
    /// x0 as it came back, nil without a conduit. One copy of the choice for
    /// the power-off and the guest scenario's AFFINITY_INFO.
    static func firmwareCall(_ function: UInt64, _ argument: UInt64) -> UInt64? {
        switch conduit {
        case .smc: return arch_smc_call(function, argument, 0, 0)
        case .hvc: return arch_hvc_call(function, argument, 0, 0)
        case .none: return nil
        }
    }

    /// SYS_EXIT_EXTENDED's parameter block (reason, status), in static
    /// memory: its address is taken once, not in a closure on each path.
    nonisolated(unsafe) static var exitBlock: (UInt64, UInt64) = (0, 0)

    static func exit(code: UInt64) -> Never {
        exitBlock = (applicationExit, code)
        let block = withUnsafeMutablePointer(to: &exitBlock) { UInt64(UInt(bitPattern: $0)) }
        if semihostingAllowed {
            _ = arch_semihosting(semihostingExit, block)
        } else if probeSemihosting, !lowerELEntered, arch_read_currentel() >> 2 & 3 == 2 {
            probeSemihosting = false   // once: a fault on the way to PSCI must not try it again
            _ = Probe.semihosting(semihostingExit, block)
            Console.line("power: no semihosting here (the HLT was an undefined instruction); PSCI SYSTEM_OFF next")
        }
        _ = firmwareCall(psciSystemOff, 0)
        Console.line("power: no way to power off; parking this CPU")
        while true { arch_wfe() }
    }
}
