import XCTest
import HostFakes
import AArch64
@testable import Platform

final class FrameAllocatorTests: XCTestCase {
    func range(_ base: UInt64, _ size: UInt64) -> MemoryRange { MemoryRange(base: PhysAddr(base), size: size)! }

    func allocationError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> FrameAllocatorError? {
        thrownError(FrameAllocatorError.self, body, file: file, line: line)
    }

    /// The board case: QEMU virt 1G, image at 0x4020_0000, DTB at 0x4800_0000 (HARDWARE.md section 8).
    func testBoardLayoutExcludesImageAndBlob() throws {
        let platform = try withTree(Fixture.bytes(Fixture.virt1G)) { tree in try PlatformDescription(tree) }
        let image = range(0x4020_0000, 0x12_3456)
        let blob = range(0x4800_0000, 0x10_0000)
        var allocator = try FrameAllocator(platform: platform, image: image, deviceTree: blob)
        let total: UInt64 = 0x4_0000
        let imageFrames: UInt64 = 0x124, blobFrames: UInt64 = 0x100
        XCTAssertEqual(allocator.freeFrameCount, total - imageFrames - blobFrames)
        XCTAssertEqual(Array(allocator.freeRanges), [
            FrameRange(first: MFN(0x4_0000), count: 0x200),
            FrameRange(first: MFN(0x4_0324), count: 0x4_8000 - 0x4_0324),
            FrameRange(first: MFN(0x4_8100), count: 0x8_0000 - 0x4_8100),
        ])
        // A 64 KiB-aligned 128 KiB run (e.g. a stream table).
        let table = try allocator.allocate(count: 32, alignment: 16)
        XCTAssertEqual(table.raw % 16, 0)
        XCTAssertFalse(image.framesTouching.contains(table))
    }

    func testSparseBanksAndReservations() throws {
        let platform = try withTree(Fixture.bytes(Fixture.sparse)) { tree in try PlatformDescription(tree) }
        var allocator = try FrameAllocator(platform: platform, image: range(0x8000_0000, 0x8000),
                                           deviceTree: range(0x8fff_f000, 0x800))
        let frames: UInt64 = 0x1_0000 + 0x8000 + 0x200
        // image 8 frames, memreserve 3, reserved-memory 256, blob 1.
        XCTAssertEqual(allocator.freeFrameCount, frames - 8 - 3 - 0x100 - 1)
        var seen: [MFN] = []
        while let frame = try? allocator.allocate() { seen.append(frame) }
        XCTAssertEqual(UInt64(seen.count), frames - 8 - 3 - 0x100 - 1)
        for frame in seen {
            XCTAssertTrue(platform.memoryBanks.contains { $0.framesInside.contains(frame) })
            XCTAssertFalse(platform.reservedRanges.contains { $0.framesTouching.contains(frame) })
        }
        XCTAssertEqual(allocationError { _ = try allocator.allocate() }, .exhausted(count: 1, alignment: 1))
    }

    func testArgumentErrorsLeaveStateUnchanged() throws {
        var allocator = try FrameAllocator(banks: [range(0x10_0000, 0x10_0000)], excluding: [range(0x14_0000, 0x1000)])
        let before = Array(allocator.freeRanges)
        XCTAssertEqual(allocationError { _ = try allocator.allocate(count: 0) }, .zeroCount)
        XCTAssertEqual(allocationError { _ = try allocator.allocate(count: 1, alignment: 3) }, .alignmentNotPowerOfTwo(3))
        XCTAssertEqual(allocationError { _ = try allocator.allocate(count: 1, alignment: 0) }, .alignmentNotPowerOfTwo(0))
        // Free: frames 0x100..<0x140 and 0x141..<0x200.
        XCTAssertEqual(allocationError { _ = try allocator.allocate(count: 0xC0) }, .exhausted(count: 0xC0, alignment: 1))
        XCTAssertEqual(allocationError { _ = try allocator.allocate(count: 0x41, alignment: 0x100) },
                       .exhausted(count: 0x41, alignment: 0x100))
        XCTAssertEqual(allocationError { try allocator.free(MFN(0x100)) }, .doubleFree(MFN(0x100)))
        XCTAssertEqual(allocationError { try allocator.free(MFN(0x140)) }, .excluded(MFN(0x140)))
        XCTAssertEqual(allocationError { try allocator.free(MFN(0x200)) }, .notManaged(MFN(0x200)))
        XCTAssertEqual(allocationError { try allocator.free(MFN(0x1FF), count: 2) }, .notManaged(MFN(0x200)))
        XCTAssertEqual(allocationError { try allocator.free(MFN(0x100), count: 0) }, .zeroCount)
        XCTAssertEqual(allocationError { try allocator.free(MFN(UInt64.max), count: 2) },
                       .rangeWraps(first: MFN(UInt64.max), count: 2))
        XCTAssertEqual(Array(allocator.freeRanges), before)
    }

