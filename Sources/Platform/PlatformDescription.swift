import AArch64

/// What the hypervisor needs from the device tree, decoded and checked once.
/// Nothing here is guessed: an absent node gives `nil`/an empty list, a
/// malformed one an `FDTError`. Every value is copied out of the blob, so the
/// description stays valid after the blob's memory is reused.
///
/// Board use, from the DTB pointer in x0:
///
///     let tree = try FlattenedDeviceTree(blobAt: dtb, limit: maxBlobSize)
///     let platform = try PlatformDescription(tree)
///     var frames = try FrameAllocator(platform: platform, image: imageRange,
///                                     deviceTree: MemoryRange(base: dtbAddress, size: UInt64(tree.header.totalSize))!)
///     let ecam = PCIECAM(registers: mmio(platform.pciHostBridge!.ecam), bridge: platform.pciHostBridge!)
///     for function in ecam.functions { ... bridge.iommuTarget(forRequesterID: function.address.requesterID) ... }
public struct PlatformDescription: Sendable {
    public static let memoryBankCapacity = 16
    public static let reservationCapacity = 16
    /// Qualcomm phones and laptops carve 40-odd firmware regions out of RAM.
    public static let reservedMemoryCapacity = 64
    /// HiSilicon D05 (hip07) describes five.
    public static let smmuCapacity = 8

    /// RAM, in blob order; may be several sparse banks.
    public private(set) var memoryBanks = FixedList<16, MemoryRange>()
    /// `/memreserve/` entries of the reservation block.
    public private(set) var memoryReservations = FixedList<16, MemoryRange>()
    /// `/reserved-memory` children with a static `reg`.
    public private(set) var reservedMemory = FixedList<64, ReservedMemoryRegion>()
    public private(set) var console: ConsoleUART?
    public private(set) var smmus = FixedList<8, SMMUDescription>()
    public private(set) var pciHostBridge: PCIHostBridge?
    public private(set) var psci: PSCIDescription?

    public init(_ tree: FlattenedDeviceTree) throws(FDTError) {
        for range in tree.memoryReservations {
            guard memoryReservations.append(range) else {
                throw .tooManyReservedRegions(capacity: PlatformDescription.reservationCapacity)
            }
        }
        for node in tree.children(of: tree.root) where tree.isEnabled(node) {
            if PlatformDescription.isMemory(tree, node) {
                try addMemory(tree, node)
            } else if ByteString.equals(tree.name(of: node), "reserved-memory") {
                try addReservedMemory(tree, node)
            }
        }
        for node in tree.nodes where tree.isEnabled(node) {
            if tree.isCompatible(node, with: "arm,smmu-v3") {
                try addSMMU(tree, node)
            } else if tree.isCompatible(node, with: "pci-host-ecam-generic") {
                guard pciHostBridge == nil else { throw .multiplePCIHostBridges(node: node.offset) }
                try setHostBridge(tree, node)
            }
        }
        if let node = PlatformDescription.psciNode(tree) {
            psci = try PlatformDescription.psci(tree, node)
        }
        console = try PlatformDescription.console(tree)
        try checkLayout()
    }

    /// Banks against each other. Called at the end of `init`, so a
    /// description that exists has passed it. `mutating` only to read the
    /// banks in place (it changes nothing): as a plain method, `init` copied
    /// the whole 4 KiB description to call it, and it copied the bank list.
    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    mutating func checkLayout() throws(FDTError) {
        var i = 0
        while i < memoryBanks.count {
            let bank = memoryBanks[slot: i]
            var j = i + 1
            while j < memoryBanks.count {
                if bank.overlaps(memoryBanks[slot: j]) {
                    throw .overlappingMemoryBanks(first: bank.base.raw, second: memoryBanks[slot: j].base.raw)
                }
                j += 1
            }
            i += 1
        }
    }

    /// Every range the frame allocator must never hand out that the DTB
    /// itself states (the image and the blob are the caller's to add).
    public var reservedRanges: FixedList<80, MemoryRange> {
        var all = FixedList<80, MemoryRange>()
        for range in memoryReservations { all.append(range) }
        // Indexed: an iterator over this list type would be its only one in the
        // image. One copy, then slots read in place: a plain subscript read of
        // the stored list copied all of it for every element.
        var regions = reservedMemory
        var index = 0
        while index < regions.count {
            all.append(regions[slot: index].range)
            index += 1
        }
        return all
    }

