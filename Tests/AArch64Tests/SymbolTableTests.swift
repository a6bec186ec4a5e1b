import XCTest
@testable import AArch64

final class SymbolTableTests: XCTestCase {
    /// The layout scripts/symbol-table.sh writes: header, 16-byte entries, names.
    func table(_ entries: [(UInt32, UInt32, String)], magic: UInt32 = SymbolTable.magic,
               count: UInt32? = nil) -> [UInt8] {
        var words: [UInt32] = [magic, count ?? UInt32(entries.count)]
        var names: [UInt8] = []
        for (start, end, name) in entries {
            words += [start, end, UInt32(names.count), UInt32(name.utf8.count)]
            names += Array(name.utf8)
        }
        var bytes: [UInt8] = []
        for w in words { bytes += [UInt8(w & 0xFF), UInt8(w >> 8 & 0xFF), UInt8(w >> 16 & 0xFF), UInt8(w >> 24)] }
        return bytes + names
    }

    func name(_ bytes: [UInt8], _ offset: UInt64) throws -> String? {
        try bytes.withUnsafeBytes { raw in
            let t = try SymbolTable(raw)
            guard let s = t.lookup(offset) else { return nil }
            return String(decoding: t.name(of: s), as: UTF8.self)
        }
    }

    func testLookupFindsTheFunctionHoldingTheAddress() throws {
        let bytes = table([(0x0, 0x40, "_start"), (0x40, 0xE8, "primary_entry"),
                           (0x1000, 0x1020, "Checks.expect(_:_:)"), (0x1030, 0x1100, "hvMain(_:)")])
        XCTAssertEqual(try name(bytes, 0), "_start")
        XCTAssertEqual(try name(bytes, 0x3F), "_start")
        XCTAssertEqual(try name(bytes, 0x40), "primary_entry")
        XCTAssertEqual(try name(bytes, 0x101C), "Checks.expect(_:_:)")
        XCTAssertEqual(try name(bytes, 0x10FC), "hvMain(_:)")
        // Between functions (padding), at an end (exclusive) and beyond the last: nothing.
        XCTAssertNil(try name(bytes, 0xE8))
        XCTAssertNil(try name(bytes, 0x1020))
        XCTAssertNil(try name(bytes, 0x1100))
        XCTAssertNil(try name(bytes, 0x1_0000_0000))
        try bytes.withUnsafeBytes { raw in
            let t = try SymbolTable(raw)
            XCTAssertEqual(t.count, 4)
            XCTAssertEqual(t.lookup(0x1004), SymbolTable.Symbol(start: 0x1000, end: 0x1020, nameRange: 72 + 19 ..< 72 + 38))
        }
    }

    func testEveryEntryIsFoundInALargeTable() throws {
        var entries: [(UInt32, UInt32, String)] = []
        for i in 0..<1000 { entries.append((UInt32(i * 0x100), UInt32(i * 0x100 + 0x80), "f\(i)")) }
        let bytes = table(entries)
        for i in stride(from: 0, to: 1000, by: 37) {
            XCTAssertEqual(try name(bytes, UInt64(i * 0x100 + 0x7C)), "f\(i)")
            XCTAssertNil(try name(bytes, UInt64(i * 0x100 + 0x80)))
        }
    }

    func testAnEmptyTableFindsNothing() throws {
        XCTAssertNil(try name(table([]), 0))
    }

    func testMalformedTablesAreRefusedWithTypedErrors() {
        func refusal(_ bytes: [UInt8]) -> SymbolTableError? {
            bytes.withUnsafeBytes { raw in
                do throws(SymbolTableError) { _ = try SymbolTable(raw); return nil } catch { return error }
            }
        }
        XCTAssertEqual(refusal([0x53, 0x59, 0x4D]), .tooShort)
        XCTAssertEqual(refusal(table([(0, 4, "a")], magic: 0x1234)), .badMagic(0x1234))
        XCTAssertEqual(refusal(table([(0, 4, "a")], count: 0x1000_0000)), .entriesBeyondTable(count: 0x1000_0000))
        XCTAssertEqual(refusal(table([(0, 4, "a")], count: 2)), .entriesBeyondTable(count: 2))
        XCTAssertEqual(refusal(table([(0x10, 0x20, "a"), (0x8, 0x9, "b")])), .entryOutOfOrder(index: 1))
        XCTAssertEqual(refusal(table([(0x10, 0x8, "a")])), .entryOutOfOrder(index: 0))
        var bytes = table([(0, 4, "abc")])
        bytes[16] = 2   // nameOffset 2, nameLength 3: past the 3 bytes of names
        bytes[20] = 3
        XCTAssertEqual(refusal(bytes), .nameBeyondTable(index: 0))
        var huge = table([(0, 4, "abc")])
        huge[23] = 0xFF  // nameLength near 2^32: must not wrap
        XCTAssertEqual(refusal(huge), .nameBeyondTable(index: 0))
    }
}
