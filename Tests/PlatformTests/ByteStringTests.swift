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

    /// The one-pass list search: whole entries only, a mismatch in one entry
    /// does not carry into the next, an empty entry matches only empty bytes,
    /// and bytes holding a NUL match no entry.
    func testListSearchMatchesWholeEntries() {
        XCTAssertNil(ByteString.index(of: ByteString.bytes("smc"), inList: "sm\0smcx\0hvc"))
        XCTAssertEqual(ByteString.index(of: ByteString.bytes("ok"), inList: "okay\0ok"), 1)
        XCTAssertEqual(ByteString.index(of: ByteString.bytes("ab"), inList: "xb\0ab"), 1)
        XCTAssertEqual(ByteString.index(of: ByteString.bytes(""), inList: "a\0\0b"), 1)
        XCTAssertNil(ByteString.index(of: ByteString.bytes(""), inList: "a\0b"))
        XCTAssertNil(ByteString.index(of: ByteString.bytes("a\0b"), inList: "a\0b"))
        XCTAssertEqual(ByteString.index(of: ByteString.bytes("b"), inList: "a\0b"), 1)
    }
}