    func testFreeMergesBackToOneRange() throws {
        var allocator = try FrameAllocator(banks: [range(0, 0x100_0000)], excluding: [MemoryRange]())
        let a = try allocator.allocate(count: 4)
        let b = try allocator.allocate(count: 4, alignment: 8)
        let c = try allocator.allocate()
        try allocator.free(b, count: 4)
        try allocator.free(a, count: 4)
        try allocator.free(c)
        XCTAssertEqual(Array(allocator.freeRanges), [FrameRange(first: MFN(0), count: 0x1000)])
        XCTAssertEqual(allocationError { try allocator.free(b, count: 4) }, .doubleFree(b))
    }

    func testFreeListFullIsTypedAndHarmless() throws {
        var allocator = try FrameAllocator(banks: [range(0, 0x1000_0000)], excluding: [MemoryRange]())
        // Every other frame: each free below needs its own slot.
        var frames: [MFN] = []
        for _ in 0..<(3 * FrameAllocator.freeRangeCapacity) { frames.append(try allocator.allocate()) }
        var freed = 0
        var result: FrameAllocatorError?
        for frame in frames where frame.raw % 2 == 0 && frame.raw > 0 {
            result = allocationError { try allocator.free(frame) }
            if result != nil { break }
            freed += 1
        }
        XCTAssertEqual(result, .freeListFull(capacity: FrameAllocator.freeRangeCapacity))
        XCTAssertEqual(allocator.freeRanges.count, FrameAllocator.freeRangeCapacity)
        // An aligned run carved from the middle of a range also needs a slot.
        let before = Array(allocator.freeRanges)
        XCTAssertEqual(allocationError { _ = try allocator.allocate(count: 1, alignment: 0x8000) },
                       .freeListFull(capacity: FrameAllocator.freeRangeCapacity))
        XCTAssertEqual(Array(allocator.freeRanges), before)
        // Allocating from the start of a range needs no slot.
        XCTAssertNoThrow(try allocator.allocate())
    }

    /// `bankCapacity` counts the banks after merging: sixteen disjoint banks
    /// fit, and so do seventeen when two of them touch (they become one range).
    func testBankCapacityCountsMergedRanges() throws {
        let sixteen = (0..<16).map { range(UInt64($0) << 30, 0x1000_0000) }
        XCTAssertEqual(try FrameAllocator(banks: sixteen, excluding: [MemoryRange]()).freeRanges.count, 16)
        let touching = sixteen + [range(0x1000_0000, 0x1000)]
        XCTAssertEqual(try FrameAllocator(banks: touching, excluding: [MemoryRange]()).freeRanges.count, 16)
    }

