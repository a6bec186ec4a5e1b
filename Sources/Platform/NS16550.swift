import AArch64

/// Byte and halfword register access, for devices whose registers are
/// narrower than 32 bits (an 8250-family UART with `reg-io-width` 1 or 2).
/// Kept apart from `RegisterBlock` so the SMMU and PCI blocks, whose
/// registers are all 32/64-bit, need not pretend otherwise.
public protocol NarrowRegisterBlock {
    func read8(_ offset: Int) -> UInt8
    func write8(_ offset: Int, _ value: UInt8)
    func read16(_ offset: Int) -> UInt16
    func write16(_ offset: Int, _ value: UInt16)
}

/// Where an 8250-family UART's registers are: register `n` is at byte
/// offset `n << regShift`, accessed `ioWidth` bytes wide (Linux binding
/// `serial/8250.yaml`: `reg-shift`, `reg-io-width`).
public struct NS16550Layout: Equatable, Sendable {
    /// `reg-shift` above this would put LSR (register 5) more than 160 bytes
    /// past THR; no binding or SoC spaces registers that far apart.
    public static let maximumRegShift: UInt32 = 5
    public let regShift: UInt32
    /// 1, 2 or 4 bytes.
    public let ioWidth: UInt32

    /// `nil` for a shift or width the binding does not allow.
    public init?(regShift: UInt32, ioWidth: UInt32) {
        guard regShift <= NS16550Layout.maximumRegShift, ioWidth == 1 || ioWidth == 2 || ioWidth == 4 else {
            return nil
        }
        self.regShift = regShift
        self.ioWidth = ioWidth
    }

    /// Byte offset of register `index` (0 = THR, 5 = LSR).
    public func offset(of index: Int) -> Int { index << Int(regShift) }
}

/// An 8250/16550-compatible UART, transmit side only: write THR once
/// LSR.THRE says the holding register is empty (National Semiconductor
/// PC16550D datasheet, registers 0 and 5). The DesignWare APB UART and the
/// BCM2835 auxiliary mini UART present the same two registers.
public struct NS16550<Registers: RegisterBlock & NarrowRegisterBlock>: ByteTransmitter {
    public let registers: Registers
    public let layout: NS16550Layout
    /// Polls of LSR before a byte is dropped: a wedged UART must not hang
    /// the hypervisor.
    public let spinLimit: Int

    public init(registers: Registers, layout: NS16550Layout, spinLimit: Int = 1 << 20) {
        self.registers = registers
        self.layout = layout
        self.spinLimit = spinLimit
    }

    func read(_ index: Int) -> UInt32 {
        let offset = layout.offset(of: index)
        switch layout.ioWidth {
        case 1: return UInt32(registers.read8(offset))
        case 2: return UInt32(registers.read16(offset))
        default: return registers.read32(offset)
        }
    }

    func write(_ index: Int, _ value: UInt8) {
        let offset = layout.offset(of: index)
        switch layout.ioWidth {
        case 1: registers.write8(offset, value)
        case 2: registers.write16(offset, UInt16(value))
        default: registers.write32(offset, UInt32(value))
        }
    }

    /// Sends one byte if the transmit holding register is empty.
    public func tryWrite(_ byte: UInt8) -> Bool {
        guard read(NS16550Register.lineStatus) & NS16550Register.transmitHoldingEmpty != 0 else { return false }
        write(NS16550Register.transmitHolding, byte)
        return true
    }
}

/// 16550 register indices (before `reg-shift`) and bits (PC16550D, table II).
public enum NS16550Register {
    /// THR (write, DLAB = 0).
    public static let transmitHolding = 0
    /// LSR.
    public static let lineStatus = 5
    /// LSR.THRE, bit 5: THR can take a byte.
    public static let transmitHoldingEmpty: UInt32 = 1 << 5
}
