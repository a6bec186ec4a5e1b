import AArch64

/// The CPUs the device tree lists: the `reg` of each `/cpus` child whose
/// `device_type` is "cpu" (Devicetree Specification 3.7, and the Arm CPU
/// binding: `reg` is MPIDR_EL1's affinity fields, in `#address-cells` of
/// `/cpus`, 1 or 2 cells). The order is the tree's, which is the CPU index
/// PSCI bookkeeping uses.
extension FlattenedDeviceTree {
    public static let cpuCapacity = 8
    /// MPIDR_EL1 Aff3 [39:32], Aff2..Aff0 [23:0].
    static let affinityMask: UInt64 = 0xFF_00FF_FFFF

    public func cpuAffinities() throws(FDTError) -> FixedList<8, UInt64> {
        var list = FixedList<8, UInt64>()
        guard let cpus = node(atPath: "/cpus") else { return list }
        let cells = try addressCells(of: cpus)
        guard cells == 1 || cells == 2 else { throw .addressCellsUnsupported(node: cpus.offset, cells: cells) }
        for child in children(of: cpus) {
            guard let type = property("device_type", of: child), ByteString.equals(value(of: type), "cpu\0") else { continue }
            guard let reg = property("reg", of: child) else { throw .missingReg(node: child.offset) }
            let bytes = value(of: reg)
            guard bytes.count == Int(cells) * 4 else {
                throw .propertyLengthNotMultiple(node: child.offset, length: bytes.count, tupleBytes: Int(cells) * 4)
            }
            let mpidr = cells == 1 ? UInt64(bytes.loadUnaligned(as: UInt32.self).bigEndian)
                                   : bytes.loadUnaligned(as: UInt64.self).bigEndian
            guard mpidr & ~Self.affinityMask == 0 else { throw .cpuAffinityMalformed(node: child.offset, mpidr: mpidr) }
            guard list.append(mpidr) else { throw .tooManyCPUs(capacity: Self.cpuCapacity) }
        }
        return list
    }
}