    /// Every MMIO region of a device the DTB names and the hypervisor drives
    /// (the console, each SMMU, the PCI ECAM and the host bridge's windows):
    /// what the EL2 map must cover as Device memory. At most 1 + 4 + 1 + 8.
    public var deviceRegions: FixedList<16, MemoryRange> {
        var all = FixedList<16, MemoryRange>()
        if let console { all.append(console.registers) }
        for smmu in smmus { all.append(smmu.registers) }
        // Fields read through the optional, not a copy of the whole bridge bound
        // by `if let`; the window list is copied once and its slots read in place.
        if let ecam = pciHostBridge?.ecam, var windows = pciHostBridge?.windows {
            all.append(ecam)
            // The parser refuses a window that wraps; one built by hand could.
            var index = 0
            while index < windows.count {
                let window = windows[slot: index]
                if let range = MemoryRange(base: window.cpuAddress, size: window.size) { all.append(range) }
                index += 1
            }
        }
        return all
    }

    // MARK: Memory (section 3.4)

    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    static func isMemory(_ tree: FlattenedDeviceTree, _ node: FDTNode) -> Bool { tree.hasDeviceType(node, "memory") }

    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    private mutating func addMemory(_ tree: FlattenedDeviceTree, _ node: FDTNode) throws(FDTError) {
        guard let reg = try tree.reg(of: node, onBus: tree.root) else { throw .missingReg(node: node.offset) }
        var index = 0
        while index < reg.count {
            let bank = reg[index]
            index += 1
            guard bank.size != 0 else { continue }
            guard memoryBanks.append(bank) else {
                throw .tooManyMemoryBanks(capacity: PlatformDescription.memoryBankCapacity)
            }
        }
    }

    // MARK: Reserved memory (section 3.5)

    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    private mutating func addReservedMemory(_ tree: FlattenedDeviceTree, _ parent: FDTNode) throws(FDTError) {
        for child in tree.children(of: parent) where tree.isEnabled(child) {
            // Children with only `size`/`alloc-ranges` are dynamic requests
            // for an OS allocator: nothing is reserved until someone places them.
            guard let reg = try tree.reg(of: child, onBus: parent) else { continue }
            let noMap = tree.hasProperty("no-map", child)
            var index = 0
            while index < reg.count {
                let range = reg[index]
                index += 1
                guard range.size != 0 else { continue }
                guard reservedMemory.append(ReservedMemoryRegion(range: range, noMap: noMap, node: child.offset)) else {
                    throw .tooManyReservedRegions(capacity: PlatformDescription.reservedMemoryCapacity)
                }
            }
        }
    }

    // MARK: Console (section 3.6)

    @usableFromInline  // for the @_transparent earlyServices
    static func console(_ tree: FlattenedDeviceTree) throws(FDTError) -> ConsoleUART? {
        let node: FDTNode
        let source: ConsoleSource
        if let chosen = tree.child(of: tree.root, named: "chosen"),
           let property = tree.property("stdout-path", of: chosen) ?? tree.property("linux,stdout-path", of: chosen) {
            let full = try tree.string(property)
            // "serial0:115200n8": the options after ':' are for the UART driver.
            let path = ByteString.slice(full, 0, ByteString.firstIndex(of: UInt8(ascii: ":"), in: full))
            guard let found = tree.node(atPath: path) else { throw .stdoutPathUnresolved(node: chosen.offset) }
            node = found
            source = .stdoutPath
        } else {
            guard let found = tree.node(atPath: "serial0") else { return nil }
            node = found
            source = .serial0Alias
        }
        // One call site, so `consoleUART` is inlined.
        return try consoleUART(tree, node, source: source)
    }

    @_transparent  // one call site, in console
    static func consoleUART(_ tree: FlattenedDeviceTree, _ node: FDTNode,
                            source: ConsoleSource) throws(FDTError) -> ConsoleUART {
        guard let registers = try tree.firstCPURange(of: node) else { throw .missingReg(node: node.offset) }
        return ConsoleUART(registers: registers, kind: try uartKind(tree, node), source: source, node: node.offset)
    }

