import XCTest
import HostExits

final class RunEndLatchTests: XCTestCase {
    func testOnlyTheFirstClaimEndsTheRun() {
        let latch = RunEndLatch()
        XCTAssertFalse(latch.isClaimed)
        XCTAssertEqual(latch.claim(cpu: 1), .first)
        XCTAssertTrue(latch.isClaimed)
        XCTAssertEqual(latch.claim(cpu: 0), .taken)
        XCTAssertEqual(latch.claim(cpu: 1), .again, "the claimer's own report faulted")
        XCTAssertEqual(latch.claim(cpu: 7), .taken)
    }
}
