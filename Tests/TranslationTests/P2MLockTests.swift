import XCTest
import AArch64
@testable import Translation

final class P2MLockTests: XCTestCase {
    func testAcquireReleaseAndScopedUse() throws {
        let lock = P2MLock()
        XCTAssertFalse(lock.isLocked)
        let held = lock.acquire()
        XCTAssertTrue(lock.isLocked)
        lock.release(held)
        XCTAssertFalse(lock.isLocked)

        let rig = Rig()
        var p2m = try rig.makeP2M()
        let mapped = try lock.withLock { (held: borrowing P2MLockHeld) throws(P2MError) -> P2MMapping? in
            XCTAssertTrue(lock.isLocked)
            var batch = ramBatch()
            try p2m.map(GFN(raw: 1), to: MFN(raw: 2), count: 1, as: .ramRW, flushing: &batch, holding: held)
            p2m.commit(&batch, holding: held)
            return p2m.lookup(GFN(raw: 1))
        }
        XCTAssertEqual(mapped?.mfn, MFN(raw: 2))
        XCTAssertFalse(lock.isLocked)
        // A throwing body still releases.
        XCTAssertThrowsError(try lock.withLock { (held: borrowing P2MLockHeld) throws(P2MError) -> Int in
            var batch = ramBatch()
            defer { p2m.commit(&batch, holding: held) }
            try p2m.map(GFN(raw: 1), to: MFN(raw: 2), count: 1, as: .ramRW, flushing: &batch, holding: held)
            return 0
        })
        XCTAssertFalse(lock.isLocked)
    }
}
