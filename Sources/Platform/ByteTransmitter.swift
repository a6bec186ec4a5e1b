/// The transmit side of a console UART: one byte at a time, with a bounded
/// wait, so a wedged UART drops output instead of hanging the hypervisor.
/// The text and number printers below are written once for every UART kind.
public protocol ByteTransmitter {
    /// Polls of the UART's status before a byte is dropped.
    var spinLimit: Int { get }
    /// Sends one byte if the UART can take it now; `false` if it cannot.
    func tryWrite(_ byte: UInt8) -> Bool
}

extension ByteTransmitter {
    /// Sends one byte, waiting at most `spinLimit` polls; `false` if dropped.
    @discardableResult
    public func write(_ byte: UInt8) -> Bool {
        var polls = 0
        while polls < spinLimit {
            if tryWrite(byte) { return true }
            polls += 1
        }
        return false
    }

    /// Sends a byte of text: `\n` goes out as `\r\n` for terminals.
    public func writeCharacter(_ byte: UInt8) {
        if byte == UInt8(ascii: "\n") { write(UInt8(ascii: "\r")) }
        write(byte)
    }

    /// Sends text, turning `\n` into `\r\n`.
    public func write(_ text: StaticString) {
        let bytes = ByteString.bytes(text)
        var index = 0
        while index < bytes.count {
            writeCharacter(bytes[index])
            index += 1
        }
    }

    /// Sends `value` as `0x` and its hex digits, at least `minimumDigits` of them
    /// (leading zeros pad up to that; a value never loses digits).
    public func writeHex(_ value: UInt64, minimumDigits: Int = 1) {
        write(UInt8(ascii: "0"))
        write(UInt8(ascii: "x"))
        writeHexDigits(value, minimumDigits: minimumDigits)
    }

    /// The hex digits of `value` alone (lower case), at least `minimumDigits`.
    public func writeHexDigits(_ value: UInt64, minimumDigits: Int) {
        let significant = (UInt64.bitWidth - value.leadingZeroBitCount + 3) / 4
        // Two-argument max: the variadic one builds an array on every call.
        var shift = (min(max(max(significant, minimumDigits), 1), 16) - 1) * 4
        while shift >= 0 {
            let nibble = UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xF
            write(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
            shift -= 4
        }
    }

    /// Sends `value` in decimal.
    public func writeDecimal(_ value: UInt64) {
        // 20 digits hold UInt64.max; most significant first, so find the largest power first.
        var power: UInt64 = 1
        while power <= value / 10 { power *= 10 }
        var rest = value
        while true {
            write(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest / power))
            rest %= power
            if power == 1 { return }
            power /= 10
        }
    }

    /// Sends `value` in decimal, with a `-` when negative (`Int.min` included).
    public func writeDecimal(_ value: Int) {
        if value < 0 { write(UInt8(ascii: "-")) }
        writeDecimal(UInt64(value.magnitude))
    }
}
