import AArch64
import Platform
import HostFakes

/// A structure-aware mutation fuzzer for the device-tree parser and the
/// platform layer built on it. Inputs are real dumps with one to four
/// mutations: bit flips, rewritten header fields, property length fields,
/// tokens, inserted and deleted node nesting (with the header's sizes kept
/// consistent so the mutation reaches the structure walk rather than
/// stopping at the header), interesting cell values, splices and truncation.
///
/// Deterministic: execution `i` of a run with seed `s` depends only on
/// (`s`, `i`), so a failure is replayed with `input(at:)`.
public struct FDTFuzzer {
    public let seeds: [[UInt8]]
    public let seed: UInt64

    public init(seeds: [[UInt8]], seed: UInt64) {
        precondition(!seeds.isEmpty, "the fuzzer needs at least one seed blob")
        self.seeds = seeds.map(FDTFuzzer.packed)
        self.seed = seed
    }

    /// QEMU's dumps are padded to 1 MiB; mutations spent in the padding
    /// test nothing, and copying it costs most of an execution. The blob is
    /// cut after the last of its blocks, with `totalsize` to match.
    static func packed(_ blob: [UInt8]) -> [UInt8] {
        guard blob.count >= 40 else { return blob }
        let word = { (offset: Int) -> Int in
            Int(blob[offset]) << 24 | Int(blob[offset + 1]) << 16 | Int(blob[offset + 2]) << 8 | Int(blob[offset + 3])
        }
        let end = max(word(8) + word(36), word(12) + word(32))
        guard end >= 40, end < blob.count else { return blob }
        var cut = Array(blob[..<end])
        cut[4] = UInt8(end >> 24 & 0xFF)
        cut[5] = UInt8(end >> 16 & 0xFF)
        cut[6] = UInt8(end >> 8 & 0xFF)
        cut[7] = UInt8(end & 0xFF)
        return cut
    }

