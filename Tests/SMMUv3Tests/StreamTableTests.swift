import XCTest
import AArch64
@testable import SMMUv3

final class StreamTableTests: XCTestCase {
    func testLinearLayout() {
        let t = StreamTable(format: .linear, streamIDBits: 6, base: PhysAddr(0x4000_0000), baseFrames: 1)
        XCTAssertEqual(t.baseConfig, 6)  // FMT=linear, LOG2SIZE=6
        XCTAssertEqual(t.baseRegister, 1 << 62 | 0x4000_0000)
        XCTAssertEqual(StreamTable.baseBytes(format: .linear, streamIDBits: 6), 64 * 64)
        let memory = FakeMemory()
        XCTAssertEqual(t.entryAddress(StreamID(5), memory: memory), PhysAddr(0x4000_0140))
        XCTAssertNil(t.entryAddress(StreamID(64), memory: memory))
    }

    func testTwoLevelLayout() {
        let t = StreamTable(format: .twoLevel(split: 8), streamIDBits: 16, base: PhysAddr(0x4000_0000), baseFrames: 1)
        // FMT=1 [17:16], SPLIT=8 [10:6], LOG2SIZE=16 [5:0].
        XCTAssertEqual(t.baseConfig, 0x1_0210)
        XCTAssertEqual(StreamTable.baseBytes(format: .twoLevel(split: 8), streamIDBits: 16), 256 * 8)
        let memory = FakeMemory()
        XCTAssertNil(t.entryAddress(StreamID(0x1234), memory: memory), "no L2 array yet")
        memory.store64(PhysAddr(0x4000_0000 + 0x12 * 8),
                       StreamTableL1Descriptor.table(at: PhysAddr(0x4100_0000), split: 8).raw)
        XCTAssertEqual(t.entryAddress(StreamID(0x1234), memory: memory), PhysAddr(0x4100_0000 + 0x34 * 64))
    }

    func testEnsureEntryAllocatesAlignedL2AndPublishesItLast() throws {
        let memory = FakeMemory()
        var cache = RecordingCache(memory: memory)
        var allocator = FakeFrameAllocator()
        allocator.next = MFN(0x40001)
        let t = StreamTable(format: .twoLevel(split: 8), streamIDBits: 16, base: PhysAddr(0x4000_0000), baseFrames: 1)
        let address = try t.ensureEntry(StreamID(0x0110), memory: memory, cache: &cache, coherent: false,
                                        allocator: &allocator)
        XCTAssertEqual(address, PhysAddr(0x4000_4000 + 0x10 * 64))  // 16 KiB L2, aligned to 16 KiB
        // The L2 array is cleaned before the descriptor that makes it reachable.
        XCTAssertEqual(cache.log.operations, [
            .clean(PhysAddr(0x4000_4000), 16384), .synchronize, .clean(PhysAddr(0x4000_0008), 8), .synchronize,
        ])
        XCTAssertThrowsError(try t.ensureEntry(StreamID(0x1_0000), memory: memory, cache: &cache, coherent: false,
                                               allocator: &allocator)) {
            XCTAssertEqual($0 as? AttachError, .streamOutOfRange(StreamID(0x1_0000), bits: 16))
        }
        allocator.limit = allocator.next
        XCTAssertThrowsError(try t.ensureEntry(StreamID(0x0210), memory: memory, cache: &cache, coherent: true,
                                               allocator: &allocator)) {
            XCTAssertEqual($0 as? AttachError, .outOfMemory(frames: 4))
        }
        XCTAssertEqual(memory.load64(PhysAddr(0x4000_0010)), 0, "nothing published on failure")
    }
}
