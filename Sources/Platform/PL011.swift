import AArch64

/// The Arm PL011 UART, transmit side only (PrimeCell UART PL011 TRM,
/// DDI 0183, section 3.3): enough for a boot console.
public struct PL011<Registers: RegisterBlock>: ByteTransmitter {
    public let registers: Registers
    /// Polls of FR before a byte is dropped: a wedged UART must not hang
    /// the hypervisor (QEMU's never fills).
    public let spinLimit: Int

    public init(registers: Registers, spinLimit: Int = 1 << 20) {
        self.registers = registers
        self.spinLimit = spinLimit
    }

    /// Sends one byte if the transmit FIFO has room; `false` if it is full.
    public func tryWrite(_ byte: UInt8) -> Bool {
        guard registers.read32(PL011Register.flags) & PL011Register.transmitFIFOFull == 0 else { return false }
        registers.write32(PL011Register.data, UInt32(byte))
        return true
    }
}

/// PL011 register offsets and bits (DDI 0183, table 3-1 and section 3.3.3).
public enum PL011Register {
    public static let data = 0x00
    public static let flags = 0x18
    /// FR.TXFF: the transmit FIFO is full.
    public static let transmitFIFOFull: UInt32 = 1 << 5
}