    /// The mutated blob of execution `index`.
    public func input(at index: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed ^ (index &* 0x9E37_79B9_7F4A_7C15))
        var blob = seeds[Int(rng.next() % UInt64(seeds.count))]
        // Mostly one mutation, so that more inputs survive the blob checks
        // and reach the platform layer; sometimes up to four.
        let count = rng.next() % 8 < 5 ? 1 : 1 + Int(rng.next() % 4)
        for _ in 0..<count { mutate(&blob, &rng) }
        return blob
    }

    // MARK: Mutations

    static let interestingWords: [UInt32] = [
        0, 1, 2, 3, 4, 8, 9, 0x10, 0x20, 0x21, 0x28, 0x7F, 0x80, 0xFF, 0x100, 0x1000, 0xFFFF, 0x1_0000,
        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFF0, 0xFFFF_FFFC, 0xFFFF_FFFE, 0xFFFF_FFFF, 0xD00D_FEED,
    ]

    func mutate(_ blob: inout [UInt8], _ rng: inout SplitMix64) {
        guard blob.count >= 8 else {
            blob.append(UInt8(truncatingIfNeeded: rng.next()))
            return
        }
        switch rng.next() % 16 {
        case 0, 1:  // bit flips
            let index = Int(rng.next() % UInt64(blob.count))
            blob[index] ^= 1 << UInt8(rng.next() % 8)
        case 2:  // a header field
            setWord(&blob, Int(rng.next() % 10) * 4, interesting(&rng, around: word(blob, 0)))
        case 3:  // a property's length field
            guard let property = randomToken(blob, FDTFuzzer.propertyToken, &rng) else { return }
            setWord(&blob, property + 4, interesting(&rng, around: word(blob, property + 4)))
        case 4:  // a property's name offset
            guard let property = randomToken(blob, FDTFuzzer.propertyToken, &rng) else { return }
            setWord(&blob, property + 8, interesting(&rng, around: word(blob, property + 8)))
        case 5:  // a token becomes another token
            guard let (start, end) = structureBlock(blob), end > start else { return }
            let offset = start + Int(rng.next() % UInt64((end - start) / 4)) * 4
            setWord(&blob, offset, [1, 2, 3, 4, 9][Int(rng.next() % 5)])
        case 6, 12, 13, 14, 15:  // a value cell inside a property (reg, ranges, cells, phandles)
            guard let property = randomToken(blob, FDTFuzzer.propertyToken, &rng) else { return }
            let length = Int(word(blob, property + 4))
            guard length >= 4, property + 12 + length <= blob.count else { return }
            let cell = property + 12 + Int(rng.next() % UInt64(length / 4)) * 4
            setWord(&blob, cell, interesting(&rng, around: word(blob, cell)))
        case 7:  // deeper nesting: BEGIN_NODE "n" ... END_NODE around a random point
            guard let (start, end) = structureBlock(blob), end > start + 8 else { return }
            let at = start + 4 + Int(rng.next() % UInt64((end - start - 4) / 4)) * 4
            let depth = 1 + Int(rng.next() % 40)
            var opening: [UInt8] = []
            for _ in 0..<depth { opening += [0, 0, 0, 1, 0x6E, 0, 0, 0] }
            insert(&blob, opening, at: at)
            if rng.next() % 2 == 0 {
                var closing: [UInt8] = []
                for _ in 0..<depth { closing += [0, 0, 0, 2] }
                insert(&blob, closing, at: at + opening.count)
            }
        case 8:  // delete some words of the structure block
            guard let (start, end) = structureBlock(blob), end > start + 4 else { return }
            let at = start + Int(rng.next() % UInt64((end - start) / 4)) * 4
            let words = 1 + Int(rng.next() % 8)
            remove(&blob, at: at, count: min(words * 4, end - at))
        case 9:  // splice: overwrite with words from elsewhere (or another seed)
            let other = seeds[Int(rng.next() % UInt64(seeds.count))]
            guard other.count >= 64 else { return }
            let length = 4 * (1 + Int(rng.next() % 16))
            let from = Int(rng.next() % UInt64(other.count - length)) & ~3
            let to = Int(rng.next() % UInt64(max(1, blob.count - length))) & ~3
            guard to + length <= blob.count else { return }
            blob.replaceSubrange(to..<to + length, with: other[from..<from + length])
        case 10:  // truncation, with or without totalsize following
            let cut = Int(rng.next() % UInt64(blob.count))
            blob.removeSubrange(cut...)
            if rng.next() % 2 == 0, blob.count >= 8 { setWord(&blob, 4, UInt32(blob.count)) }
        default:  // a string property loses its terminator, or a name its NUL
            let index = Int(rng.next() % UInt64(blob.count))
            if blob[index] == 0 { blob[index] = 0x41 }
        }
    }

    static let propertyToken: UInt32 = 3

    func interesting(_ rng: inout SplitMix64, around value: UInt32) -> UInt32 {
        switch rng.next() % 3 {
        case 0: return FDTFuzzer.interestingWords[Int(rng.next() % UInt64(FDTFuzzer.interestingWords.count))]
        case 1: return value &+ UInt32(truncatingIfNeeded: Int(rng.next() % 33) - 16)
        default: return UInt32(truncatingIfNeeded: rng.next())
        }
    }

    func word(_ blob: [UInt8], _ offset: Int) -> UInt32 {
        guard offset >= 0, offset + 4 <= blob.count else { return 0 }
        return UInt32(blob[offset]) << 24 | UInt32(blob[offset + 1]) << 16 | UInt32(blob[offset + 2]) << 8
            | UInt32(blob[offset + 3])
    }

    func setWord(_ blob: inout [UInt8], _ offset: Int, _ value: UInt32) {
        guard offset >= 0, offset + 4 <= blob.count else { return }
        blob[offset] = UInt8(value >> 24)
        blob[offset + 1] = UInt8(value >> 16 & 0xFF)
        blob[offset + 2] = UInt8(value >> 8 & 0xFF)
        blob[offset + 3] = UInt8(value & 0xFF)
    }

    /// `[off_dt_struct, off_dt_struct + size_dt_struct)` as the header
    /// states it, when that lies inside the blob (4-aligned).
    func structureBlock(_ blob: [UInt8]) -> (Int, Int)? {
        guard blob.count >= 40 else { return nil }
        let start = Int(word(blob, 8)), size = Int(word(blob, 36))
        guard start % 4 == 0, start <= blob.count, size <= blob.count - start else { return nil }
        return (start, start + size & ~3)
    }

    /// A random aligned offset in the structure block holding `token`.
    func randomToken(_ blob: [UInt8], _ token: UInt32, _ rng: inout SplitMix64) -> Int? {
        guard let (start, end) = structureBlock(blob), end > start else { return nil }
        let words = (end - start) / 4
        let first = Int(rng.next() % UInt64(words))
        for step in 0..<words {
            let offset = start + (first + step) % words * 4
            if word(blob, offset) == token { return offset }
        }
        return nil
    }

    /// Inserts into the structure block and moves what follows, keeping
    /// totalsize, size_dt_struct and the offsets of later blocks right.
    func insert(_ blob: inout [UInt8], _ bytes: [UInt8], at offset: Int) {
        blob.insert(contentsOf: bytes, at: offset)
        adjust(&blob, after: offset, by: bytes.count)
    }

    func remove(_ blob: inout [UInt8], at offset: Int, count: Int) {
        guard count > 0 else { return }
        blob.removeSubrange(offset..<offset + count)
        adjust(&blob, after: offset, by: -count)
    }

    private func adjust(_ blob: inout [UInt8], after offset: Int, by delta: Int) {
        setWord(&blob, 4, UInt32(truncatingIfNeeded: Int(word(blob, 4)) + delta))
        setWord(&blob, 36, UInt32(truncatingIfNeeded: Int(word(blob, 36)) + delta))
        for field in [12, 16] where Int(word(blob, field)) >= offset {   // strings, reservation map
            setWord(&blob, field, UInt32(truncatingIfNeeded: Int(word(blob, field)) + delta))
        }
    }
}
