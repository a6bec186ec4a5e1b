import ArchC
import HostExits

/// How the image ends: a semihosting exit code where the loader said
/// semihosting is there (`hv.exit=semihosting` in /chosen/bootargs: QEMU's
/// `-append`), otherwise PSCI SYSTEM_OFF through the conduit the DTB names.
/// Semihosting is never attempted unasked: on a board without a debugger
/// `hlt #0xf000` is an undefined instruction.
enum Power {
    enum Conduit { case smc, hvc, none }
    nonisolated(unsafe) static var conduit: Conduit = .none
    nonisolated(unsafe) static var semihostingAllowed = false

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

    static func exit(code: UInt64) -> Never {
        if semihostingAllowed {
            var block: (UInt64, UInt64) = (applicationExit, code)
            _ = withUnsafeMutablePointer(to: &block) {
                arch_semihosting(semihostingExit, UInt64(UInt(bitPattern: $0)))
            }
        }
        switch conduit {
        case .smc: _ = arch_smc_call(psciSystemOff, 0, 0, 0)
        case .hvc: _ = arch_hvc_call(psciSystemOff, 0, 0, 0)
        case .none: break
        }
        Console.line("power: no way to power off; parking this CPU")
        while true { arch_wfe() }
    }
}
