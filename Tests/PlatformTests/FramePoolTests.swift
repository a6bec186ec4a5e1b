import XCTest
import AArch64
import HostFakes
@testable import Platform

final class FramePoolTests: XCTestCase {
    func range(_ base: UInt64, _ size: UInt64) -> MemoryRange { MemoryRange(base: PhysAddr(base), size: size)! }

    func poolError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> FramePoolError? {
        thrownError(FramePoolError.self, body, file: file, line: line)
    }

    /// The pool's observable state, to show a refusal changed nothing.
    func snapshot(_ pool: FramePool) -> [Bool] {
        (0..<UInt64(pool.count)).map { pool.isAllocated(pool.first.adding($0)) } + [pool.availableFrames == 0]
    }

    func testTakesAnAlignedRunOutOfTheAllocator() throws {
        // Frames 0x100..<0x200, with 0x100..<0x103 excluded: the first 16-aligned run starts at 0x110.
        var allocator = try FrameAllocator(banks: [range(0x10_0000, 0x10_0000)], excluding: [range(0x10_0000, 0x2800)])
        let pool = try FramePool(frames: 32, from: &allocator)
        XCTAssertEqual(pool.first, MFN(0x110))
        XCTAssertEqual(pool.availableFrames, 32)
        for i in 0..<UInt64(32) {
            XCTAssertFalse(allocator.isFree(pool.first.adding(i)), "pool frame still free in the allocator")
            XCTAssertTrue(pool.contains(pool.first.adding(i)))
        }
        XCTAssertFalse(pool.contains(MFN(0x10F)))
        XCTAssertFalse(pool.contains(MFN(0x130)))
        XCTAssertThrowsError(try FramePool(frames: 0, from: &allocator)) {
            XCTAssertEqual($0 as? FrameAllocatorError, .zeroCount)
        }
        XCTAssertThrowsError(try FramePool(frames: 0x100, from: &allocator)) {
            XCTAssertEqual($0 as? FrameAllocatorError, .exhausted(count: 0x100, alignment: 16))
        }
    }

    func testAllocatesLowestFirstUntilExhausted() throws {
        var allocator = try FrameAllocator(banks: [range(0x10_0000, 0x10_0000)], excluding: [MemoryRange]())
        var pool = try FramePool(frames: 4, from: &allocator)
        var got: [MFN] = []
        for _ in 0..<4 { got.append(try pool.allocate()) }
        XCTAssertEqual(got, [MFN(0x100), MFN(0x101), MFN(0x102), MFN(0x103)])
        XCTAssertEqual(pool.availableFrames, 0)
        let before = snapshot(pool)
        XCTAssertEqual(poolError { _ = try pool.allocate() }, .exhausted(run: 1, available: 0))
        XCTAssertEqual(snapshot(pool), before)
    }

    func testFreeReturnsTheFrameForReuse() throws {
        var allocator = try FrameAllocator(banks: [range(0x10_0000, 0x10_0000)], excluding: [MemoryRange]())
        var pool = try FramePool(frames: 70, from: &allocator)   // more than one bitmap word
        var got: [MFN] = []
        for _ in 0..<70 { got.append(try pool.allocate()) }
        try pool.free(got[65])
        try pool.free(got[3])
        XCTAssertEqual(pool.availableFrames, 2)
        XCTAssertFalse(pool.isAllocated(got[65]))
        XCTAssertTrue(pool.isAllocated(got[64]) && pool.isAllocated(got[66]))
        XCTAssertEqual(try pool.allocate(), got[3])
        XCTAssertEqual(try pool.allocate(), got[65])
        XCTAssertEqual(pool.availableFrames, 0)
    }

    func testDoubleFreeAndForeignFramesAreRefusedAndChangeNothing() throws {
        var allocator = try FrameAllocator(banks: [range(0x10_0000, 0x10_0000)], excluding: [MemoryRange]())
        var pool = try FramePool(frames: 8, from: &allocator)
        let a = try pool.allocate()
        let never = pool.first.adding(5)
        try pool.free(a)
        let before = snapshot(pool)
        XCTAssertEqual(poolError { try pool.free(a) }, .doubleFree(a))
        XCTAssertEqual(poolError { try pool.free(never) }, .doubleFree(never))
        XCTAssertEqual(poolError { try pool.free(pool.first.adding(8)) }, .notInPool(pool.first.adding(8)))
        XCTAssertEqual(poolError { try pool.free(MFN(pool.first.raw - 1)) }, .notInPool(MFN(pool.first.raw - 1)))
        XCTAssertEqual(poolError { try pool.free(MFN(UInt64.max)) }, .notInPool(MFN(UInt64.max)))
        XCTAssertEqual(snapshot(pool), before)
        XCTAssertEqual(pool.availableFrames, 8)
    }

