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
        guard let arguments = bootArguments else { return false }
        return word.withUTF8Buffer { needle in
            guard !needle.isEmpty else { return false }
            var start = 0
            while start < arguments.count {
                var end = start
                while end < arguments.count && arguments[end] != BootArgumentsSyntax.separator { end += 1 }
                if end - start == needle.count {
                    var same = true
                    for i in 0..<needle.count where arguments[start + i] != needle[i] { same = false; break }
                    if same { return true }
                }
                start = end + 1
            }
            return false
        }
    }
}

enum BootArgumentsSyntax {
    static let separator = UInt8(ascii: " ")
}
