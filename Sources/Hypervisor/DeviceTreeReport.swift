import AArch64
import Platform
import ArchC

/// A device tree the image cannot use ends here, never in a silent park:
/// the reason goes to the console when the tree still names one (the
/// console and PSCI are read on their own for that), and always into the
/// exit status (`ExitCode.deviceTreeRejected`) through semihosting or PSCI.
enum DeviceTreeReport {
    /// `tree` is nil when the blob itself did not parse: then nothing names a
    /// console, and the only way to say anything is the exit status: a
    /// guarded semihosting exit (`Power.probeSemihosting`), then power-off. A
    /// hypervisor entered at EL2 reaches PSCI by SMC (an HVC would trap to
    /// itself), so that is tried; where EL3 does not implement SMC, the
    /// exception latch in `hv_exception` stops the resulting fault.
    static func reject(_ error: FDTError, tree: FlattenedDeviceTree?) -> Never {
        if let tree {
            let early = PlatformDescription.earlyServices(tree)
            if case .none = Console.device { Console.select(early.console) }
            if let psci = early.psci { Power.conduit = psci.conduit == .smc ? .smc : .hvc }
            Power.semihostingAllowed = BootEnvironment.present(in: tree) & BootEnvironment.Option.semihosting != 0
        } else if Power.conduit == .none {
            Power.conduit = .smc
        }
        // Nothing to print on: the exit status is the report (README,
        // "Hostile device trees"), tried through semihosting before PSCI.
        if case .none = Console.device { Power.probeSemihosting = true }
        let report = error.report
        Console.put("dtb: rejected: ")
        Console.putComputed(report.reason)
        if let node = report.node, let tree {
            Console.put(" (node ")
            printPath(tree, node)
            Console.put(")")
        }
        if let property = report.property {
            Console.put(" (property ")
            Console.putComputed(property)
            Console.put(")")
        } else if let token = report.propertyAt, let tree, let name = tree.propertyName(atToken: token) {
            Console.put(" (property ")
            Console.bytes(name)
            Console.put(")")
        }
        if let offset = report.offset {
            Console.say(" at blob offset %x", UInt64(offset))
        }
        if let value = report.value {
            Console.say(": %x", value)
        }
        Console.line("")
        Console.line("dtb: the image cannot run on this device tree; powering off")
        Power.exit(code: ExitCode.deviceTreeRejected)
    }

    /// x0 held no device tree at all: no console, no bootargs, no conduit.
    /// Powering off by SMC is the one thing left that can say "stopped".
    static func noDeviceTree() -> Never {
        if Power.conduit == .none { Power.conduit = .smc }
        Power.probeSemihosting = true
        Power.exit(code: ExitCode.deviceTreeRejected)
    }

    /// For a check made after boot: the blob was validated once and is re-read.
    @_transparent
    static func reject(_ error: FDTError, blob: MemoryRange) -> Never {
        let pointer = UnsafeRawPointer(bitPattern: UInt(blob.base.raw))!
        reject(error, tree: try? FlattenedDeviceTree(blobAt: pointer, limit: Int(blob.size)))
    }

    @_transparent
    private static func printPath(_ tree: FlattenedDeviceTree, _ node: Int) {
        // One walk from the root per level, only when a rejection is printed.
        var depth = 1
        while let step = tree.ancestor(ofNodeAt: node, depth: depth) {
            Console.put("/")
            Console.bytes(tree.name(of: step))
            depth += 1
        }
        if depth == 1 { Console.put("/") }
    }
}
