import AArch64
import Translation

/// A write-back data cache in front of `SparseRAM`, for the observers that do
/// not look in it: a guest running with SCTLR_EL1.C = 0 (its accesses are
/// Non-cacheable), a non-coherent SMMU or DMA master. With it, a missing clean
/// or invalidate to the point of coherency shows up in a test as stale data
/// instead of passing as it does on QEMU's TCG, which has no caches.
///
/// - The hypervisor (`cpu`) loads and stores through the cache: a store lands in
///   its 64-byte line, which stays dirty; a load of a line not present fills it
///   from RAM (and the line then stays, clean, until invalidated).
/// - A non-coherent observer (`memory`) reads and writes RAM only.
/// - `maintenance` (a `CacheMaintenance`) issues DC CVAC / DC CIVAC by range.
///   As on hardware, they are complete only after the next `synchronize` (DSB):
///   until then RAM is unchanged.
/// - `speculativeFill` brings a line in as the CPU may at any time (prefetch,
///   speculation) through a cacheable mapping: what an invalidate after a
///   device's writes is for.
public final class WriteBackCache {
    public static let lineBytes: UInt64 = 64
    static let wordsPerLine = Int(lineBytes / 8)

    public let ram: SparseRAM
    struct Line {
        var words: [UInt64]
        var dirty: Bool
    }
    var lines: [UInt64: Line] = [:]
    /// Maintenance issued and not yet completed by a DSB, in order.
    var issued: [(line: UInt64, invalidate: Bool)] = []
    /// Lines written back to RAM by completed maintenance.
    public private(set) var writeBacks = 0

    public init(ram: SparseRAM = SparseRAM()) { self.ram = ram }

    /// The hypervisor's view, through a write-back cacheable mapping.
    public var cpu: CachedMemory { CachedMemory(cache: self) }
    /// The view of an observer with caches off: RAM itself.
    public var memory: SparseMemory { SparseMemory(ram: ram) }
    /// DC CVAC / DC CIVAC / DSB on this cache.
    public var maintenance: WriteBackCacheMaintenance { WriteBackCacheMaintenance(cache: self) }

    /// Whether the line holding `address` is in the cache and dirty.
    public func isDirty(_ address: PhysAddr) -> Bool { lines[Self.line(address)]?.dirty ?? false }
    /// Whether any line of `frame` is in the cache.
    public func holdsLines(of frame: MFN) -> Bool {
        var line = frame.address.raw
        while line < frame.address.raw + PageSize.bytes4K {
            if lines[line] != nil { return true }
            line += Self.lineBytes
        }
        return false
    }
    /// Maintenance issued but not completed by a `synchronize`.
    public var incompleteMaintenance: Int { issued.count }

    /// The CPU brings the line of `address` into the cache, as speculation may.
    public func speculativeFill(_ address: PhysAddr) { _ = fill(Self.line(address)) }

    func load(_ address: PhysAddr) -> UInt64 {
        fill(Self.line(address)).words[Self.word(address)]
    }

    func store(_ address: PhysAddr, _ value: UInt64) {
        let line = Self.line(address)
        var l = fill(line)
        l.words[Self.word(address)] = value
        l.dirty = true
        lines[line] = l
    }

    /// DC ZVA-like: the CPU zeroes a frame in its cache (the lines are dirty).
    func zero(_ frame: MFN) {
        var line = frame.address.raw
        while line < frame.address.raw + PageSize.bytes4K {
            lines[line] = Line(words: Array(repeating: 0, count: Self.wordsPerLine), dirty: true)
            line += Self.lineBytes
        }
    }

    func issue(_ address: PhysAddr, bytes: UInt64, invalidate: Bool) {
        guard bytes > 0 else { return }
        var line = Self.line(address)
        let end = address.raw &+ bytes
        while line < end {
            issued.append((line, invalidate))
            line += Self.lineBytes
        }
    }

    func complete() {
        for (line, invalidate) in issued {
            if let l = lines[line], l.dirty {
                let ram = memory
                for i in 0..<Self.wordsPerLine { ram.store64(PhysAddr(raw: line + UInt64(i) * 8), l.words[i]) }
                lines[line]?.dirty = false
                writeBacks += 1
            }
            if invalidate { lines[line] = nil }
        }
        issued.removeAll()
    }

    private func fill(_ line: UInt64) -> Line {
        if let l = lines[line] { return l }
        let ram = memory
        var words: [UInt64] = []
        words.reserveCapacity(Self.wordsPerLine)
        for i in 0..<Self.wordsPerLine { words.append(ram.load64(PhysAddr(raw: line + UInt64(i) * 8))) }
        let l = Line(words: words, dirty: false)
        lines[line] = l
        return l
    }

    static func line(_ address: PhysAddr) -> UInt64 { address.raw & ~(lineBytes - 1) }
    static func word(_ address: PhysAddr) -> Int { Int((address.raw & (lineBytes - 1)) >> 3) }
}

/// The hypervisor's accesses through a `WriteBackCache`.
public struct CachedMemory: PhysicalMemory {
    public let cache: WriteBackCache
    public func load64(_ address: PhysAddr) -> UInt64 { cache.load(address) }
    public func store64(_ address: PhysAddr, _ value: UInt64) { cache.store(address, value) }
    public func zeroFrame(_ frame: MFN) { cache.zero(frame) }
}

/// Clean / clean+invalidate to PoC by range on a `WriteBackCache`, completed
/// by `synchronize`; every call is also counted.
public struct WriteBackCacheMaintenance: CacheMaintenance {
    public let cache: WriteBackCache
    public private(set) var cleans = 0
    public private(set) var cleanAndInvalidates = 0
    public private(set) var synchronizations = 0

    public mutating func clean(_ address: PhysAddr, bytes: UInt64) {
        cleans += 1
        cache.issue(address, bytes: bytes, invalidate: false)
    }
    public mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64) {
        cleanAndInvalidates += 1
        cache.issue(address, bytes: bytes, invalidate: true)
    }
    public mutating func synchronize() {
        synchronizations += 1
        cache.complete()
    }
}
