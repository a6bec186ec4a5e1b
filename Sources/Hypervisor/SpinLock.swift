import ArchC

// The board's mutable globals and who touches them once the host's CPUs run
// (the board checks run on the boot CPU alone: no CPU_ON outside the Linux
// host mode, so everything they use is single-CPU by construction).
//
// | global | after boot | protected by |
// |---|---|---|
// | `LinuxHost.active`, `bootCPU`, `heapAtEntry`, `registers`, `handler`, `smmuPhandle`, `domain`, `eduStreamID`, `canaryPage` | read by every CPU | written only before the host's first instruction (boot CPU); read-only after |
// | `LinuxHost.psci`, `pages` (frame table, host P2M, SMMU commands behind them) | every CPU's exits | `LinuxHost.lock` (this type) around each decision; inside it the ownership layer's page lock and each P2M's lock (Ownership/LockOrder.swift), the host P2M's own lock (`LinuxHost.p2m`'s `lock`) |
// | `LinuxHost.p2m` (host stage 2) | lookups on every CPU's stage-2 fault, edits by page operations | both under `LinuxHost.lock`; edits also under its own `lock` |
// | `LinuxHost.controlFiles[cpu]` | each CPU its own slot | per-CPU index (TPIDR_EL2) |
// | `LinuxHost.exitCounts` | every CPU | one atomic add per exit |
// | `Checks.passed`/`failed`, the SMMU event drain, the closing report | the CPU that ends the run | `Power.end` (`RunEndLatch`): the first CPU to end the run reports; others park |
// | `Console.device` | read by every CPU | written at boot only; a byte is one MMIO store, so two CPUs' lines may interleave but share no software state |
// | `Power.conduit`, `semihostingAllowed`, `EL2Map.nextSpare`, `BootEnvironment` self-test flags | no | boot only |
// | `ExceptionLatch`, `GuestScenario`, the stack self-test's frame | no | board-checks mode only (one CPU); host exits bypass the latch |
// | Boot: `hv_el2_regime` | read by each CPU as it starts | written before the first CPU_ON |
// | Boot: `heap_next` (bump heap) | no | boot only: the closing report checks the heap did not grow after the host started |
// | Boot: `hv_cpu_stacks` | each CPU its own 64 KiB | per-CPU slot |
/// A test-and-set spin lock in a word of normal memory, for state the host's
/// CPUs share at EL2 (the PSCI table, the page-state operations). Exclusive
/// loads and stores (or LSE's CASAL) order the critical section: acquire on
/// taking it, release on giving it back. Interrupts stay masked at EL2, so a
/// holder is never preempted while another CPU spins.
struct SpinLock {
    let word: UnsafeMutablePointer<UInt64>

    func lock() {
        let address = UInt64(UInt(bitPattern: word))
        while !arch_cas64(address, 0, 1) {
            while arch_load64(address) != 0 { arch_wfe() }
        }
    }

    func unlock() {
        arch_store_release64(UInt64(UInt(bitPattern: word)), 0)
        arch_sev()
    }
}