    /// Runs for concatenated roots: aligned to their length, never over a
    /// frame in use, refused when only unaligned or scattered frames remain.
    func testRunsAreAlignedAndSkipFramesInUse() throws {
        var allocator = try FrameAllocator(banks: [range(0x10_0000, 0x10_0000)], excluding: [MemoryRange]())
        var pool = try FramePool(frames: 32, from: &allocator)
        let single = try pool.allocate()                      // frame 0
        let pair = try pool.allocate(run: 2)                  // frames 2, 3 (0-1 is taken)
        XCTAssertEqual(single, pool.first)
        XCTAssertEqual(pair, pool.first.adding(2))
        let root = try pool.allocate(run: 16)                 // frames 16..<32
        XCTAssertEqual(root, pool.first.adding(16))
        XCTAssertEqual(root.raw % 16, 0)
        XCTAssertEqual(pool.availableFrames, 32 - 1 - 2 - 16)
        // Free now: 1 and 4..<16; the only aligned run of 8 is 8..<16.
        XCTAssertEqual(try pool.allocate(run: 8), pool.first.adding(8))
        // Free now: 1 and 4..<8. Five frames, but no aligned run of 8.
        let before = snapshot(pool)
        XCTAssertEqual(poolError { _ = try pool.allocate(run: 8) }, .exhausted(run: 8, available: 5))
        XCTAssertEqual(snapshot(pool), before)
        XCTAssertEqual(try pool.allocate(run: 4), pool.first.adding(4))
        XCTAssertEqual(poolError { _ = try pool.allocate(run: 2) }, .exhausted(run: 2, available: 1))
        XCTAssertEqual(try pool.allocate(), pool.first.adding(1))
    }

    func testUnsupportedRunsAreRefused() throws {
        var allocator = try FrameAllocator(banks: [range(0x10_0000, 0x10_0000)], excluding: [MemoryRange]())
        var pool = try FramePool(frames: 64, from: &allocator)
        for run in [0, -1, 3, 12, 32] {
            XCTAssertEqual(poolError { _ = try pool.allocate(run: run) }, .unsupportedRun(run))
        }
        XCTAssertEqual(pool.availableFrames, 64)
    }

    /// Each frame's counter (a table page's valid-entry count, kept by the table
    /// engine) holds what was stored, per frame, and is zero again whenever the
    /// frame is handed out anew, alone or in a run.
    func testCountersArePerFrameAndZeroedOnEveryAllocation() throws {
        var allocator = try FrameAllocator(banks: [range(0x10_0000, 0x10_0000)], excluding: [])
        var pool = try FramePool(frames: 16, from: &allocator)
        let a = try pool.allocate(), b = try pool.allocate()
        pool.setCounter(a, 512)
        pool.setCounter(b, 3)
        XCTAssertEqual(pool.counter(a), 512)
        XCTAssertEqual(pool.counter(b), 3)
        try pool.free(a)
        XCTAssertEqual(try pool.allocate(), a)
        XCTAssertEqual(pool.counter(a), 0, "a reallocated frame starts from zero")
        XCTAssertEqual(pool.counter(b), 3, "the neighbour keeps its count")
        try pool.free(a)
        try pool.free(b)
        pool.setCounter(b, 7)
        let run = try pool.allocate(run: 2)
        XCTAssertEqual(run, a)
        XCTAssertEqual([pool.counter(run), pool.counter(run.adding(1))], [0, 0])
    }

    /// Counters share words four to a word: every frame of a pool whose size
    /// is not a multiple of four keeps its own full 16 bits whatever its
    /// neighbours store, against a plain array model.
    func testEveryCounterKeepsSixteenBitsWhateverItsNeighboursStore() throws {
        var allocator = try FrameAllocator(banks: [range(0x10_0000, 0x10_0000)], excluding: [])
        var pool = try FramePool(frames: 13, from: &allocator)
        var model = [UInt16](repeating: 0, count: 13)
        var rng = SplitMix64(seed: 99)
        for step in 0..<2000 {
            let i = Int(rng.next() % 13)
            let value: UInt16 = step % 5 == 0 ? .max : UInt16(truncatingIfNeeded: rng.next())
            pool.setCounter(pool.first.adding(UInt64(i)), value)
            model[i] = value
            for j in 0..<13 { XCTAssertEqual(pool.counter(pool.first.adding(UInt64(j))), model[j]) }
        }
    }
}
