/// Byte-level comparisons of node and property names with `StaticString`
/// literals: the board has no `String`, and device tree names are ASCII.
@usableFromInline
enum ByteString {
    /// A literal's UTF-8 bytes, read in place: `withUTF8Buffer` cost each
    /// caller a closure and a wrapper that passed the result through memory.
    /// The compiler stores every string literal, one character long or
    /// longer, with its bytes; `utf8Start` traps on a StaticString kept as a
    /// lone scalar, as `withUTF8Buffer` did on the board.
    @_transparent @usableFromInline static func bytes(_ literal: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
    }

    static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        equals(ByteString.bytes(literal), bytes)
    }

    /// Whether `bytes` equals one of the NUL-separated entries of `list`.
    static func listContains(_ list: StaticString, _ bytes: UnsafeRawBufferPointer) -> Bool {
        index(of: bytes, inList: list) != nil
    }

    /// Which of the NUL-separated entries of `list` (0 for the first) `bytes` equals.
    /// One pass over the list: each entry is compared byte by byte as it
    /// is read, the list's end counting as the last entry's NUL.
    static func index(of bytes: UnsafeRawBufferPointer, inList list: StaticString) -> Int? {
        let all = ByteString.bytes(list)
        var entry = 0
        // How many bytes of the current entry equal the start of `bytes`; -1 after a difference.
        var matched = 0
        var i = 0
        while i <= all.count {
            let byte = i < all.count ? all[i] : 0
            i += 1
            if byte == 0 {
                if matched == bytes.count { return entry }
                entry += 1
                matched = 0
            } else if matched >= 0 && matched < bytes.count && bytes[matched] == byte {
                matched += 1
            } else {
                matched = -1
            }
        }
        return nil
    }

    @usableFromInline
    static func equals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var i = 0
        while i < a.count {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
    }

    static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        let text = ByteString.bytes(literal)
        return text.count <= bytes.count && equals(text, slice(bytes, 0, text.count))
    }

    /// Index of the first `byte` in `bytes`, or `bytes.count`.
    @usableFromInline
    static func firstIndex(of byte: UInt8, in bytes: UnsafeRawBufferPointer) -> Int {
        var i = 0
        while i < bytes.count && bytes[i] != byte { i += 1 }
        return i
    }

    @usableFromInline @inline(__always) static func slice(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }
}
