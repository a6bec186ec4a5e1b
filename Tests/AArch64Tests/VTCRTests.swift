import XCTest
import AArch64

/// VTCR_EL2 values pinned to the Arm ARM register description (T0SZ [5:0], SL0 [7:6], IRGN0 [9:8],
/// ORGN0 [11:10], SH0 [13:12], TG0 [15:14], PS [18:16], VS [19], RES1 [31]).
final class VTCRTests: XCTestCase {
    func testRequiredConfigurations() throws {
        struct Row { let ipa: Int; let pa: PhysicalAddressRange; let vmid: VMIDWidth
                     let raw: UInt64; let level: Int; let tables: Int; let line: UInt }
        let rows: [Row] = [
            // 40-bit IPA, 40-bit PA: T0SZ 24, SL0 = 1 (level 1) with 2 concatenated
            // tables (one level fewer than starting at 0), WBWA inner-shareable walks, PS 0b010.
            Row(ipa: 40, pa: .bits40, vmid: .bits8, raw: 0x8002_3558, level: 1, tables: 2, line: #line),
            // 48-bit IPA, 48-bit PA, 16-bit VMID: T0SZ 16, SL0 = 2 (level 0), one table, PS 0b101, VS.
            Row(ipa: 48, pa: .bits48, vmid: .bits16, raw: 0x800D_3590, level: 0, tables: 1, line: #line),
            // 32-bit IPA: concatenated level 2 (4 tables, SL0 = 0) rather than a level-1
            // root with 4 used entries: three extra root pages buy one memory access less
            // on every stage-2 TLB miss (the policy KVM uses too).
            Row(ipa: 32, pa: .bits40, vmid: .bits8, raw: 0x8002_3520, level: 2, tables: 4, line: #line),
            // More shapes: 36-bit from level 1 (1 table); 43-bit needs 16 tables at level 1;
            // a 52-bit PA range still gets PS = 48 bits, our descriptors' output width.
            Row(ipa: 36, pa: .bits36, vmid: .bits8, raw: 0x8001_355C, level: 1, tables: 1, line: #line),
            Row(ipa: 43, pa: .bits44, vmid: .bits8, raw: 0x8004_3555, level: 1, tables: 16, line: #line),
            Row(ipa: 44, pa: .bits52, vmid: .bits8, raw: 0x8005_3594, level: 0, tables: 1, line: #line),
        ]
        for row in rows {
            let v = try VTCR(ipaBits: row.ipa, paRange: row.pa, vmidWidth: row.vmid)
            XCTAssertEqual(v.raw, row.raw, String(v.raw, radix: 16), line: row.line)
            XCTAssertEqual(v.startLevel, row.level, line: row.line)
            XCTAssertEqual(v.rootTables, row.tables, line: row.line)
            XCTAssertEqual(Int(v.t0sz), 64 - row.ipa, line: row.line)
            XCTAssertEqual(Int(v.sl0), 2 - row.level, line: row.line)
            XCTAssertEqual(v.tg0, 0, line: row.line)
            XCTAssertEqual(v.irgn0, 1, line: row.line)
            XCTAssertEqual(v.orgn0, 1, line: row.line)
            XCTAssertEqual(v.sh0, 3, line: row.line)
            XCTAssertEqual(v.vmid16, row.vmid == .bits16, line: row.line)
            XCTAssertEqual(v.rootBytes, UInt64(row.tables) * 4096, line: row.line)
        }
    }

    func testForbiddenCombinationsAreTypedErrors() {
        func expect(_ expected: Stage2ConfigurationError, line: UInt = #line,
                    _ body: () throws(Stage2ConfigurationError) -> VTCR) {
            do {
                _ = try body()
                XCTFail("accepted", line: line)
            } catch {
                XCTAssertEqual(error, expected, line: line)
            }
        }
        expect(.ipaSizeUnsupported(24)) { () throws(Stage2ConfigurationError) in try VTCR(ipaBits: 24, paRange: .bits40, vmidWidth: .bits8) }
        expect(.ipaSizeUnsupported(49)) { () throws(Stage2ConfigurationError) in try VTCR(ipaBits: 49, paRange: .bits52, vmidWidth: .bits8) }
        expect(.ipaExceedsPhysicalRange(ipaBits: 44, paBits: 40)) { () throws(Stage2ConfigurationError) in
            try VTCR(ipaBits: 44, paRange: .bits40, vmidWidth: .bits8) }
        expect(.startLevelTooLow(startLevel: 0, ipaBits: 36)) { () throws(Stage2ConfigurationError) in
            try VTCR(ipaBits: 36, startLevel: 0, paRange: .bits48, vmidWidth: .bits8) }
        expect(.tooManyConcatenatedTables(startLevel: 2, ipaBits: 40)) { () throws(Stage2ConfigurationError) in
            try VTCR(ipaBits: 40, startLevel: 2, paRange: .bits48, vmidWidth: .bits8) }
        // S2InvalidSL: SL0 = 0b10 needs PARange >= 44 bits.
        expect(.levelZeroStartNeedsPARange44(paBits: 42)) { () throws(Stage2ConfigurationError) in
            try VTCR(ipaBits: 41, startLevel: 0, paRange: .bits42, vmidWidth: .bits8) }
        expect(.startLevelUnsupported(3)) { () throws(Stage2ConfigurationError) in
            try VTCR(ipaBits: 32, startLevel: 3, paRange: .bits48, vmidWidth: .bits8) }
    }

    func testExplicitStartLevelWithoutConcatenation() throws {
        // 40-bit IPA from level 0: T0SZ 24, SL0 = 0b10, one table.
        let v = try VTCR(ipaBits: 40, startLevel: 0, paRange: .bits44, vmidWidth: .bits8)
        XCTAssertEqual(v.raw, 0x8004_3598)
        XCTAssertEqual(v.rootTables, 1)
    }
}
