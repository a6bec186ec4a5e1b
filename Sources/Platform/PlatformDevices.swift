import AArch64

/// The console the firmware chose (`/chosen/stdout-path`).
public struct ConsoleUART: Equatable, Sendable {
    public let registers: MemoryRange
    /// `compatible` lists `arm,pl011`: the `PL011` helper can drive it.
    public let isPL011: Bool
    /// Blob offset of the UART's node.
    public let node: Int
}

/// GIC interrupt IDs of an SMMUv3's wired interrupts, by `interrupt-names`
/// (Linux binding `arm,smmu-v3.yaml`). `nil` when absent or not a 3-cell GIC
/// specifier.
public struct SMMUInterrupts: Equatable, Sendable {
    public var eventQueue: UInt32?
    public var priorityQueue: UInt32?
    public var commandSync: UInt32?
    public var globalError: UInt32?
    public init() {}
}

/// An `arm,smmu-v3` node.
public struct SMMUDescription: Equatable, Sendable {
    public let registers: MemoryRange
    /// `dma-coherent`: the SMMU's table and queue walks snoop the CPU caches.
    /// Without it every STE, CD, table page and queue entry must be cleaned
    /// to the point of coherency before the SMMU may read it (DESIGN.md rule 4).
    public let isCoherent: Bool
    /// What `iommu-map`/`iommus` entries use to name this SMMU.
    public let phandle: UInt32?
    public let interrupts: SMMUInterrupts
    public let node: Int
}

/// How PSCI calls reach the firmware (PSCI binding `arm,psci.yaml`).
public enum PSCIConduit: Equatable, Sendable {
    case smc
    case hvc
}

/// The `/psci` node. Function IDs are only present for the pre-0.2 binding
/// (QEMU still lists them); 0.2+ callers use the standard IDs.
public struct PSCIDescription: Equatable, Sendable {
    public let conduit: PSCIConduit
    /// `compatible` lists `arm,psci-0.2` or `arm,psci-1.0`: standard function IDs.
    public let hasStandardFunctionIDs: Bool
    public let cpuSuspend: UInt32?
    public let cpuOff: UInt32?
    public let cpuOn: UInt32?
    public let migrate: UInt32?
}

/// A `/reserved-memory` child with a static `reg`.
public struct ReservedMemoryRegion: Equatable, Sendable {
    public let range: MemoryRange
    /// `no-map`: not even the hypervisor may map it cacheable.
    public let noMap: Bool
    public let node: Int
}
