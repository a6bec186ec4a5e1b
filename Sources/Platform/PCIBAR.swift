import AArch64

/// What a Base Address Register decodes (PCIe Base 5.0, section 7.5.1.2.1).
public enum PCIBARKind: Equatable, Sendable {
    case io
    case memory32(prefetchable: Bool)
    case memory64(prefetchable: Bool)
}

/// A sized BAR.
public struct PCIBAR: Equatable, Sendable {
    /// Bit 0: 1 = I/O space.
    static let ioSpaceBit: UInt32 = 1 << 0
    /// Bits [2:1] of a memory BAR: 00 = 32-bit, 10 = 64-bit (01 is the
    /// obsolete below-1-MiB type).
    static let memoryTypeShift: UInt32 = 1
    static let memoryTypeMask: UInt32 = 0b11
    static let memoryType32: UInt32 = 0b00
    static let memoryType64: UInt32 = 0b10
    static let prefetchableBit: UInt32 = 1 << 3
    /// Low bits that are flags, not address, in each kind.
    static let memoryFlagsMask: UInt32 = 0xF
    static let ioFlagsMask: UInt32 = 0x3

    /// BAR index (0...5); a 64-bit BAR also uses `index + 1`.
    public let index: Int
    public let kind: PCIBARKind
    /// A power of two: the BAR decodes `size` bytes aligned to `size`.
    public let size: UInt64

    public var isMemory: Bool {
        if case .io = kind { return false }
        return true
    }

    public var is64Bit: Bool {
        if case .memory64 = kind { return true }
        return false
    }
}

/// A memory BAR placed in a host bridge window.
public struct AssignedBAR: Equatable, Sendable {
    public let bar: PCIBAR
    /// What the BAR register holds.
    public let pciAddress: UInt64
    /// Where the CPU reaches it (map this as Device memory).
    public let cpuAddress: PhysAddr
}

/// Hands out naturally aligned ranges of a host bridge window, bottom up.
/// Boot-time BAR placement never frees, so a bump pointer is enough.
public struct PCIWindowAllocator: Sendable {
    public let window: PCIWindow
    /// Next free PCI address.
    public private(set) var next: UInt64

    public init(window: PCIWindow) {
        self.window = window
        next = window.pciAddress
    }

    /// `size` (a power of two) bytes aligned to `size`: (PCI, CPU) addresses.
    public mutating func allocate(size: UInt64) throws(PCIError) -> (pci: UInt64, cpu: PhysAddr) {
        try take(size)
    }

    /// `allocate`'s body, inlined into `assignMemoryBAR`, its one caller on
    /// the board (the public wrapper is then unused there and dropped).
    @_transparent
    mutating func take(_ size: UInt64) throws(PCIError) -> (pci: UInt64, cpu: PhysAddr) {
        guard size > 0, size & (size - 1) == 0 else { throw .sizeNotPowerOfTwo(size) }
        let mask = size - 1
        guard next <= UInt64.max - mask else { throw .windowExhausted(size: size) }
        let start = (next + mask) & ~mask
        let windowEnd = window.pciAddress + window.size
        guard start >= next, start <= windowEnd, windowEnd - start >= size else {
            throw .windowExhausted(size: size)
        }
        next = start + size
        return (start, window.cpuAddress.adding(start - window.pciAddress))
    }
}

extension PCIConfigAccess {
    /// Reads the command register.
    public func command(of function: BDF) -> PCICommand {
        PCICommand(rawValue: UInt16(truncatingIfNeeded: read32(function, PCIConfigRegister.commandStatus)))
    }

    /// Writes the command register. The status half is written as zero:
    /// its error bits are write-1-to-clear, and echoing them back would
    /// erase a device's pending error report.
    public func setCommand(_ command: PCICommand, of function: BDF) {
        write32(function, PCIConfigRegister.commandStatus, UInt32(command.rawValue))
    }

    /// Turns on memory decoding and DMA (bus master) for the function,
    /// keeping the other command bits.
    public func enableMemoryAndBusMaster(_ function: BDF) {
        // Built with `union`, not an array literal: the board allocates no array for it.
        setCommand(command(of: function).union(.memorySpace).union(.busMaster), of: function)
    }

    /// Sizes BAR `index` of `function` by the standard probe: write all
    /// ones, read back, restore. Decoding is switched off meanwhile so the
    /// transient all-ones address never claims a bus cycle. `nil` for an
    /// unimplemented BAR (reads back 0).
    public func sizeBAR(_ index: Int, of function: BDF) throws(PCIError) -> PCIBAR? {
        try probeBAR(index, of: function)
    }

