import XCTest
import AArch64
@testable import Translation

final class TableGeometryTests: XCTestCase {
    func testStage1StartLevels() throws {
        // Stage 1 has no concatenation: the start level is the one whose single table covers the input.
        for (bits, level) in [(48, 0), (40, 0), (39, 1), (32, 1), (31, 1), (30, 2), (25, 2)] {
            let g = try TableGeometry(stage1InputBits: bits, outputBits: 48)
            XCTAssertEqual(g.startLevel, level, "\(bits)")
            XCTAssertEqual(g.rootTables, 1)
            XCTAssertEqual(g.inputFrameLimit, 1 << UInt64(bits - 12))
        }
        XCTAssertThrowsError(try TableGeometry(stage1InputBits: 49, outputBits: 48))
    }

    func testStage2FromVTCR() throws {
        let g = TableGeometry(vtcr: try VTCR(ipaBits: 40, paRange: .bits44, vmidWidth: .bits8), paRange: .bits44)
        XCTAssertEqual(g.startLevel, 1)
        XCTAssertEqual(g.rootTables, 2)
        XCTAssertEqual(g.outputFrameLimit, 1 << 32)
        // Outputs are capped at 48 bits even with FEAT_LPA.
        let wide = TableGeometry(vtcr: try VTCR(ipaBits: 48, paRange: .bits52, vmidWidth: .bits8), paRange: .bits52)
        XCTAssertEqual(wide.outputFrameLimit, 1 << 36)
    }
}
