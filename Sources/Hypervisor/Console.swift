import AArch64
import ArchC
import Platform

/// The console: the UART `/chosen/stdout-path` names (PL011 or 8250
/// family), driven by Platform's transmitters over MMIO. Until the DTB
/// has been read there is no console and output is dropped (nothing is
/// printed to an address the DTB has not named), and so is output to a UART
/// kind this image has no driver for.
///
/// Board output is StaticString plus hex/decimal printers: no String
/// interpolation in the image (EMBEDDED.md: it costs ~17 KB).
enum Console {
    enum Device: ByteTransmitter {
        case none
        case pl011(PL011<MMIORegisterBlock>)
        case ns16550(NS16550<MMIORegisterBlock>)

        var spinLimit: Int { Console.spinLimit }

        func tryWrite(_ byte: UInt8) -> Bool {
            switch self {
            case .none: return true   // no console: the byte is dropped at once, never waited for
            case .pl011(let uart): return uart.tryWrite(byte)
            case .ns16550(let uart): return uart.tryWrite(byte)
            }
        }
    }

    nonisolated(unsafe) static var device = Device.none

    /// Polls of the UART's status before a byte is dropped: a wedged UART
    /// must not hang the hypervisor.
    static let spinLimit = 1_000_000

    static func select(_ uart: ConsoleUART?) {
        guard let uart else { device = .none; return }
        let registers = MMIORegisterBlock(base: uart.registers.base.raw)
        switch uart.kind {
        case .pl011: device = .pl011(PL011(registers: registers))
        case .ns16550(let layout): device = .ns16550(NS16550(registers: registers, layout: layout))
        case .unsupported: device = .none
        }
    }

    static func putByte(_ byte: UInt8) { device.writeCharacter(byte) }

    /// Text goes to the printers as the address of its first byte alone: a
    /// StaticString's `utf8Start` points at NUL-terminated UTF-8 (so the
    /// stdlib documents it), the printers stop at the NUL, and each call site
    /// loads one address instead of a StaticString's three words (start,
    /// length, flags). These wrappers are inlined, so at
    /// a literal the representation test is decided at compile time; only a
    /// StaticString stored as a scalar (no address) takes the `device.write`
    /// path. A one-byte literal (")") goes out as that byte, a constant in
    /// one register, and `line("")` as the newline alone, also decided at
    /// compile time.
    @_transparent
    static func put(_ s: StaticString) {
        if s.hasPointerRepresentation {
            if s.utf8CodeUnitCount == 1 { putByte(s.utf8Start.pointee) } else { hvConsolePut(s.utf8Start) }
        } else {
            device.write(s)
        }
    }

    @_transparent
    static func line(_ s: StaticString) {
        if s.hasPointerRepresentation {
            if s.utf8CodeUnitCount == 0 { putByte(0x0A) } else { hvConsoleLine(s.utf8Start) }
        } else {
            put(s)
            putByte(0x0A)
        }
    }

    /// A computed StaticString (a name a switch returns, a reason): one call,
    /// where the inlined `put` would test the representation at the call site.
    @inline(never)
    static func putComputed(_ s: StaticString) { device.write(s) }

    @inline(never)
    static func lineComputed(_ s: StaticString) {
        device.write(s)
        putByte(0x0A)
    }

    /// Entry `index` of `list`, a literal of NUL-separated names (the index is
    /// always below their number: the caller masks it).
    @inline(never)
    static func putEntry(_ list: UnsafePointer<UInt8>, _ index: Int) {
        var text = list
        var separators = index
        while separators > 0 {
            if text.pointee == 0 { separators -= 1 }
            text += 1
        }
        hvConsolePut(text)
    }

    /// Bytes that are not a literal (a node, property or symbol name), one
    /// loop for every such print.
    @inline(never)
    static func bytes(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        while i < bytes.count {
            putByte(bytes[i])
            i &+= 1
        }
    }

    static func hex(_ value: UInt64) { device.writeHex(value) }
    static func hexDigits(_ value: UInt64, _ count: Int) { device.writeHexDigits(value, minimumDigits: count) }
    static func decimal(_ value: UInt64) { device.writeDecimal(value) }

    /// Prints `template` with each `%` and the letter after it replaced by
    /// the next of `a` to `e`: `%x` in hex (`0x…`, as `hex`), `%d` in
    /// decimal, `%y` as `yes` or `no` (a `flag`), and `%2`, `%4`, `%6` as at
    /// least that many hex digits alone (as `hexDigits`). Every other byte
    /// goes out as `put` sends it, `\n` included. One call instead of a run
    /// of `put`, `hex` and `decimal` calls: the board's messages are data,
    /// not code. Templates hold no other `%`; an address range is `%x + %x`
    /// (base, size). A template is never one character long (it would have
    /// no address: see `put`). The template goes on as its address alone.
    @_transparent
    static func say(_ template: StaticString, _ a: UInt64 = 0, _ b: UInt64 = 0, _ c: UInt64 = 0,
                    _ d: UInt64 = 0, _ e: UInt64 = 0) {
        hvConsoleSay(template.utf8Start, a, b, c, d, e)
    }

    /// A yes/no answer as a `%y` value.
    static func flag(_ b: Bool) -> UInt64 { b ? 1 : 0 }
}

/// `putchar` (Boot/runtime.c) forwards here, so the stdlib's own messages
/// reach the same UART.
@c(hv_console_putc)
func hvConsolePutc(_ byte: UInt8) {
    Console.putByte(byte)
}

/// `Console.say` for a NUL-terminated template. A C name, so Linker/hv.ld can
/// put it in the gap before the vectors (code there does not push the rest on).
@c(hv_console_say)
func hvConsoleSay(_ template: UnsafePointer<UInt8>, _ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64,
                  _ e: UInt64) {
    var values = (a, b, c, d, e)
    var i = 0
    while template[i] != 0 {
        let byte = template[i]
        i += 1
        guard byte == UInt8(ascii: "%"), template[i] != 0 else { Console.putByte(byte); continue }
        switch template[i] {
        case UInt8(ascii: "x"): Console.hex(values.0)
        case UInt8(ascii: "y"): Console.put(values.0 != 0 ? "yes" : "no")
        case UInt8(ascii: "2"), UInt8(ascii: "4"), UInt8(ascii: "6"):
            Console.hexDigits(values.0, Int(template[i] - UInt8(ascii: "0")))
        default: Console.decimal(values.0)
        }
        values = (values.1, values.2, values.3, values.4, 0)
        i += 1
    }
}

/// The bytes from `text` up to its NUL (`Console.put`). C names for this and
/// `hvConsoleLine`, so Linker/hv.ld can put them in the gap before the vectors.
@c(hv_console_put)
func hvConsolePut(_ text: UnsafePointer<UInt8>) {
    var i = 0
    while text[i] != 0 {
        Console.putByte(text[i])
        i += 1
    }
}

/// `Console.line` for a NUL-terminated text.
@c(hv_console_line)
func hvConsoleLine(_ text: UnsafePointer<UInt8>) {
    hvConsolePut(text)
    Console.putByte(0x0A)
}
