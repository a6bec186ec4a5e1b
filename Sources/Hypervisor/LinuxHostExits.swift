import AArch64
import Platform
import SMMUv3
import ArchC

/// Exits from the host, on the CPU that took them. The board reads the
/// syndrome and registers, the portable decision (HostExits) says what to do,
/// and the board applies it. Nothing reachable from here allocates, and no
/// arithmetic on a host-chosen value can trap.
extension LinuxHost {
    /// Vector kind 8: synchronous from a lower EL in AArch64 (Boot/vectors.S).
    static let lowerELSynchronous: UInt64 = 8

    /// What the closing report counts, one counter each.
    enum Exit: Int, CaseIterable {
        case psci, smcccOther, stage2Abort, controlDevice
        var name: StaticString {
            switch self {
            case .psci: "PSCI calls"
            case .smcccOther: "other SMC/HVC calls"
            case .stage2Abort: "stage-2 aborts (external abort injected)"
            case .controlDevice: "control-device accesses"
            }
        }
    }
    nonisolated(unsafe) static var exitCounts: UnsafeMutablePointer<UInt64>?

    /// The first page of the carve-out holds a pattern the host's devices try
    /// to overwrite; the closing report checks it survived.
    static let canaryWord: UInt64 = 0xCA4A_4D1E_5EED_F00D

    static func prepareExits() {
        let counts = UnsafeMutablePointer<UInt64>.allocate(capacity: Exit.allCases.count)
        counts.initialize(repeating: 0, count: Exit.allCases.count)
        exitCounts = counts
        let words = UnsafeMutablePointer<UInt64>(bitPattern: UInt(canaryPage.base.raw))!
        for i in 0..<Int(PageSize.bytes4K / 8) { words[i] = canaryWord ^ UInt64(i) }
    }

    static func count(_ exit: Exit) {
        guard let exitCounts else { return }
        _ = arch_atomic_add64(UInt64(UInt(bitPattern: exitCounts + exit.rawValue)), 1)
    }

    static func exit(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) {
        guard kind == lowerELSynchronous else { reportUnexpected(frame, kind) }
        reportUnexpected(frame, kind)
    }

    /// The host asked for SYSTEM_OFF or SYSTEM_RESET: the hypervisor adds what
    /// only it can see, then ends the run with one verdict.
    static func endRun(_ reason: StaticString) -> Never {
        Console.put("host: the host asked for ")
        Console.line(reason)
        if let exitCounts {
            for exit in Exit.allCases {
                Console.put("host: exits: ")
                Console.decimal(exitCounts[exit.rawValue])
                Console.put(" ")
                Console.line(exit.name)
            }
        }
        var intact = true
        let words = UnsafeMutablePointer<UInt64>(bitPattern: UInt(canaryPage.base.raw))!
        for i in 0..<Int(PageSize.bytes4K / 8) where words[i] != canaryWord ^ UInt64(i) { intact = false }
        Checks.expect(intact, "host: the hypervisor's canary page is unchanged")
        if let smmu = smmuHandle {
            var faults = 0
            var atCanary = 0
            var others = 0
            let drained = smmu.smmu.drainEvents { event in
                guard event.kind == .translation else { others += 1; return }
                faults += 1
                if let sid = eduStreamID, event.stream.raw == sid,
                   event.inputAddress.raw & ~PageSize.offsetMask4K == canaryPage.base.raw { atCanary += 1 }
            }
            Console.put("host: SMMU events drained: ")
            Console.decimal(drained.count)
            Console.put(", F_TRANSLATION ")
            Console.decimal(faults)
            Console.put(", at the canary from edu's StreamID ")
            Console.decimal(atCanary)
            Console.line("")
            if eduStreamID != nil {
                Checks.expect(atCanary > 0, "host: edu's DMA at hypervisor memory faulted with F_TRANSLATION (its StreamID, the canary's address)")
            }
            Checks.expect(smmu.smmu.checkGlobalErrors().isClean, "host: no SMMU global errors")
        }
        Console.put("host: ")
        Console.decimal(Checks.passed)
        Console.put(" passed, ")
        Console.decimal(Checks.failed)
        Console.line(" failed")
        Power.exit(code: Checks.failed == 0 ? ExitCode.passed : ExitCode.checksFailed)
    }
}