    /// The binding's defaults per compatible: byte registers one byte apart,
    /// except the BCM2835 mini UART, whose registers are 32-bit words
    /// (BCM2835 ARM Peripherals, section 2.2.2: AUX_MU_IO_REG at +0x40,
    /// AUX_MU_LSR_REG at +0x54 from the AUX block) and whose node names
    /// AUX_MU_IO_REG. `reg-shift`/`reg-io-width` override either.
    // Inlined into its one caller, `consoleUART` (-88 B on the board; the
    // performance inliner's threshold is 0 there, so only this attribute does it).
    @_transparent
    static func uartKind(_ tree: FlattenedDeviceTree, _ node: FDTNode) throws(FDTError) -> UARTKind {
        if tree.isCompatible(node, withAnyOf: "arm,pl011\0arm,sbsa-uart") { return .pl011 }
        var shift: UInt32 = 0
        var width: UInt32 = 1
        if tree.isCompatible(node, with: "brcm,bcm2835-aux-uart") {
            shift = 2
            width = 4
        } else if !tree.isCompatible(node, withAnyOf: "ns16550a\0ns16550\0snps,dw-apb-uart") {
            return .unsupported
        }
        shift = try tree.u32("reg-shift", of: node) ?? shift
        width = try tree.u32("reg-io-width", of: node) ?? width
        guard let layout = NS16550Layout(regShift: shift, ioWidth: width) else {
            throw .unsupportedUARTLayout(node: node.offset, regShift: shift, ioWidth: width)
        }
        return .ns16550(layout)
    }

    // MARK: SMMUv3 (Linux binding arm,smmu-v3.yaml)

    /// GIC specifier (`arm,gic` / `arm,gic-v3` bindings): type, number, flags.
    static let gicSpecifierCells = 3
    static let gicSPIType: UInt32 = 0
    static let gicPPIType: UInt32 = 1
    static let gicSPIBase: UInt32 = 32
    static let gicPPIBase: UInt32 = 16

    /// Appended directly: a returned description was copied once more on
    /// its way into the list.
    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    private mutating func addSMMU(_ tree: FlattenedDeviceTree, _ node: FDTNode) throws(FDTError) {
        guard let registers = try tree.firstCPURange(of: node) else { throw .missingReg(node: node.offset) }
        // SMMU_IDR0..CR0 alone span 0x30 bytes of page 0: a size-0 `reg` names no registers.
        guard registers.size != 0 else { throw .emptyRegister(node: node.offset) }
        guard smmus.append(SMMUDescription(
            registers: registers,
            isCoherent: tree.hasProperty("dma-coherent", node),
            phandle: try Self.phandle(tree, node),
            interrupts: Self.smmuInterrupts(tree, node),
            msiParent: Self.firstPhandle("msi-parent", of: tree, node),
            node: node.offset)) else {
            throw .tooManySMMUs(capacity: PlatformDescription.smmuCapacity)
        }
    }

    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    static func phandle(_ tree: FlattenedDeviceTree, _ node: FDTNode) throws(FDTError) -> UInt32? {
        if let handle = try tree.u32("phandle", of: node) { return handle }
        return try tree.u32("linux,phandle", of: node)
    }

    /// The controller phandle of a `<phandle specifier...>` property such as
    /// `msi-parent` (the specifier's length is the controller's to define).
    static func firstPhandle(_ name: StaticString, of tree: FlattenedDeviceTree, _ node: FDTNode) -> UInt32? {
        guard let property = tree.property(name, of: node), property.length >= 4 else { return nil }
        return tree.value(of: property).bigEndianUInt32(at: 0)
    }

    /// `compatible` strings of the Arm GIC bindings (arm,gic.yaml and
    /// arm,gic-v3.yaml): controllers whose specifier is (type, number, flags...).
    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    static func isGIC(_ tree: FlattenedDeviceTree, _ node: FDTNode) -> Bool {
        tree.isCompatible(node, withAnyOf: """
            arm,gic-v3\0arm,gic-400\0arm,cortex-a15-gic\0arm,cortex-a9-gic\0arm,cortex-a7-gic\0arm,pl390\0qcom,msm-qgic2
            """)
    }

