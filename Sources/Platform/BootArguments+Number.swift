/// Numbers in `/chosen/bootargs`, written `key=0x<hex>` (for example
/// `hv.kernel=0x50000000`, where the loader put the host's kernel).
extension FlattenedDeviceTree {
    /// The value of the first word that starts with `key` (which includes the
    /// `=`) followed by `0x` and 1 to 16 hex digits; nil when no word starts
    /// with `key`, or the first one that does is not such a number (a value
    /// that does not fit 64 bits is refused, not truncated).
    /// Inlined into `LinuxHost.run`, its one caller on the board.
    @_transparent
    public func bootArgumentNumber(_ key: StaticString) -> UInt64? {
        guard let value = bootArgumentWord(key, prefixOnly: true) else { return nil }
        return BootArgumentsSyntax.hexNumber(value)
    }
}

extension BootArgumentsSyntax {
    @usableFromInline static let maximumHexDigits = 16

    /// `0x` and 1...16 hex digits filling `bytes` exactly.
    @_transparent @usableFromInline
    static func hexNumber(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        let digits = bytes.count - 2
        guard digits >= 1, digits <= maximumHexDigits, bytes[0] == UInt8(ascii: "0"),
              bytes[1] == UInt8(ascii: "x") || bytes[1] == UInt8(ascii: "X") else { return nil }
        var value: UInt64 = 0
        var index = 2
        while index < bytes.count {
            guard let digit = hexDigit(bytes[index]) else { return nil }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    @_transparent @usableFromInline
    static func hexDigit(_ c: UInt8) -> UInt64? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt64(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt64(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt64(c - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
