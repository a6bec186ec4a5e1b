/// The image's address -> function-name table (scripts/symbol-table.sh
/// writes it from the first link's ELF symbols; the second link carries it
/// in `.rodata`), read so an exception at EL2 can name the function it hit:
/// a Swift trap is a `BRK` in whatever function's precondition failed.
///
/// Layout, little-endian 32-bit words, offsets from the image's start (the
/// image is linked at 0, so nothing here is relocated):
///
///     magic "SYMT" (0x544D5953), count
///     count x { start, end, nameOffset, nameLength }   sorted by start
///     names: the bytes every nameOffset points into (no terminators)
///
/// A table that breaks any of this is refused whole with a typed error, so
/// `lookup` never reads outside the bytes it was given.
public struct SymbolTable {
    public static let magic: UInt32 = 0x544D_5953
    @usableFromInline static let headerBytes = 8
    @usableFromInline static let entryBytes = 16

    public struct Symbol: Equatable {
        public let start: UInt32
        public let end: UInt32
        /// Where the name's bytes are in the table given to `init`.
        public let nameRange: Range<Int>

        @usableFromInline init(start: UInt32, end: UInt32, nameRange: Range<Int>) {
            self.start = start
            self.end = end
            self.nameRange = nameRange
        }
    }

    @usableFromInline let bytes: UnsafeRawBufferPointer
    public let count: Int

    /// Transparent, as `lookup`: on the board each has one caller, the trap
    /// reporter.
    @_transparent public init(_ bytes: UnsafeRawBufferPointer) throws(SymbolTableError) {
        guard bytes.count >= Self.headerBytes else { throw .tooShort }
        let magic = Self.word(bytes, 0)
        guard magic == Self.magic else { throw .badMagic(magic) }
        let count = Self.word(bytes, 4)
        // count < 2^32: these offsets fit an Int without checks.
        let namesStart = Self.headerBytes &+ Int(count) &* Self.entryBytes
        guard namesStart <= bytes.count else { throw .entriesBeyondTable(count: count) }
        let namesBytes = bytes.count - namesStart
        var previousStart: UInt32 = 0
        for i in 0..<Int(count) {
            let e = Self.headerBytes &+ i &* Self.entryBytes
            let start = Self.word(bytes, e), end = Self.word(bytes, e &+ 4)
            guard start <= end, start >= previousStart else { throw .entryOutOfOrder(index: i) }
            let offset = Int(Self.word(bytes, e &+ 8)), length = Int(Self.word(bytes, e &+ 12))
            guard offset <= namesBytes, length <= namesBytes - offset else { throw .nameBeyondTable(index: i) }
            previousStart = start
        }
        self.bytes = bytes
        self.count = Int(count)
    }

    /// The symbol whose `[start, end)` holds `offset` (an address minus the
    /// image's start): the last one starting at or below it, if it reaches it.
    @_transparent public func lookup(_ offset: UInt64) -> Symbol? {
        guard offset <= UInt64(UInt32.max) else { return nil }
        let target = UInt32(offset)
        var low = 0, high = count          // first entry starting above target
        while low < high {
            let mid = low + (high - low) / 2
            if entryWord(mid, 0) <= target { low = mid + 1 } else { high = mid }
        }
        guard low > 0 else { return nil }
        let i = low - 1
        let start = entryWord(i, 0), end = entryWord(i, 4)
        guard target < end else { return nil }
        let namesStart = Self.headerBytes &+ count &* Self.entryBytes
        let offsetInNames = Int(entryWord(i, 8))
        // init proved offset + length within the names: no overflow.
        let nameStart = namesStart &+ offsetInNames
        return Symbol(start: start, end: end, nameRange: nameStart ..< nameStart &+ Int(entryWord(i, 12)))
    }

    /// The bytes of a name `lookup` returned.
    public func name(of symbol: Symbol) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[symbol.nameRange])
    }

    @usableFromInline func entryWord(_ index: Int, _ field: Int) -> UInt32 {
        // index < count, whose entries init proved inside the table.
        Self.word(bytes, Self.headerBytes &+ index &* Self.entryBytes &+ field)
    }

    /// One range check for the word's four bytes, then one unaligned load
    /// (four checked byte reads cost four traps and the shifts at every use).
    @usableFromInline static func word(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        precondition(at >= 0 && at <= bytes.count - 4, "symbol table word out of range")
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }
}

/// Why a symbol table was refused.
public enum SymbolTableError: Error, Equatable {
    case tooShort
    case badMagic(UInt32)
    case entriesBeyondTable(count: UInt32)
    case entryOutOfOrder(index: Int)
    case nameBeyondTable(index: Int)
}
