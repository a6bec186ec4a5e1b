import ArchC

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
