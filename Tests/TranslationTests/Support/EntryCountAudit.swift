import XCTest
import AArch64
@testable import Translation

/// Recounts the valid entries of every table page reachable from `table`'s root
/// and compares each with the count the engine kept in `pool`. Returns the number
/// of table pages audited, so a caller can see the walk really happened. A table
/// below the root is never empty, since the edit that empties it unlinks it
/// (except midway through a bounded teardown: `allowEmpty`).
@discardableResult
func auditValidEntryCounts<D: VMSAv8Descriptor, M: PhysicalMemory>(
    _ table: TranslationTable<D>, memory: M, pool: FakePool, allowEmpty: Bool = false,
    _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) -> Int {
    var audited = 0
    func visit(_ page: MFN, level: Int, isRoot: Bool = false) {
        var valid = 0
        for i in 0..<UInt64(TableLevel.entriesPerTable) {
            let d = memory.load64(page.address.adding(i * TableLevel.descriptorBytes))
            guard D.isValid(raw: d) else { continue }
            valid += 1
            if D.isTable(raw: d, atLevel: level) { visit(D.outputFrame(raw: d), level: level + 1) }
        }
        audited += 1
        if !isRoot && !allowEmpty { XCTAssertNotEqual(valid, 0, "empty table left linked: \(message())", file: file, line: line) }
        XCTAssertEqual(pool.validEntryCount(page), valid,
                       "table page \(String(page.raw, radix: 16)) at level \(level): \(message())", file: file, line: line)
    }
    for i in 0..<UInt64(table.geometry.rootTables) { visit(table.root.adding(i), level: table.geometry.startLevel, isRoot: true) }
    return audited
}
