import AArch64
import ArchC

/// The host's CPUs. Slot 0 is the boot CPU; a CPU the host starts with PSCI
/// CPU_ON gets the next free slot, and firmware is asked to start it at
/// Boot/host.S's `hv_cpu_entry` with the slot as its context id, so it comes up
/// at EL2 on its own stack under the hypervisor's regime and only then enters
/// the host where the host asked, with the host's context id in x0.
///
/// Slots are claimed with a compare-and-swap so two CPUs issuing CPU_ON at
/// once cannot both take one. What a slot holds is written before firmware
/// is called and read by the new CPU with its MMU off, so it is cleaned to
/// the point of coherency in between.
enum LinuxHostCPUs {
    static let capacity = Int(HV_HOST_MAX_CPUS)

    /// Per slot: MPIDR affinity, entry point, context id (3 words per slot,
    /// each slot on its own cache line), and whether it is claimed.
    struct Slot {
        var mpidr: UInt64
        var entry: UInt64
        var context: UInt64
        var claimed: UInt64
        var padding: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    }
    nonisolated(unsafe) static var slots: UnsafeMutablePointer<Slot>?

    static func prepare() {
        let table = UnsafeMutablePointer<Slot>.allocate(capacity: capacity)
        for i in 0..<capacity { (table + i).initialize(to: Slot(mpidr: 0, entry: 0, context: 0, claimed: 0)) }
        table[0].mpidr = arch_read_mpidr_el1() & affinityMask
        table[0].claimed = 1
        slots = table
    }

    /// MPIDR_EL1 Aff3 [39:32], Aff2 [23:16], Aff1 [15:8], Aff0 [7:0].
    static let affinityMask: UInt64 = 0xFF_00FF_FFFF

    /// A free slot for `mpidr`, recording where the host wants it to start;
    /// nil when every slot is taken (the caller answers the host with an error).
    static func claim(mpidr: UInt64, entry: UInt64, context: UInt64) -> Int? {
        guard let slots else { return nil }
        for i in 1..<capacity {
            let word = UnsafeMutableRawPointer(slots + i).advanced(by: MemoryLayout<UInt64>.stride * 3)
            if arch_cas64(UInt64(UInt(bitPattern: word)), 0, 1) {
                slots[i].mpidr = mpidr & affinityMask
                slots[i].entry = entry
                slots[i].context = context
                arch_dsb_sy()
                arch_dc_civac(UInt64(UInt(bitPattern: slots + i)))
                arch_dsb_sy()
                return i
            }
        }
        return nil
    }

    /// Gives a slot back after firmware refused to start its CPU.
    static func release(_ slot: Int) {
        guard let slots, slot > 0, slot < capacity else { return }
        slots[slot].claimed = 0
        arch_dsb_sy()
    }

    /// The slot holding the CPU with `mpidr`, if it was ever started.
    static func slot(of mpidr: UInt64) -> Int? {
        guard let slots else { return nil }
        for i in 0..<capacity where slots[i].claimed != 0 && slots[i].mpidr == mpidr & affinityMask { return i }
        return nil
    }
}

/// Where a CPU the host started arrives from Boot/host.S (EL2, MMU on).
@c(hv_cpu_main)
func hvCPUMain(_ slot: UInt64) {
    guard let slots = LinuxHostCPUs.slots, slot > 0, slot < UInt64(LinuxHostCPUs.capacity) else {
        while true { arch_wfe() }
    }
    let s = slots[Int(slot)]
    LinuxHost.enter(slot: Int(slot), entry: s.entry, x0: s.context)
}
