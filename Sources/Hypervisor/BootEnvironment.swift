import AArch64
import Platform
import ArchC

/// What the image learns from the DTB before anything else: where the
/// console is, how to power off, and whether the loader offered semihosting.
struct BootEnvironment {
    /// A sanity bound on the header's totalsize. Not 2 MiB as Linux has it:
    /// QEMU pads a `-dtb` file it was given to a little over 2 MiB.
    static let maximumBlobSize = 64 << 20
    /// The words of `/chosen/bootargs` the image acts on, NUL-separated: the
    /// one at index i sets bit i of `options` (the `Option` masks, in the
    /// same order). One search of bootargs for all of them (`present`), not
    /// a search and a literal per word.
    static let optionWords: StaticString = """
        hv.exit=semihosting\0hv.host=linux\0hv.selftest=exception\0hv.selftest=nested-exception\0\
        hv.selftest=write-text\0hv.selftest=write-rodata\0hv.selftest=exec-data\0hv.selftest=stack-overflow\0\
        hv.selftest=stack-overflow-cpu1\0hv.selftest=host-exit-fault\0hv.selftest=swift-trap\0\
        hv.selftest=semihosting-probe\0hv.selftest=semihosting-probe-after-guest\0hv.selftest=report-flood\0\
        hv.selftest=guest-semihosting\0hv.selftest=guest-fetch-abort
        """
    enum Option {
        /// `hv.exit=semihosting`: the loader offers semihosting for the exit status.
        static let semihosting: UInt32 = 1 << 0
        /// `hv.host=linux`: the Linux-host mode (LinuxHost).
        static let linuxHost: UInt32 = 1 << 1
        /// A data abort on purpose after the banner, so the boot test can see
        /// the EL2 vectors report it (ESR/ELR/FAR) and power off.
        static let exception: UInt32 = 1 << 2
        /// The same abort, and a second one inside the handler: the latch must report it once and stop.
        static let nestedException: UInt32 = 1 << 3
        /// A store to the image's `.text` right after W^X is applied: must fault.
        static let writeText: UInt32 = 1 << 4
        /// A store to the image's `.rodata` right after W^X is applied: must fault.
        static let writeReadOnlyData: UInt32 = 1 << 5
        /// A call into a `ret` stored on the heap: must fault.
        static let executeData: UInt32 = 1 << 6
        /// Unbounded recursion on the main stack: the guard page must catch it.
        static let stackOverflow: UInt32 = 1 << 7
        /// The same on a second CPU, started through the hypervisor's CPU entry (`-smp 2`).
        static let secondaryStackOverflow: UInt32 = 1 << 8
        /// Linux host mode: the handler of the host's first SMCCC exit loads from
        /// outside the EL2 map, so EL2 faults while Linux's value is in SP_EL0.
        static let hostExitFault: UInt32 = 1 << 9
        /// An arithmetic overflow in Swift at EL2: the BRK must be reported with its function's name.
        static let swiftTrap: UInt32 = 1 << 10
        /// Powers off the way a device tree rejected with no console does (the
        /// guarded semihosting exit first), here with the console still there.
        static let semihostingProbe: UInt32 = 1 << 11
        /// The same request at the end of the run, after the guest: must not be tried.
        static let lateSemihostingProbe: UInt32 = 1 << 12
        /// The guest makes 32,768 extra report hypercalls.
        static let reportFlood: UInt32 = 1 << 13
        /// The guest calls semihosting SYS_EXIT with status 0 (`hlt #0xf000`)
        /// first: nothing may take that as a verdict.
        static let guestSemihosting: UInt32 = 1 << 14
        /// The guest jumps to an IPA nothing maps and its vector keeps stepping on.
        static let guestFetchAbort: UInt32 = 1 << 15
    }
    /// The `Option` bits bootargs asked for (`read`); a self-test that has
    /// run may clear its own.
    nonisolated(unsafe) static var options: UInt32 = 0

    static func option(_ bit: UInt32) -> Bool { options & bit != 0 }

    /// The `Option` bits of the `optionWords` that appear in `tree`'s bootargs
    /// as whole words (between spaces or the ends): `hv.exit=semihosting`
    /// does not match `xhv.exit=semihosting2`.
    static func present(in tree: FlattenedDeviceTree) -> UInt32 {
        guard let arguments = tree.bootArguments else { return 0 }
        // The literal's bytes as a buffer, without withUTF8Buffer's closure.
        let list = UnsafeBufferPointer(start: optionWords.utf8Start, count: optionWords.utf8CodeUnitCount)
        var found: UInt32 = 0
        var start = 0
        while start < arguments.count {
            var end = start
            while end < arguments.count && arguments[end] != UInt8(ascii: " ") { end += 1 }
            // Each entry in turn: match the word's bytes, then skip to the entry's NUL.
            var i = 0
            var bit: UInt32 = 1
            while i < list.count {
                var j = start
                while j < end && i < list.count && list[i] == arguments[j] { i += 1; j += 1 }
                if j == end && (i == list.count || list[i] == 0) { found |= bit }
                while i < list.count && list[i] != 0 { i += 1 }
                i += 1
                bit <<= 1
            }
            start = end + 1
        }
        return found
    }

    let tree: FlattenedDeviceTree
    let platform: PlatformDescription
    let blob: MemoryRange

    /// Parses the DTB at `address` and sets up the console and power-off.
    /// A blob or description that does not parse is reported and ends the
    /// run (`DeviceTreeReport`), and so does no blob at all (`noDeviceTree`).
    /// Not an Optional: unwrapping one copied the whole description.
    static func read(dtb address: UInt64) -> BootEnvironment {
        guard address != 0, let pointer = UnsafeRawPointer(bitPattern: UInt(address)) else {
            DeviceTreeReport.noDeviceTree()
        }
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
        options = present(in: tree)
        if option(Option.nestedException) {
            options |= Option.exception
            ExceptionLatch.faultInsideHandler = true
        }
        Power.semihostingAllowed = option(Option.semihosting)
        guard let blob = MemoryRange(base: PhysAddr(address), size: UInt64(tree.header.totalSize)) else {
            DeviceTreeReport.noDeviceTree()
        }
        return BootEnvironment(tree: tree, platform: platform, blob: blob)
    }
}
