import ArchC

/// The console: a PL011 whose base address comes from the DTB's
/// `/chosen/stdout-path`. Until the DTB has been read there is no console and
/// output is dropped (nothing is printed to an address the DTB has not named).
///
/// Board output is StaticString plus hex/decimal printers: no String
/// interpolation in the image (EMBEDDED.md: it costs ~17 KB).
enum Console {
    nonisolated(unsafe) static var uartBase: UInt64 = 0
    static let dataRegister: UInt64 = 0x000
    static let flagRegister: UInt64 = 0x018
    static let transmitFIFOFull: UInt32 = 1 << 5

    static func putByte(_ byte: UInt8) {
        guard uartBase != 0 else { return }
        if byte == 0x0A { putRaw(0x0D) }
        putRaw(byte)
    }

    private static func putRaw(_ byte: UInt8) {
        // Bounded: a wedged UART must not hang the hypervisor.
        var spins = 0
        while arch_mmio_read32(uartBase + flagRegister) & transmitFIFOFull != 0 && spins < 1_000_000 {
            spins += 1
        }
        arch_mmio_write32(uartBase + dataRegister, UInt32(byte))
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
