import AArch64

/// The register interface of a console UART, chosen by its `compatible`.
public enum UARTKind: Equatable, Sendable {
    /// `arm,pl011`, or `arm,sbsa-uart` (Arm SBSA, generic UART: the PL011's
    /// DR and FR at the same offsets).
    case pl011
    /// `ns16550a`, `ns16550`, `snps,dw-apb-uart` or `brcm,bcm2835-aux-uart`.
    case ns16550(NS16550Layout)
    /// A UART this image has no driver for: output through it is dropped.
    case unsupported
}

/// Where the console came from.
public enum ConsoleSource: Equatable, Sendable {
    /// `/chosen/stdout-path` (or the older `linux,stdout-path`), a path or an alias.
    case stdoutPath
    /// No `stdout-path`: the `serial0` alias, the console U-Boot takes then.
    case serial0Alias
}

/// The console the firmware chose.
public struct ConsoleUART: Equatable, Sendable {
    /// The first `reg` entry, translated to a CPU physical range.
    public let registers: MemoryRange
    public let kind: UARTKind
    public let source: ConsoleSource
    /// Blob offset of the UART's node.
    public let node: Int

    public init(registers: MemoryRange, kind: UARTKind, source: ConsoleSource, node: Int) {
        self.registers = registers
        self.kind = kind
        self.source = source
        self.node = node
    }

    /// The `PL011` helper can drive it.
    public var isPL011: Bool { kind == .pl011 }
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
    /// `msi-parent`'s controller: the SMMU signals its events by MSI
    /// through it (an ITS) instead of, or as well as, wired interrupts.
    public let msiParent: UInt32?
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
