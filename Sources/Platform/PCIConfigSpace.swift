import AArch64

/// 32-bit access to PCI configuration space, one function at a time.
/// `offset` is a 4-byte aligned register offset below 4096.
public protocol PCIConfigAccess {
    func read32(_ function: BDF, _ offset: Int) -> UInt32
    func write32(_ function: BDF, _ offset: Int, _ value: UInt32)
}

/// Register offsets of the configuration header common to type 0 and 1
/// (PCIe Base 5.0, section 7.5.1).
public enum PCIConfigRegister {
    /// Vendor ID [15:0], Device ID [31:16].
    public static let id = 0x00
    /// Command [15:0], Status [31:16].
    public static let commandStatus = 0x04
    /// Revision ID [7:0], Class Code [31:8].
    public static let classRevision = 0x08
    /// Cache line [7:0], latency [15:8], Header Type [23:16], BIST [31:24].
    public static let headerDword = 0x0C
    public static let bar0 = 0x10
    public static let configSpaceSize = 4096

    /// Vendor ID read when no function responds.
    public static let absentVendor: UInt16 = 0xFFFF
    static let headerTypeShift: UInt32 = 16
    static let headerLayoutMask: UInt8 = 0x7F
    static let multiFunctionBit: UInt8 = 0x80
}

/// Command register bits (PCIe Base 5.0, section 7.5.1.1.3).
public struct PCICommand: OptionSet, Equatable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let ioSpace = PCICommand(rawValue: 1 << 0)
    public static let memorySpace = PCICommand(rawValue: 1 << 1)
    public static let busMaster = PCICommand(rawValue: 1 << 2)
}

/// ECAM address bits (PCIe Base 5.0, section 7.2.2, table 7-1): 1 MiB per
/// bus, 32 KiB per device, 4 KiB per function.
public enum ECAMLayout {
    public static let busShift = 20
    public static let deviceShift = 15
    public static let functionShift = 12
}

/// Enhanced Configuration Access Mechanism over one `RegisterBlock` covering
/// the host bridge's ECAM region (PCIe Base 5.0, section 7.2.2): function
/// (b, d, f) register r lives at `(b - firstBus) << 20 | d << 15 | f << 12 | r`.
public struct PCIECAM<Registers: RegisterBlock>: PCIConfigAccess {
    public let registers: Registers
    public let firstBus: UInt8
    public let lastBus: UInt8

    public init(registers: Registers, firstBus: UInt8, lastBus: UInt8) {
        precondition(firstBus <= lastBus, "empty bus range")
        self.registers = registers
        self.firstBus = firstBus
        self.lastBus = lastBus
    }

    /// ECAM for the bridge the DTB describes; `registers` must map `bridge.ecam`.
    public init(registers: Registers, bridge: PCIHostBridge) {
        self.init(registers: registers, firstBus: bridge.firstBus, lastBus: bridge.lastBus)
    }

    public func covers(_ function: BDF) -> Bool { function.bus >= firstBus && function.bus <= lastBus }

    /// Byte offset of a register inside the ECAM region; `nil` for a bus
    /// outside the range (the region does not reach it).
    public func offset(of function: BDF, _ register: Int) -> Int? {
        guard covers(function) else { return nil }
        return Int(function.bus - firstBus) << ECAMLayout.busShift | Int(function.device) << ECAMLayout.deviceShift
            | Int(function.function) << ECAMLayout.functionShift | register
    }

    /// Buses outside the range read as "no device" and ignore writes, the
    /// way a real root complex answers an unclaimed configuration request.
    public func read32(_ function: BDF, _ offset: Int) -> UInt32 {
        precondition(offset & 3 == 0 && offset >= 0 && offset < PCIConfigRegister.configSpaceSize,
                     "config register offset")
        guard let at = self.offset(of: function, offset) else { return UInt32.max }
        return registers.read32(at)
    }

    public func write32(_ function: BDF, _ offset: Int, _ value: UInt32) {
        precondition(offset & 3 == 0 && offset >= 0 && offset < PCIConfigRegister.configSpaceSize,
                     "config register offset")
        guard let at = self.offset(of: function, offset) else { return }
        registers.write32(at, value)
    }
}