    /// `sizeBAR`'s body, inlined into `assignMemoryBAR`, its one caller on
    /// the board (the public wrapper is then unused there and dropped).
    @_transparent
    func probeBAR(_ index: Int, of function: BDF) throws(PCIError) -> PCIBAR? {
        guard let identity = PCIFunction(reading: self, at: function) else { throw .noFunction(function) }
        guard index >= 0, index < identity.barCount else { throw .barIndexOutOfRange(index) }
        let offset = PCIConfigRegister.bar0 + 4 * index
        let original = read32(function, offset)

        let kind: PCIBARKind
        if original & PCIBAR.ioSpaceBit != 0 {
            kind = .io
        } else {
            let prefetchable = original & PCIBAR.prefetchableBit != 0
            switch (original >> PCIBAR.memoryTypeShift) & PCIBAR.memoryTypeMask {
            case PCIBAR.memoryType32: kind = .memory32(prefetchable: prefetchable)
            case PCIBAR.memoryType64:
                guard index + 1 < identity.barCount else { throw .barIndexOutOfRange(index + 1) }
                kind = .memory64(prefetchable: prefetchable)
            default: throw .unsupportedBARType(raw: original)
            }
        }

        let savedCommand = command(of: function)
        setCommand(savedCommand.subtracting(.ioSpace).subtracting(.memorySpace), of: function)
        write32(function, offset, UInt32.max)
        let low = read32(function, offset)
        write32(function, offset, original)
        var mask: UInt64
        switch kind {
        case .io:
            // Only 16 address bits exist for I/O; upper bits may read 0.
            mask = UInt64(low & ~PCIBAR.ioFlagsMask & 0xFFFF)
        case .memory32:
            mask = UInt64(low & ~PCIBAR.memoryFlagsMask)
        case .memory64:
            let originalHigh = read32(function, offset + 4)
            write32(function, offset + 4, UInt32.max)
            let high = read32(function, offset + 4)
            write32(function, offset + 4, originalHigh)
            mask = UInt64(high) << 32 | UInt64(low & ~PCIBAR.memoryFlagsMask)
        }
        setCommand(savedCommand, of: function)
        guard mask != 0 else { return nil }
        // The lowest writable address bit is the size, even if a broken
        // device reports a non-contiguous mask.
        return PCIBAR(index: index, kind: kind, size: mask & (~mask &+ 1))
    }

    /// Programs a memory BAR with `pciAddress` (aligned to the BAR's size;
    /// below 4 GiB for a 32-bit BAR). Decoding stays as it was.
    public func program(_ bar: PCIBAR, of function: BDF, at pciAddress: UInt64) throws(PCIError) {
        try writeBAR(bar, of: function, at: pciAddress)
    }

    /// `program`'s body, inlined into `assignMemoryBAR` as `probeBAR` is.
    @_transparent
    func writeBAR(_ bar: PCIBAR, of function: BDF, at pciAddress: UInt64) throws(PCIError) {
        guard bar.isMemory else { throw .unsupportedBARType(raw: PCIBAR.ioSpaceBit) }
        guard pciAddress & (bar.size - 1) == 0 else { throw .misalignedBARAddress(pciAddress, size: bar.size) }
        if !bar.is64Bit {
            guard pciAddress <= UInt64(UInt32.max) - (bar.size - 1) else { throw .addressAbove4GiB(pciAddress) }
        }
        let offset = PCIConfigRegister.bar0 + 4 * bar.index
        // The low flag bits are read-only; writing the address alone is enough.
        write32(function, offset, UInt32(truncatingIfNeeded: pciAddress))
        if bar.is64Bit { write32(function, offset + 4, UInt32(truncatingIfNeeded: pciAddress >> 32)) }
    }

    /// Sizes memory BAR `index`, places it in `window` and programs it.
    /// `nil` if the BAR is unimplemented. Nothing is written when it fails.
    public func assignMemoryBAR(_ index: Int, of function: BDF,
                                from window: inout PCIWindowAllocator) throws(PCIError) -> AssignedBAR? {
        guard let bar = try probeBAR(index, of: function) else { return nil }
        switch (bar.kind, window.window.space) {
        case (.io, _): throw .unsupportedBARType(raw: read32(function, PCIConfigRegister.bar0 + 4 * index))
        case (_, .io), (_, .configuration): throw .windowUnsuitable(window.window.space)
        case (.memory32, .memory64): throw .windowUnsuitable(.memory64)
        default: break
        }
        var trial = window
        let (pci, cpu) = try trial.take(bar.size)
        try writeBAR(bar, of: function, at: pci)
        window = trial
        return AssignedBAR(bar: bar, pciAddress: pci, cpuAddress: cpu)
    }
}
