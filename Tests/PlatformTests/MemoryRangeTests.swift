import XCTest
import AArch64
@testable import Platform

final class MemoryRangeTests: XCTestCase {
    func testWrapIsRefused() {
        XCTAssertNil(MemoryRange(base: PhysAddr(UInt64.max), size: 2))
        XCTAssertNotNil(MemoryRange(base: PhysAddr(UInt64.max - 1), size: 1))
    }

    func testFramesInsideAndTouching() {
        let table: [(UInt64, UInt64, inside: (UInt64, UInt64), touching: (UInt64, UInt64))] = [
            (0x4000_0000, 0x4000_0000, (0x40000, 0x40000), (0x40000, 0x40000)),
            (0x1001, 0x2000, (0x2, 0x1), (0x1, 0x3)),
            (0x1000, 0xFFF, (0x1, 0), (0x1, 0x1)),
            (0x1800, 0x100, (0x2, 0), (0x1, 0x1)),
            (0x2000, 0, (0x2, 0), (0x2, 0)),
        ]
        for (base, size, inside, touching) in table {
            let range = MemoryRange(base: PhysAddr(base), size: size)!
            XCTAssertEqual(range.framesInside.isEmpty ? 0 : range.framesInside.first.raw, inside.1 == 0 ? 0 : inside.0)
            XCTAssertEqual(range.framesInside.count, inside.1, "\(base)")
            XCTAssertEqual(range.framesTouching, FrameRange(first: MFN(touching.0), count: touching.1), "\(base)")
        }
        // The very top page of the address space.
        let top = MemoryRange(base: PhysAddr(UInt64.max - 0x7FF), size: 0x7FF)!
        XCTAssertTrue(top.framesInside.isEmpty)
        XCTAssertEqual(top.framesTouching.count, 1)
    }

    func testOverlapAndContainment() {
        let a = MemoryRange(base: PhysAddr(0x1000), size: 0x1000)!
        XCTAssertTrue(a.contains(PhysAddr(0x1FFF)))
        XCTAssertFalse(a.contains(PhysAddr(0x2000)))
        XCTAssertTrue(a.overlaps(MemoryRange(base: PhysAddr(0x1FFF), size: 1)!))
        XCTAssertFalse(a.overlaps(MemoryRange(base: PhysAddr(0x2000), size: 1)!))
        XCTAssertFalse(a.overlaps(MemoryRange(base: PhysAddr(0x1800), size: 0)!))
    }
}
