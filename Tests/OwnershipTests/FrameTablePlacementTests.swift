import XCTest
import AArch64
@testable import Ownership

/// The board places the frame table in frames from its boot allocator.
final class FrameTablePlacementTests: XCTestCase {
    let banks = [MemoryBank(base: PhysAddr(0x4000_0000), bytes: 0x20_0000),
                 MemoryBank(base: PhysAddr(0x8_0000_0000), bytes: 0x1_0000)]   // sparse: the hole costs nothing

    func testBytesNeededCountsOnlyBankFrames() {
        XCTAssertEqual(FrameTableStorage.bytesNeeded(for: banks), (512 + 16) * 16)
    }

    func testEntriesLiveInTheGivenMemoryAndSurviveTheStorage() throws {
        let bytes = Int(FrameTableStorage.bytesNeeded(for: banks))
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0xA5, count: bytes)
        do {
            let storage = try FrameTableStorage(banks: banks, placingEntriesAt: memory)
            let table = storage.table
            XCTAssertEqual(table.frameCount, 528)
            XCTAssertEqual(UnsafeMutableRawPointer(table.entries), memory)
            // Every entry was initialised over the 0xA5 filler: host-owned, type_info at its initializer.
            for i in [0, 511, 512, 527] {
                XCTAssertEqual(table.state(at: i), .hostOwned)
                XCTAssertEqual(table.typeInfo(at: i), .initializer)
            }
            XCTAssertEqual(table.index(of: MFN(0x80_0000)), 512)
            XCTAssertNil(table.index(of: MFN(0x4_0200)), "the hole between the banks has no entry")
        }
        // The storage is gone; the memory is still the caller's (not freed by it).
        memory.storeBytes(of: 0x1234_5678, toByteOffset: 0, as: UInt64.self)
        XCTAssertEqual(memory.load(as: UInt64.self), 0x1234_5678)
    }
}
