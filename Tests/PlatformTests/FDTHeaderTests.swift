import XCTest
@testable import Platform

final class FDTHeaderTests: XCTestCase {
    func testRealDumpHeaderFields() throws {
        let bytes = Fixture.bytes(Fixture.virt1G)
        let header = try bytes.withUnsafeBytes { raw in try FDTHeader(raw) }
        XCTAssertEqual(header.totalSize, 0x10_0000)
        XCTAssertEqual(header.version, 17)
        XCTAssertEqual(header.lastCompatibleVersion, 16)
        XCTAssertEqual(header.structOffset, bytes.be32(at: 8))
        XCTAssertEqual(header.stringsOffset, bytes.be32(at: 12))
        XCTAssertEqual(header.reservationMapOffset, bytes.be32(at: 16))
        XCTAssertEqual(header.structSize, bytes.be32(at: 36))
        XCTAssertEqual(header.stringsSize, bytes.be32(at: 32))
    }

    /// The spec's field order pinned to byte offsets (DT spec v0.4 table 5.1).
    func testHeaderLayoutMatchesSpec() throws {
        var bytes = [UInt8](repeating: 0, count: 0x200)
        let fields: [(Int, UInt32)] = [(0, 0xD00D_FEED), (4, 0x200), (8, 0x40), (12, 0x100), (16, 0x28),
                                       (20, 17), (24, 16), (28, 3), (32, 0x20), (36, 0x40)]
        for (offset, value) in fields { bytes.setBE32(value, at: offset) }
        let h = try bytes.withUnsafeBytes { raw in try FDTHeader(raw) }
        XCTAssertEqual([h.totalSize, h.structOffset, h.stringsOffset, h.reservationMapOffset, h.version,
                        h.lastCompatibleVersion, h.bootCPU, h.stringsSize, h.structSize],
                       [0x200, 0x40, 0x100, 0x28, 17, 16, 3, 0x20, 0x40])
    }

    func testTotalSizeFromRawPointer() throws {
        let bytes = Fixture.bytes(Fixture.virt1G)
        let size = try bytes.withUnsafeBytes { raw in
            try FDTHeader.totalSize(ofBlobAt: raw.baseAddress!, limit: 2 << 20)
        }
        XCTAssertEqual(size, 0x10_0000)
        // The convenience initializer builds the tree from the pointer alone.
        let nodes = try bytes.withUnsafeBytes { raw in
            try FlattenedDeviceTree(blobAt: raw.baseAddress!, limit: 2 << 20).nodes.reduce(0) { n, _ in n + 1 }
        }
        XCTAssertGreaterThan(nodes, 20)
    }

    func testTotalSizeFromRawPointerRejections() {
        func probe(_ bytes: [UInt8], limit: Int) -> FDTError? {
            bytes.withUnsafeBytes { raw -> FDTError? in
                do throws(FDTError) {
                    _ = try FDTHeader.totalSize(ofBlobAt: raw.baseAddress!, limit: limit)
                    return nil
                } catch { return error }
            }
        }
        var bytes = Array(Fixture.bytes(Fixture.virt1G).prefix(64))
        XCTAssertEqual(probe(bytes, limit: 0x8_0000), .totalSizeExceedsLimit(totalSize: 0x10_0000, limit: 0x8_0000))
        bytes.setBE32(8, at: 4)
        XCTAssertEqual(probe(bytes, limit: 0x8_0000), .totalSizeTooSmall(8))
        bytes.setBE32(0x1234_5678, at: 0)
        XCTAssertEqual(probe(bytes, limit: 0x8_0000), .badMagic(0x1234_5678))
    }
}
