import AArch64
import Translation
@testable import Ownership

/// Records every cache maintenance call, in order.
struct RecordingCache: CacheMaintenance {
    enum Op: Equatable, CustomStringConvertible {
        case clean(PhysAddr, UInt64)
        case cleanAndInvalidate(PhysAddr, UInt64)
        case sync
        var description: String {
            switch self {
            case .clean(let a, let n): "clean(\(String(a.raw, radix: 16)), \(n))"
            case .cleanAndInvalidate(let a, let n): "civac(\(String(a.raw, radix: 16)), \(n))"
            case .sync: "dsb"
            }
        }
    }
    var ops: [Op] = []
    mutating func clean(_ address: PhysAddr, bytes: UInt64) { ops.append(.clean(address, bytes)) }
    mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64) {
        ops.append(.cleanAndInvalidate(address, bytes))
    }
    mutating func synchronize() { ops.append(.sync) }

    /// Frames cleaned+invalidated, one entry per 4 KiB page, in order.
    var cleanedFrames: [MFN] {
        var out: [MFN] = []
        for case .cleanAndInvalidate(let a, let n) in ops {
            for i in 0..<(n >> PageSize.shift4K) { out.append(a.frame.adding(i)) }
        }
        return out
    }
}

/// Two sparse banks: 8 frames at 0x4000_0000 and 8 frames at 0x8000_0000,
/// with a 1 GiB hole between them that must cost nothing.
let testBanks = [
    MemoryBank(base: PhysAddr(0x8000_0000), bytes: 8 * PageSize.bytes4K),
    MemoryBank(base: PhysAddr(0x4000_0000), bytes: 8 * PageSize.bytes4K),
]
let bank0 = MFN(raw: 0x4_0000)
let bank1 = MFN(raw: 0x8_0000)
/// An MMIO frame outside every bank.
let deviceFrame = MFN(raw: 0x900_0000 >> 12)

func makeOwnership(banks: [MemoryBank] = testBanks) -> PageOwnership<RecordingCache> {
    try! PageOwnership(banks: banks, cache: RecordingCache())
}
