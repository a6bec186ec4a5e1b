/// Byte-level comparisons of node and property names with `StaticString`
/// literals: the board has no `String`, and device tree names are ASCII.
enum ByteString {
    /// A literal's UTF-8 bytes, read in place: `withUTF8Buffer` cost each
    /// caller a closure and a wrapper that passed the result through memory.
    /// The compiler stores every string literal, one character long or
    /// longer, with its bytes; `utf8Start` traps on a StaticString kept as a
    /// lone scalar, as `withUTF8Buffer` did on the board.
    @inline(__always) static func bytes(_ literal: StaticString) -> UnsafeRawBufferPointer {
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
    static func index(of bytes: UnsafeRawBufferPointer, inList list: StaticString) -> Int? {
        let all = ByteString.bytes(list)
        var start = 0
        var entry = 0
        while start <= all.count {
            let end = start + firstIndex(of: 0, in: slice(all, start, all.count))
            if equals(slice(all, start, end), bytes) { return entry }
            start = end + 1
            entry += 1
        }
        return nil
    }

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
    static func firstIndex(of byte: UInt8, in bytes: UnsafeRawBufferPointer) -> Int {
        var i = 0
        while i < bytes.count && bytes[i] != byte { i += 1 }
        return i
    }

    @inline(__always) static func slice(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }
}
