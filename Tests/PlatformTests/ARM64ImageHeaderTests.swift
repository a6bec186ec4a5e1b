import XCTest
import AArch64
import Platform

/// The arm64 Image header (booting.rst) pinned by offset; Debian's 6.1 kernel
/// has text_offset 0, flags 0xa (little-endian, 4 KiB pages, anywhere).
final class ARM64ImageHeaderTests: XCTestCase {
    private func header(textOffset: UInt64 = 0, imageSize: UInt64 = 0x236_0000, flags: UInt64 = 0xA,
                        magic: UInt32 = 0x644D_5241, count: Int = 64) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 64)
        func put64(_ v: UInt64, _ at: Int) { for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        b[0] = 0x4D; b[1] = 0x5A   // code0 of an EFI-stub kernel: "MZ"
        put64(textOffset, 8)
        put64(imageSize, 16)
        put64(flags, 24)
        for i in 0..<4 { b[56 + i] = UInt8(truncatingIfNeeded: magic >> (8 * i)) }
        return Array(b.prefix(count))
    }

    private func parse(_ bytes: [UInt8]) throws(ARM64ImageError) -> ARM64ImageHeader {
        var result: Result<ARM64ImageHeader, ARM64ImageError> = .failure(.truncated(0))
        bytes.withUnsafeBytes { raw in result = Result { () throws(ARM64ImageError) in try ARM64ImageHeader(raw) } }
        return try result.get()
    }

    func testDebianKernelHeader() throws {
        let h = try parse(header())
        XCTAssertEqual(h.textOffset, 0)
        XCTAssertEqual(h.imageSize, 0x236_0000)
        XCTAssertEqual(h.flags, 0xA)
        XCTAssertEqual(h.placement(loadedAt: PhysAddr(raw: 0x5000_0000)),
                       MemoryRange(base: PhysAddr(raw: 0x5000_0000), size: 0x236_0000))
    }

    func testPlacementFollowsTextOffsetAndAlignment() throws {
        let old = try parse(header(textOffset: 0x8_0000))
        XCTAssertNotNil(old.placement(loadedAt: PhysAddr(raw: 0x4008_0000)))
        XCTAssertNil(old.placement(loadedAt: PhysAddr(raw: 0x4000_0000)))
        XCTAssertNil(old.placement(loadedAt: PhysAddr(raw: 0x4)))
        let new = try parse(header())
        XCTAssertNil(new.placement(loadedAt: PhysAddr(raw: 0x5010_0000)))
        XCTAssertNil(try parse(header(imageSize: 0x20_0000)).placement(loadedAt: PhysAddr(raw: 0xFFFF_FFFF_FFE0_0000 + 0)))
    }

    func testHostileHeadersAreRefused() {
        XCTAssertThrowsError(try parse(header(count: 63))) { XCTAssertEqual($0 as? ARM64ImageError, .truncated(63)) }
        XCTAssertThrowsError(try parse(header(magic: 0x644D_5242))) { XCTAssertEqual($0 as? ARM64ImageError, .badMagic(0x644D_5242)) }
        XCTAssertThrowsError(try parse(header(imageSize: 0))) { XCTAssertEqual($0 as? ARM64ImageError, .unknownImageSize) }
        XCTAssertThrowsError(try parse(header(flags: 0xB))) { XCTAssertEqual($0 as? ARM64ImageError, .bigEndian) }
        XCTAssertThrowsError(try parse(header(flags: 0x4))) { XCTAssertEqual($0 as? ARM64ImageError, .pageSizeNot4K(2)) }
        XCTAssertThrowsError(try parse(header(flags: 0x6))) { XCTAssertEqual($0 as? ARM64ImageError, .pageSizeNot4K(3)) }
    }
}
