import XCTest
@testable import Platform

/// `ByteString.bytes` reads a literal in place, and the literal comparisons
/// built on it.
final class ByteStringTests: XCTestCase {
    func testOneCharacterLiteralsAreStoredWithTheirBytes() {
        // `bytes` relies on it (`utf8Start` traps on a literal kept as a scalar).
        let cases: [(StaticString, UInt8)] = [("/", 0x2F), ("a", 0x61), ("\0", 0), ("\u{7F}", 0x7F)]
        for (literal, byte) in cases {
            XCTAssertTrue(literal.hasPointerRepresentation)
            XCTAssertEqual(Array(ByteString.bytes(literal)), [byte])
        }
        let alone: StaticString = "@"
        XCTAssertTrue(alone.hasPointerRepresentation)
        XCTAssertEqual(Array(ByteString.bytes(alone)), [UInt8(ascii: "@")])
    }

    func testLongerLiteralsReadTheirOwnBytes() {
        let literal: StaticString = "reserved-memory"
        let bytes = ByteString.bytes(literal)
        XCTAssertEqual(bytes.baseAddress, UnsafeRawPointer(literal.utf8Start))
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "reserved-memory")
        XCTAssertEqual(ByteString.bytes("").count, 0)
    }

    func testLiteralComparisonsUseTheBytes() {
        let name: StaticString = "iommus"
        let bytes = ByteString.bytes(name)
        XCTAssertTrue(ByteString.equals(bytes, "iommus"))
        XCTAssertFalse(ByteString.equals(bytes, "iommu"))
        XCTAssertTrue(ByteString.hasPrefix(bytes, "iommu"))
        XCTAssertTrue(ByteString.hasPrefix(bytes, "i"))
        XCTAssertFalse(ByteString.hasPrefix(bytes, "x"))
        XCTAssertEqual(ByteString.index(of: bytes, inList: "iommu-map\0iommus"), 1)
        XCTAssertNil(ByteString.index(of: bytes, inList: "iommu-map\0iommu-map-mask"))
        XCTAssertEqual(ByteString.index(of: ByteString.bytes("/"), inList: "/"), 0)
    }
}
