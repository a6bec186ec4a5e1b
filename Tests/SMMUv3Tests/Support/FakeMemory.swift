import AArch64
import Translation
@testable import SMMUv3

/// Host RAM for the SMMU tests, with a model of the CPU cache as seen by a
/// non-snooping device: every CPU store dirties its 64-byte line until a
/// clean to PoC; a device read of a dirty line is a coherency violation.
/// `words` is what the CPU sees; `dramLoad` is what RAM itself holds (the
/// line as it was when the CPU first dirtied it, until it is cleaned).
final class FakeMemory: PhysicalMemory {
    static let lineBytes: UInt64 = 64
    var words: [UInt64: UInt64] = [:]
    var dirtyLines: Set<UInt64> = []
    /// RAM's copy of each line the CPU dirtied, taken when it went from clean
    /// to dirty; meaningful only while the line is in `dirtyLines` (a clean, or
    /// a test removing the line from `dirtyLines`, makes RAM equal `words`).
    var ramLines: [UInt64: [UInt64]] = [:]
    /// Device reads of lines the CPU had not cleaned (only meaningful for a
    /// non-coherent SMMU).
    var staleDeviceReads: [PhysAddr] = []
    /// Called after every CPU store (the fake SMMU's live-STE checker).
    var storeObserver: ((PhysAddr) -> Void)?
    /// Called after every CPU store with the word's old and new value (the
    /// IOMMU break-before-make checker).
    var descriptorWatcher: ((PhysAddr, UInt64, UInt64) -> Void)?

    /// One ordered record, while `tracing`, of the driver's CPU loads, its
    /// barriers (`RecordingCache.synchronize`) and its register writes
    /// (`FakeSMMU`), so a test can check that a barrier sits between two of them.
    enum Access: Equatable {
        case load(PhysAddr)
        case barrier
        case registerWrite(Int, UInt64)
    }
    var tracing = false
    var trace: [Access] = []
    func record(_ access: Access) { if tracing { trace.append(access) } }

    /// A CPU load by the driver (traced).
    func load64(_ address: PhysAddr) -> UInt64 {
        record(.load(address))
        return peek(address)
    }

    /// A read by the model itself: not a driver access, never traced.
    func peek(_ address: PhysAddr) -> UInt64 { words[address.raw & ~7] ?? 0 }

    func store64(_ address: PhysAddr, _ value: UInt64) {
        let old = words[address.raw & ~7] ?? 0
        dirty(address.raw & ~(Self.lineBytes - 1))
        words[address.raw & ~7] = value
        descriptorWatcher?(address, old, value)
        storeObserver?(address)
    }

    func zeroFrame(_ frame: MFN) {
        let base = frame.address.raw
        for line in stride(from: UInt64(0), to: PageSize.bytes4K, by: Int(Self.lineBytes)) { dirty(base + line) }
        for offset in stride(from: UInt64(0), to: PageSize.bytes4K, by: 8) { words.removeValue(forKey: base + offset) }
    }

    /// The CPU is about to write into `line`: if it was clean, RAM keeps what it holds now.
    private func dirty(_ line: UInt64) {
        guard dirtyLines.insert(line).inserted else { return }
        ramLines[line] = (0..<Self.lineBytes / 8).map { words[line + $0 * 8] ?? 0 }
    }

    /// What RAM holds at `address`: the CPU's value unless its line is dirty.
    /// A model read, not a driver access: never traced, never recorded.
    func dramLoad(_ address: PhysAddr) -> UInt64 {
        let line = address.raw & ~(Self.lineBytes - 1)
        guard dirtyLines.contains(line), let ram = ramLines[line] else { return peek(address) }
        return ram[Int((address.raw - line) / 8)]
    }

    /// A read by the SMMU itself.
    func deviceLoad(_ address: PhysAddr, coherent: Bool) -> UInt64 {
        if !coherent && dirtyLines.contains(address.raw & ~(Self.lineBytes - 1)) {
            staleDeviceReads.append(address)
        }
        return peek(address)
    }

    /// A write by the SMMU or a DMA master (lands in RAM; a CPU line over it
    /// would be stale, which the driver handles by invalidating before reading).
    func deviceStore(_ address: PhysAddr, _ value: UInt64) {
        words[address.raw & ~7] = value
        let line = address.raw & ~(Self.lineBytes - 1)
        if dirtyLines.contains(line) { ramLines[line]?[Int((address.raw - line) / 8)] = value }
    }
}

/// Cache maintenance that acts on `FakeMemory`'s dirty-line model and records
/// the order of operations.
struct RecordingCache: CacheMaintenance {
    enum Operation: Equatable {
        case clean(PhysAddr, UInt64)
        case cleanAndInvalidate(PhysAddr, UInt64)
        case synchronize
    }
    final class Log { var operations: [Operation] = [] }

    let memory: FakeMemory
    let log = Log()

    mutating func clean(_ address: PhysAddr, bytes: UInt64) {
        log.operations.append(.clean(address, bytes))
        cleanLines(address, bytes)
    }
    mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64) {
        log.operations.append(.cleanAndInvalidate(address, bytes))
        cleanLines(address, bytes)
    }
    mutating func synchronize() {
        log.operations.append(.synchronize)
        memory.record(.barrier)
    }

    private func cleanLines(_ address: PhysAddr, _ bytes: UInt64) {
        let mask = FakeMemory.lineBytes - 1
        var line = address.raw & ~mask
        while line < address.raw + bytes {
            memory.dirtyLines.remove(line)
            line += FakeMemory.lineBytes
        }
    }
}

/// A bump allocator over fake RAM at 1 GiB.
struct FakeFrameAllocator: ContiguousFrameAllocator {
    var next = MFN(raw: 0x40000)
    var limit = MFN(raw: 0x80000)
    var freed: [(MFN, Int)] = []
    var allocations = 0

    mutating func allocateContiguous(count: Int, alignmentFrames: Int) -> MFN? {
        let align = UInt64(alignmentFrames)
        let start = (next.raw + align - 1) / align * align
        guard start + UInt64(count) <= limit.raw else { return nil }
        next = MFN(raw: start + UInt64(count))
        allocations += 1
        return MFN(raw: start)
    }
    mutating func freeContiguous(_ first: MFN, count: Int) { freed.append((first, count)) }
}
