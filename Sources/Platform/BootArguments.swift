/// `/chosen/bootargs`: the command line the loader hands over (QEMU's
/// `-append`, U-Boot's `bootargs`). The image looks for whole,
/// space-separated words in it, such as `hv.exit=semihosting`.
extension FlattenedDeviceTree {
    /// The bootargs bytes without the terminating NUL, or nil when absent or
    /// not a terminated string.
    public var bootArguments: UnsafeRawBufferPointer? {
        guard let chosen = node(atPath: "/chosen"), let property = property("bootargs", of: chosen) else { return nil }
        return try? string(property)
    }

    /// True when `word` appears in bootargs as a whole word (between spaces
    /// or the ends): `hv.exit=semihosting` does not match `xhv.exit=semihosting2`.
    public func bootArgumentsContain(_ word: StaticString) -> Bool {
        bootArgumentWord(word, prefixOnly: false) != nil
    }

    /// The rest of the first word of bootargs that is `key` (or, with
    /// `prefixOnly`, starts with it), after the key; nil when no word is, or
    /// `key` is empty. One optional buffer, so it returns in registers (the
    /// bootargs, the key's end and the word's end came back through memory).
    @_transparent @usableFromInline
    func bootArgumentWord(_ key: StaticString, prefixOnly: Bool) -> UnsafeRawBufferPointer? {
        guard let arguments = bootArguments else { return nil }
        let needle = ByteString.bytes(key)
        guard !needle.isEmpty else { return nil }
        var start = 0
        while start < arguments.count {
            let end = start + ByteString.firstIndex(of: BootArgumentsSyntax.separator,
                                                    in: ByteString.slice(arguments, start, arguments.count))
            let length = end - start
            if (length == needle.count || (prefixOnly && length > needle.count))
                && ByteString.equals(ByteString.slice(arguments, start, start + needle.count), needle) {
                return ByteString.slice(arguments, start + needle.count, end)
            }
            start = end + 1
        }
        return nil
    }
}

@usableFromInline
enum BootArgumentsSyntax {
    @usableFromInline static let separator = UInt8(ascii: " ")
}
