import AArch64
import ArchC
import Platform

/// The console: the UART `/chosen/stdout-path` names (PL011 or 8250
/// family), driven by Platform's transmit helpers over MMIO. Until the DTB
/// has been read there is no console and output is dropped (nothing is
/// printed to an address the DTB has not named), and so is output to a UART
/// kind this image has no driver for.
///
/// Board output is StaticString plus hex/decimal printers: no String
/// interpolation in the image (EMBEDDED.md: it costs ~17 KB).
enum Console {
    enum Device {
        case none
        case pl011(PL011<MMIORegisterBlock>)
        case ns16550(NS16550<MMIORegisterBlock>)
    }

    nonisolated(unsafe) static var device = Device.none

    /// Polls of the UART's status before a byte is dropped: a wedged UART
    /// must not hang the hypervisor.
    static let spinLimit = 1_000_000

    static func select(_ uart: ConsoleUART?) {
        guard let uart else { device = .none; return }
        let registers = MMIORegisterBlock(base: uart.registers.base.raw)
        switch uart.kind {
        case .pl011: device = .pl011(PL011(registers: registers, spinLimit: spinLimit))
        case .ns16550(let layout): device = .ns16550(NS16550(registers: registers, layout: layout, spinLimit: spinLimit))
        case .unsupported: device = .none
        }
    }

    static func putByte(_ byte: UInt8) {
        if byte == 0x0A { putRaw(0x0D) }
        putRaw(byte)
    }

    private static func putRaw(_ byte: UInt8) {
        switch device {
        case .none: break
        case .pl011(let uart): uart.write(byte)
        case .ns16550(let uart): uart.write(byte)
        }
    }

    static func put(_ s: StaticString) {
        s.withUTF8Buffer { for b in $0 { putByte(b) } }
    }

    static func line(_ s: StaticString) { put(s); putByte(0x0A) }

    static func hex(_ value: UInt64, digits: Int = 0) {
        put("0x")
        var started = false
        var shift = 60
        while shift >= 0 {
            let nibble = UInt8((value >> UInt64(shift)) & 0xF)
            if nibble != 0 || started || shift / 4 < digits || shift == 0 {
                started = true
                putByte(nibble < 10 ? 0x30 + nibble : 0x57 + nibble)
            }
            shift -= 4
        }
    }

    /// `base + size`, both in hex: how every address range is printed.
    static func range(_ base: UInt64, _ size: UInt64) {
        hex(base)
        put(" + ")
        hex(size)
    }

    static func decimal(_ value: UInt64) {
        var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 digits is enough for UInt64
        var v = value
        var count = 0
        withUnsafeMutableBytes(of: &buffer) { digits in
            repeat {
                digits[count] = 0x30 + UInt8(v % 10)
                v /= 10
                count += 1
            } while v != 0
            while count > 0 {
                count -= 1
                putByte(digits[count])
            }
        }
    }

    static func decimal(_ value: Int) {
        if value < 0 { putByte(0x2D); decimal(UInt64(0 &- Int64(value))) } else { decimal(UInt64(value)) }
    }

    /// Bytes of a NUL-free byte buffer (e.g. a DTB string).
    static func bytes(_ buffer: UnsafeRawBufferPointer) {
        for b in buffer { putByte(b) }
    }
}

/// `putchar` (Boot/runtime.c) forwards here, so the stdlib's own messages
/// reach the same UART.
@c(hv_console_putc)
func hvConsolePutc(_ byte: UInt8) {
    Console.putByte(byte)
}
