/// Physical memory as the hypervisor sees it: a PA gives a 64-bit word.
///
/// On the board the EL2 identity map makes this a plain pointer access; in
/// XCTest it is a fake over host memory that can record every write.
/// Table walkers, the SMMU queues and stream tables all go through it.
public protocol PhysicalMemory {
    func load64(_ address: PhysAddr) -> UInt64
    func store64(_ address: PhysAddr, _ value: UInt64)
    /// Zero one 4 KiB frame (a fresh table page, a queue, a stream table).
    func zeroFrame(_ frame: MFN)
    /// Order every earlier store before every later one as observed by table
    /// walkers. Board: exactly `DMB ISHST` (Arm ARM B2.3 "Ordering requirements":
    /// a walker is an observer in the inner shareable domain, and an SMMU that
    /// walks these tables coherently is programmed inner shareable too). The
    /// engine calls it after filling a new table (fresh or a block split) and
    /// before storing the descriptor that links it, so no walker can reach the
    /// table before its contents. It is not a substitute for the barrier before a
    /// TLBI: that one is `TLBMaintenance`'s. Has a no-op default (see below).
    func orderStoresForWalkers()
}

extension PhysicalMemory {
    /// Order every earlier store before every later one as seen by table walkers
    /// (board: DMB ISHST). Called between filling a new table and the store of the
    /// descriptor that links it, so a walker never sees the link before the contents.
    /// The default is for memories whose stores are already ordered (host fakes);
    /// the board's `PhysicalMemory` must implement it.
    @inline(__always) public func orderStoresForWalkers() {}
}
