import AArch64
import Platform
import ArchC

/// What the image learns from the DTB before anything else: where the
/// console is, how to power off, and whether the loader offered semihosting.
struct BootEnvironment {
    /// A sanity bound on the header's totalsize. Not 2 MiB as Linux has it:
    /// QEMU pads a `-dtb` file it was given to a little over 2 MiB.
    static let maximumBlobSize = 64 << 20
    static let semihostingOption: StaticString = "hv.exit=semihosting"
    /// Makes the image take a data abort on purpose after the banner, so the
    /// boot test can see the EL2 vectors report it (ESR/ELR/FAR) and power off.
    static let exceptionSelfTestOption: StaticString = "hv.selftest=exception"
    nonisolated(unsafe) static var exceptionSelfTest = false
    /// The same abort, and a second one inside the handler: the latch must report it once and stop.
    static let nestedExceptionSelfTestOption: StaticString = "hv.selftest=nested-exception"
    /// A store to the image's `.text` right after W^X is applied: must fault.
    static let textWriteSelfTestOption: StaticString = "hv.selftest=write-text"
    nonisolated(unsafe) static var textWriteSelfTest = false
    /// A store to the image's `.rodata` right after W^X is applied: must fault.
    static let readOnlyDataWriteSelfTestOption: StaticString = "hv.selftest=write-rodata"
    nonisolated(unsafe) static var readOnlyDataWriteSelfTest = false
    /// A call into a `ret` stored on the heap: must fault.
    static let dataExecuteSelfTestOption: StaticString = "hv.selftest=exec-data"
    nonisolated(unsafe) static var dataExecuteSelfTest = false
    /// Unbounded recursion on the main stack: the guard page must catch it.
    static let stackOverflowSelfTestOption: StaticString = "hv.selftest=stack-overflow"
    nonisolated(unsafe) static var stackOverflowSelfTest = false
    /// The same on a second CPU, started through the hypervisor's CPU entry (`-smp 2`).
    static let secondaryStackOverflowSelfTestOption: StaticString = "hv.selftest=stack-overflow-cpu1"
    nonisolated(unsafe) static var secondaryStackOverflowSelfTest = false
    /// Linux host mode: the handler of the host's first SMCCC exit loads from
    /// outside the EL2 map, so EL2 faults while Linux's value is in SP_EL0.
    static let hostExitFaultSelfTestOption: StaticString = "hv.selftest=host-exit-fault"
    nonisolated(unsafe) static var hostExitFaultSelfTest = false
    /// An arithmetic overflow in Swift at EL2: the BRK must be reported with its function's name.
    static let swiftTrapSelfTestOption: StaticString = "hv.selftest=swift-trap"
    nonisolated(unsafe) static var swiftTrapSelfTest = false
    /// Powers off the way a device tree rejected with no console does (the
    /// guarded semihosting exit first), here with the console still there.
    static let semihostingProbeSelfTestOption: StaticString = "hv.selftest=semihosting-probe"
    nonisolated(unsafe) static var semihostingProbeSelfTest = false
    /// The same request at the end of the run, after the guest: must not be tried.
    static let lateSemihostingProbeSelfTestOption: StaticString = "hv.selftest=semihosting-probe-after-guest"
    nonisolated(unsafe) static var lateSemihostingProbeSelfTest = false
    /// The guest makes 32,768 extra report hypercalls.
    static let reportFloodOption: StaticString = "hv.selftest=report-flood"
    /// The guest calls semihosting SYS_EXIT with status 0 (`hlt #0xf000`) first.
    static let guestSemihostingOption: StaticString = "hv.selftest=guest-semihosting"
    /// The guest jumps to an IPA nothing maps and its vector keeps stepping on.
    static let guestFetchAbortOption: StaticString = "hv.selftest=guest-fetch-abort"

    let tree: FlattenedDeviceTree
    let platform: PlatformDescription
    let blob: MemoryRange

    /// Parses the DTB at `address` and sets up the console and power-off.
    /// A blob or description that does not parse is reported and ends the
    /// run (`DeviceTreeReport`); `nil` only when there is no blob at all.
    static func read(dtb address: UInt64) -> BootEnvironment? {
        guard address != 0, let pointer = UnsafeRawPointer(bitPattern: UInt(address)) else { return nil }
        let tree: FlattenedDeviceTree
        do throws(FDTError) {
            tree = try FlattenedDeviceTree(blobAt: pointer, limit: maximumBlobSize)
        } catch {
            DeviceTreeReport.reject(error, tree: nil)
        }
        let platform: PlatformDescription
        do throws(FDTError) {
            platform = try PlatformDescription(tree)
        } catch {
            DeviceTreeReport.reject(error, tree: tree)
        }
        Console.select(platform.console)
        if let psci = platform.psci { Power.conduit = psci.conduit == .smc ? .smc : .hvc }
        Power.semihostingAllowed = tree.bootArgumentsContain(semihostingOption)
        exceptionSelfTest = tree.bootArgumentsContain(exceptionSelfTestOption)
        if tree.bootArgumentsContain(nestedExceptionSelfTestOption) {
            exceptionSelfTest = true
            ExceptionLatch.faultInsideHandler = true
        }
        GuestScenario.flood = tree.bootArgumentsContain(reportFloodOption)
        textWriteSelfTest = tree.bootArgumentsContain(textWriteSelfTestOption)
        dataExecuteSelfTest = tree.bootArgumentsContain(dataExecuteSelfTestOption)
        readOnlyDataWriteSelfTest = tree.bootArgumentsContain(readOnlyDataWriteSelfTestOption)
        stackOverflowSelfTest = tree.bootArgumentsContain(stackOverflowSelfTestOption)
        swiftTrapSelfTest = tree.bootArgumentsContain(swiftTrapSelfTestOption)
        secondaryStackOverflowSelfTest = tree.bootArgumentsContain(secondaryStackOverflowSelfTestOption)
        hostExitFaultSelfTest = tree.bootArgumentsContain(hostExitFaultSelfTestOption)
        GuestScenario.semihostingExit = tree.bootArgumentsContain(guestSemihostingOption)
        GuestScenario.fetchAbort = tree.bootArgumentsContain(guestFetchAbortOption)
        semihostingProbeSelfTest = tree.bootArgumentsContain(semihostingProbeSelfTestOption)
        lateSemihostingProbeSelfTest = tree.bootArgumentsContain(lateSemihostingProbeSelfTestOption)
        guard let blob = MemoryRange(base: PhysAddr(address), size: UInt64(tree.header.totalSize)) else { return nil }
        return BootEnvironment(tree: tree, platform: platform, blob: blob)
    }
}
