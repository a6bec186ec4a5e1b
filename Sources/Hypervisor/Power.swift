import ArchC

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
