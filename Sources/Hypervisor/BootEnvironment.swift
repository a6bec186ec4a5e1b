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

    let tree: FlattenedDeviceTree
    let platform: PlatformDescription
    let blob: MemoryRange

    /// Parses the DTB at `address` and sets up the console and power-off.
    /// On any error there is no console to say so: the caller parks.
    static func read(dtb address: UInt64) -> BootEnvironment? {
        guard address != 0, let pointer = UnsafeRawPointer(bitPattern: UInt(address)) else { return nil }
        do throws(FDTError) {
            let tree = try FlattenedDeviceTree(blobAt: pointer, limit: maximumBlobSize)
            let platform = try PlatformDescription(tree)
            Console.select(platform.console)
            if let psci = platform.psci { Power.conduit = psci.conduit == .smc ? .smc : .hvc }
            Power.semihostingAllowed = tree.bootArgumentsContain(semihostingOption)
            exceptionSelfTest = tree.bootArgumentsContain(exceptionSelfTestOption)
            guard let blob = MemoryRange(base: PhysAddr(address), size: UInt64(tree.header.totalSize)) else { return nil }
            return BootEnvironment(tree: tree, platform: platform, blob: blob)
        } catch {
            return nil
        }
    }
}
