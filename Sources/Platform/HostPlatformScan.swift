import AArch64

/// What the host's stage 2 and the PSCI table need from the firmware's tree
/// beyond `PlatformDescription`: every CPU's affinity and every MMIO window
/// a device node describes.
public struct HostPlatformScan: Sendable {
    public static let cpuCapacity = 8
    public static let windowCapacity = 32

    /// The `reg` of each `/cpus` child with `device_type = "cpu"`, in tree
    /// order: the MPIDR affinity PSCI's CPU_ON names it by.
    public private(set) var cpuAffinities = FixedList<8, UInt64>()
    /// The CPU physical ranges of every enabled device node's `reg` (through
    /// its buses' `ranges`) and of the PCI host bridge's windows, merged
    /// where they touch, ascending. Memory, reserved memory, CPUs and SMMUs
    /// are not devices the host owns and are left out.
    public private(set) var deviceWindows = FixedList<32, MemoryRange>()

    /// MPIDR_EL1 affinity fields: Aff3 [39:32], Aff2..Aff0 [23:0].
    static let affinityMask: UInt64 = 0xFF_00FF_FFFF

    public init(_ tree: FlattenedDeviceTree, pciHostBridge: PCIHostBridge?) throws(HostPlatformScanError) {
        if let cpus = tree.node(atPath: "/cpus") {
            for cpu in tree.children(of: cpus) {
                guard tree.hasDeviceType(cpu, "cpu") else { continue }
                let reg: FDTReg?
                do throws(FDTError) { reg = try tree.reg(of: cpu, onBus: cpus) } catch { throw .source(error) }
                guard let reg, reg.count > 0 else { throw .cpuWithoutReg(node: cpu.offset) }
                let mpidr = reg[0].base.raw
                guard mpidr & ~Self.affinityMask == 0 else { throw .malformedMPIDR(mpidr) }
                var index = 0
                while index < cpuAffinities.count {
                    guard cpuAffinities[slot: index] != mpidr else { throw .duplicateMPIDR(mpidr) }
                    index += 1
                }
                guard cpuAffinities.append(mpidr) else { throw .tooManyCPUs(capacity: Self.cpuCapacity) }
            }
        }
        // Merged as [base, end) byte intervals by the host layout's interval
        // set (same capacity as `deviceWindows`), so the image has one
        // merge-and-insert for both; copied out as ranges at the end.
        var merged = PageIntervals()
        var skipBelow: Int?
        for node in tree.nodes where node.depth > 0 {
            if let depth = skipBelow {
                if node.depth > depth { continue }
                skipBelow = nil
            }
            if Self.isNotADevice(tree, node) {
                skipBelow = node.depth
                continue
            }
            guard tree.isEnabled(node) else { continue }
            let reg: FDTReg?
            do throws(FDTError) { reg = try tree.reg(of: node) } catch { throw .source(error) }
            guard let reg else { continue }
            // Indexed, like every walk of a `reg`: no iterator specialisation.
            var index = 0
            while index < reg.count {
                let entry = reg[index]
                index += 1
                guard entry.size > 0 else { continue }
                let range: MemoryRange
                do throws(FDTError) {
                    range = try tree.cpuRange(entry, of: node)
                } catch {
                    // A bus without `ranges` (I2C, SPI, MDIO): its children
                    // are addressed on the bus, not in the CPU's map.
                    if case .untranslatableAddress = error { break }
                    throw .source(error)
                }
                try Self.add(range, to: &merged)
            }
        }
        if let bridge = pciHostBridge {
            var windows = bridge.windows  // one copy; slots read in place
            var index = 0
            while index < windows.count {
                let window = windows[slot: index]
                index += 1
                guard let range = MemoryRange(base: window.cpuAddress, size: window.size) else {
                    throw .source(.regionOverflows(base: window.cpuAddress.raw, size: window.size))
                }
                try Self.add(range, to: &merged)
            }
        }
        var index = 0
        while index < merged.list.count {
            let window = merged.list[slot: index]
            index += 1
            // end <= UInt64.max (each input was a MemoryRange), so this cannot
            // fail, nor can the append: both lists hold `windowCapacity`.
            deviceWindows.append(MemoryRange(base: PhysAddr(raw: window.first), size: window.end - window.first)!)
        }
    }

    /// Subtrees that describe memory or CPUs, not MMIO the host owns.
    /// `static`: as a method it copied the whole scan (850 bytes) per node.
    static func isNotADevice(_ tree: FlattenedDeviceTree, _ node: FDTNode) -> Bool {
        if node.depth == 1 {
            let name = tree.baseName(of: node)
            if ByteString.listContains("cpus\0reserved-memory\0chosen\0aliases", name) { return true }
        }
        return tree.hasDeviceType(node, "memory") || tree.isCompatible(node, with: "arm,smmu-v3")
    }

    /// Inserts in order, merging with every window it overlaps or touches.
    /// A full list refuses and is unchanged (a merge would have freed a slot).
    @_transparent  // two call sites, both in init: inlined (-24 B on the board)
    static func add(_ range: MemoryRange, to windows: inout PageIntervals) throws(HostPlatformScanError) {
        guard windows.insertMerging(PageInterval(first: range.base.raw, end: range.end.raw)) else {
            throw .tooManyWindows(capacity: Self.windowCapacity)
        }
    }
}

/// Why the firmware's tree could not be scanned for the host.
public enum HostPlatformScanError: Error, Equatable, Sendable {
    case source(FDTError)
    case cpuWithoutReg(node: Int)
    /// A CPU `reg` with bits outside the MPIDR affinity fields.
    case malformedMPIDR(UInt64)
    case duplicateMPIDR(UInt64)
    case tooManyCPUs(capacity: Int)
    case tooManyWindows(capacity: Int)
}
