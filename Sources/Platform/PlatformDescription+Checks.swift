import AArch64

/// Checks across nodes: each node can be well formed while the description
/// as a whole names impossible hardware (RAM over a device, two banks on the
/// same addresses, RAM the CPU cannot address). The frame table, the EL2 map
/// and the P2M all assume none of that happens, so it is refused: banks
/// against each other in `init` (`checkLayout`, next to the bank list, whose
/// setter it needs to read in place), and here the parts that need the CPU,
/// or that a firmware-patched tree may break, when the board asks.
extension PlatformDescription {
    /// What the board checks before it maps or counts any frame: every bank
    /// ends at or below 2^`bits`, the CPU's physical address size
    /// (ID_AA64MMFR0_EL1.PARange, which only the board knows), and no bank
    /// covers a device the tree names (the EL2 map and the frame table would
    /// treat its registers as RAM). The second rule is not part of `init`:
    /// static board trees that firmware patches at boot (the Raspberry Pi 3's
    /// 1 GiB /memory over its peripherals) still describe, so the corpus test
    /// can compare them; a hypervisor handed such a tree refuses it here.
    @_transparent  // one caller on the board (in Hypervisor): inlined there
    public func checkMemory(physicalAddressBits bits: Int) throws(FDTError) {
        if bits < 64 {
            let limit: UInt64 = 1 << UInt64(bits)
            for bank in memoryBanks where bank.base.raw >= limit || bank.size > limit - bank.base.raw {
                throw .memoryBeyondPhysicalRange(base: bank.base.raw, size: bank.size, bits: bits)
            }
        }
        // The device list is built once (a `for in` over the computed
        // property rebuilt it for every bank); slots are read in place.
        var devices = deviceRegions
        for bank in memoryBanks {
            var index = 0
            while index < devices.count {
                if bank.overlaps(devices[slot: index]) {
                    throw .memoryOverlapsDevice(bank: bank.base.raw, device: devices[slot: index].base.raw)
                }
                index += 1
            }
        }
    }

    /// What the board needs to speak at all, read on its own so that a tree
    /// the full description rejects can still name the console to print the
    /// reason on, and the PSCI conduit to power off with. Each part is `nil`
    /// when it is itself malformed.
    @_transparent  // one caller on the board (in Hypervisor): inlined there
    public static func earlyServices(_ tree: FlattenedDeviceTree) -> (console: ConsoleUART?, psci: PSCIDescription?) {
        let console = try? PlatformDescription.console(tree)
        var psci: PSCIDescription?
        if let node = PlatformDescription.psciNode(tree) { psci = try? PlatformDescription.psci(tree, node) }
        return (console ?? nil, psci)
    }
}
