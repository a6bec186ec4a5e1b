import Platform

/// The console: a PL011 whose base address comes from the DTB's
/// `/chosen/stdout-path`. Until the DTB has been read there is no console and
/// output is dropped (nothing is printed to an address the DTB has not named).
///
/// Board output is StaticString plus hex/decimal printers: no String
/// interpolation in the image (EMBEDDED.md: it costs ~17 KB).
enum Console {
    nonisolated(unsafe) static var uart: PL011<MMIORegisterBlock>?

    static func putByte(_ byte: UInt8) { uart?.writeCharacter(byte) }
    static func put(_ s: StaticString) { uart?.write(s) }
    static func line(_ s: StaticString) { put(s); putByte(0x0A) }
    static func hex(_ value: UInt64) { uart?.writeHex(value) }
    static func hexDigits(_ value: UInt64, _ count: Int) { uart?.writeHexDigits(value, minimumDigits: count) }
    static func decimal(_ value: UInt64) { uart?.writeDecimal(value) }
    static func decimal(_ value: Int) { uart?.writeDecimal(value) }

    /// `base + size`, both in hex: how every address range is printed.
    static func range(_ base: UInt64, _ size: UInt64) {
        hex(base)
        put(" + ")
        hex(size)
    }
}

/// `putchar` (Boot/runtime.c) forwards here, so the stdlib's own messages
/// reach the same UART.
@c(hv_console_putc)
func hvConsolePutc(_ byte: UInt8) {
    Console.putByte(byte)
}