    func testConstructionCapacityErrors() {
        let banks = (0..<17).map { range(UInt64($0) << 30, 0x1000_0000) }
        XCTAssertThrowsError(try FrameAllocator(banks: banks, excluding: [MemoryRange]())) {
            XCTAssertEqual($0 as? FrameAllocatorError, .tooManyBanks(capacity: FrameAllocator.bankCapacity))
        }
        let holes = (0...FrameAllocator.exclusionCapacity).map { range(UInt64($0) << 16, 0x1000) }
        XCTAssertThrowsError(try FrameAllocator(banks: [range(0, 1 << 30)], excluding: holes)) {
            XCTAssertEqual($0 as? FrameAllocatorError, .tooManyExclusions(capacity: FrameAllocator.exclusionCapacity))
        }
        let manyHoles = (1..<FrameAllocator.exclusionCapacity).map { range(UInt64($0) << 16, 0x1000) }
        let fragmented = [range(0, 1 << 30), range(2 << 30, 1 << 30)]
        XCTAssertNoThrow(try FrameAllocator(banks: fragmented, excluding: manyHoles))
    }

    /// Property test: random sparse banks, random exclusions (image, blob,
    /// reservations; unaligned), random allocations, alignments and frees.
    /// Checked after every step against a plain model (a set of frames).
    func testRandomisedNeverHandsOutExcludedOrLiveFrames() throws {
        var rng = SplitMix64(seed: 0x5EED)
        for round in 0..<60 {
            var banks: [MemoryRange] = []
            var cursor: UInt64 = (rng.next() % 8) << 28
            for _ in 0..<(1 + rng.next() % 4) {
                cursor += (rng.next() % 64) * 0x1000 + rng.next() % 0x1000
                let size = (1 + rng.next() % 256) * 0x1000 + rng.next() % 0x1000
                banks.append(range(cursor, size))
                cursor += size
            }
            var exclusions: [MemoryRange] = []
            for _ in 0..<(rng.next() % 12) {
                let bank = banks[Int(rng.next() % UInt64(banks.count))]
                let offset = rng.next() % bank.size
                exclusions.append(range(bank.base.raw + offset, 1 + rng.next() % 0x8000))
            }
            var allocator = try FrameAllocator(banks: banks, excluding: exclusions)

            // The model: every usable frame.
            var usable = Set<UInt64>()
            for bank in banks {
                let inside = bank.framesInside
                for f in inside.first.raw..<inside.end.raw { usable.insert(f) }
            }
            for exclusion in exclusions {
                let touching = exclusion.framesTouching
                for f in touching.first.raw..<touching.end.raw { usable.remove(f) }
            }
            XCTAssertEqual(allocator.freeFrameCount, UInt64(usable.count), "round \(round)")

            var live: [(MFN, UInt64)] = []
            var allocated = Set<UInt64>()
            for _ in 0..<300 {
                if rng.next() % 3 == 0, !live.isEmpty {
                    let (first, count) = live.remove(at: Int(rng.next() % UInt64(live.count)))
                    try allocator.free(first, count: count)
                    for f in first.raw..<first.raw + count { allocated.remove(f) }
                } else {
                    let count = 1 + rng.next() % 16
                    let alignment: UInt64 = 1 << (rng.next() % 6)
                    do throws(FrameAllocatorError) {
                        let first = try allocator.allocate(count: count, alignment: alignment)
                        XCTAssertEqual(first.raw % alignment, 0)
                        for f in first.raw..<first.raw + count {
                            XCTAssertTrue(usable.contains(f), "round \(round): frame \(f) not usable")
                            XCTAssertFalse(allocated.contains(f), "round \(round): frame \(f) handed out twice")
                            allocated.insert(f)
                        }
                        live.append((first, count))
                    } catch {
                        guard case .exhausted = error else { return XCTFail("unexpected \(error)") }
                        // The model confirms no aligned free run existed.
                        let free = usable.subtracting(allocated)
                        let exists = free.contains { f in
                            f % alignment == 0 && (f..<f + count).allSatisfy { free.contains($0) }
                        }
                        XCTAssertFalse(exists, "round \(round): exhausted but a run existed")
                    }
                }
                XCTAssertEqual(allocator.freeFrameCount, UInt64(usable.count - allocated.count))
                // Free ranges stay sorted, disjoint and non-adjacent.
                let ranges = Array(allocator.freeRanges)
                for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertLessThan(a.end.raw, b.first.raw) }
            }
        }
    }
}