    /// Best effort: interrupts are a convenience for the caller, so a shape
    /// we do not understand (a parent that is not a GIC, such as HiSilicon's
    /// mbigen, or a specifier of another length) leaves them `nil` rather
    /// than failing the parse.
    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    static func smmuInterrupts(_ tree: FlattenedDeviceTree, _ node: FDTNode) -> SMMUInterrupts {
        var result = SMMUInterrupts()
        guard let names = tree.property("interrupt-names", of: node),
              let list = try? tree.strings(names),
              let interrupts = tree.property("interrupts", of: node),
              let controller = tree.interruptController(of: node), isGIC(tree, controller),
              let cells = try? tree.u32("#interrupt-cells", of: controller),
              cells >= 2, Int(cells) <= 4 else { return result }
        let specifierBytes = Int(cells) * 4
        guard interrupts.length % specifierBytes == 0 else { return result }
        let value = tree.value(of: interrupts)
        var at = 0
        for name in list {
            guard at + specifierBytes <= value.count else { break }
            let type = value.bigEndianUInt32(at: at)
            let number = value.bigEndianUInt32(at: at + 4)
            at += specifierBytes
            let base: UInt32
            switch type {
            case gicSPIType: base = gicSPIBase
            case gicPPIType: base = gicPPIBase
            default: continue
            }
            guard number <= UInt32.max - base else { continue }
            let intid = base + number
            switch ByteString.index(of: name, inList: "eventq\0priq\0cmdq-sync\0gerror") {
            case 0: result.eventQueue = intid
            case 1: result.priorityQueue = intid
            case 2: result.commandSync = intid
            case 3: result.globalError = intid
            default: break
            }
        }
        return result
    }

    // MARK: PCIe host bridge (Linux binding host-generic-pci.yaml)

    static let maxBus: UInt32 = 0xFF

    /// Sets `pciHostBridge` once every part is read and checked (nothing is
    /// set when one throws). Stored directly: a returned bridge went through
    /// two 640-byte copies on its way into the description.
    @_transparent  // one caller: inlined there (the board inliner's threshold is 0)
    private mutating func setHostBridge(_ tree: FlattenedDeviceTree, _ node: FDTNode) throws(FDTError) {
        guard let ecam = try tree.firstCPURange(of: node) else { throw .missingReg(node: node.offset) }

        var first: UInt32 = 0
        var last: UInt32 = Self.maxBus
        if let busRange = tree.property("bus-range", of: node) {
            guard busRange.length == 8 else {
                throw .propertyLengthNotMultiple(node: node.offset, length: busRange.length, tupleBytes: 8)
            }
            let value = tree.value(of: busRange)
            first = value.bigEndianUInt32(at: 0)
            last = value.bigEndianUInt32(at: 4)
            guard first <= last, last <= Self.maxBus else { throw .badBusRange(node: node.offset, first: first, last: last) }
        }
        // Like Linux's pci_ecam_create: a region smaller than the bus range
        // limits the buses we may touch rather than letting us read past it.
        let busesCovered = ecam.size >> UInt64(ECAMLayout.busShift)
        guard busesCovered > 0 else { throw .ecamTooSmall(node: node.offset, size: ecam.size) }
        if UInt64(last - first) + 1 > busesCovered { last = first + UInt32(busesCovered) - 1 }

        var windows = FixedList<8, PCIWindow>()
        try PlatformDescription.pciWindows(tree, node, into: &windows)
        var map = FixedList<16, IOMMUMapEntry>()
        try PCIHostBridgeNode.map(tree, node, msi: false, checkingIOMMUs: true, into: &map)
        pciHostBridge = PCIHostBridge(
            ecam: ecam, firstBus: UInt8(first), lastBus: UInt8(last), windows: windows, iommuMap: map,
            iommuMapMask: try tree.u32("iommu-map-mask", of: node),
            isCoherent: tree.hasProperty("dma-coherent", node),
            segment: try tree.u32("linux,pci-domain", of: node),
            node: node.offset)
    }

