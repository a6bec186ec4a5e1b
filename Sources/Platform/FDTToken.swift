/// Structure block tokens (Devicetree Specification v0.4, section 5.4.1).
/// Each is a big-endian 32-bit word at a 4-byte aligned offset.
@usableFromInline
enum FDTToken {
    static let beginNode: UInt32 = 0x1
    static let endNode: UInt32 = 0x2
    static let property: UInt32 = 0x3
    static let nop: UInt32 = 0x4
    static let end: UInt32 = 0x9

    /// Bytes of an FDT_PROP token before its value: token, len, nameoff.
    static let propertyHeaderSize = 12

    /// A decoded token with absolute blob offsets for its payload. A node's
    /// name starts 4 bytes after its token, a property's value 12 bytes after
    /// (`propertyHeaderSize`); `nameStart` is where its name is in the strings block.
    @usableFromInline
    enum Decoded {
        case beginNode(nameLength: Int)
        case endNode
        case property(nameStart: Int, valueLength: Int)
        case nop
        case end
    }
}

@inline(__always) func alignUp4(_ value: Int) -> Int { (value + 3) & ~3 }
