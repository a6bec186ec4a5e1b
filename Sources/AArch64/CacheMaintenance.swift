/// Data cache maintenance to the point of coherency, for devices that do not
/// snoop the CPU caches (non-coherent SMMU walks, non-coherent DMA masters).
public protocol CacheMaintenance {
    /// Clean (write back) lines covering [address, address+bytes) to PoC.
    mutating func clean(_ address: PhysAddr, bytes: UInt64)
    /// Clean and invalidate lines covering [address, address+bytes) to PoC.
    mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64)
    /// Order the maintenance before later accesses (DSB).
    mutating func synchronize()
}