    /// `ranges`: (PCI address: 3 cells, CPU address: parent's
    /// `#address-cells`, size: the bridge's `#size-cells`). Appended to
    /// `windows` (empty: the caller's list, filled in place rather than
    /// returned and copied).
    static func pciWindows(_ tree: FlattenedDeviceTree, _ node: FDTNode,
                           into windows: inout FixedList<8, PCIWindow>) throws(FDTError) {
        guard let ranges = tree.property("ranges", of: node) else { return }
        let childCells = try tree.addressCells(of: node)
        guard childCells == PCIWindow.addressCells else {
            throw .addressCellsUnsupported(node: node.offset, cells: childCells)
        }
        let parentCells = try tree.addressCells(of: tree.parent(of: node) ?? tree.root)
        let sizeCells = try tree.sizeCells(of: node)
        let tuple = try FlattenedDeviceTree.rangesTupleBytes(ranges, of: node, childCells: childCells,
                                                             parentCells: parentCells, sizeCells: sizeCells,
                                                             parentCellsNode: node)
        let value = tree.value(of: ranges)
        var offset = 0
        while offset < value.count {
            let physHigh = value.bigEndianUInt32(at: offset)
            let pciAddress = FDTReg.cells(value, offset + 4, 2)
            let cpu = FDTReg.cells(value, offset + 12, parentCells)
            let size = FDTReg.cells(value, offset + 12 + Int(parentCells) * 4, sizeCells)
            offset += tuple
            guard let space = PCIAddressSpace(rawValue: (physHigh >> PCIWindow.spaceShift) & PCIWindow.spaceMask),
                  space != .configuration else {
                throw .unsupportedPCISpace(node: node.offset, physHigh: physHigh)
            }
            guard pciAddress <= UInt64.max - size,
                  let parentRange = MemoryRange(base: PhysAddr(raw: cpu), size: size) else {
                throw .regionOverflows(base: cpu, size: size)
            }
            // The CPU side is an address of the bridge's parent bus, like a
            // `reg` entry of the bridge: the buses above translate it.
            let cpuRange = try tree.cpuRange(parentRange, of: node)
            guard windows.append(PCIWindow(space: space, isPrefetchable: physHigh & PCIWindow.prefetchableBit != 0,
                                           pciAddress: pciAddress, cpuAddress: cpuRange.base, size: size)) else {
                throw .tooManyPCIWindows(capacity: PCIHostBridge.windowCapacity)
            }
        }
    }

    // MARK: PSCI (Linux binding arm,psci.yaml)

    /// `/psci` by name, else a root child whose `compatible` says PSCI.
    @usableFromInline  // for the @_transparent earlyServices
    static func psciNode(_ tree: FlattenedDeviceTree) -> FDTNode? {
        if let node = tree.child(of: tree.root, named: "psci") { return node }
        for node in tree.children(of: tree.root)
        where tree.isCompatible(node, withAnyOf: "arm,psci-1.0\0arm,psci-0.2\0arm,psci") {
            return node
        }
        return nil
    }

    @usableFromInline  // for the @_transparent earlyServices
    static func psci(_ tree: FlattenedDeviceTree, _ node: FDTNode) throws(FDTError) -> PSCIDescription {
        guard let property = tree.property("method", of: node) else { throw .unknownPSCIMethod(node: node.offset) }
        let method = try tree.string(property)
        let conduit: PSCIConduit
        switch ByteString.index(of: method, inList: "smc\0hvc") {
        case 0: conduit = .smc
        case 1: conduit = .hvc
        default: throw .unknownPSCIMethod(node: node.offset)
        }
        return PSCIDescription(
            conduit: conduit,
            hasStandardFunctionIDs: tree.isCompatible(node, withAnyOf: "arm,psci-0.2\0arm,psci-1.0"),
            cpuSuspend: try tree.u32("cpu_suspend", of: node),
            cpuOff: try tree.u32("cpu_off", of: node),
            cpuOn: try tree.u32("cpu_on", of: node),
            migrate: try tree.u32("migrate", of: node))
    }
}
