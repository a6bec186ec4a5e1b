import ArchC

/// A test-and-set spin lock in a word of normal memory, for state the host's
/// CPUs share at EL2 (the PSCI table, the page-state operations). Exclusive
/// loads and stores (or LSE's CASAL) order the critical section: acquire on
/// taking it, release on giving it back. Interrupts stay masked at EL2, so a
/// holder is never preempted while another CPU spins.
struct SpinLock {
    let word: UnsafeMutablePointer<UInt64>

    /// A lock in a word of its own cache line, allocated at boot.
    static func make() -> SpinLock {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        let word = raw.bindMemory(to: UInt64.self, capacity: 1)
        word.initialize(to: 0)
        return SpinLock(word: word)
    }

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
