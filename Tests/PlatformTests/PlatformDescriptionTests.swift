import XCTest
import AArch64
@testable import Platform

final class PlatformDescriptionTests: XCTestCase {
    func testQEMUVirt1G() throws {
        try withTree(Fixture.bytes(Fixture.virt1G)) { tree in
            let p = try PlatformDescription(tree)
            XCTAssertEqual(Array(p.memoryBanks), [MemoryRange(base: PhysAddr(0x4000_0000), size: 0x4000_0000)!])
            XCTAssertEqual(p.console?.registers, MemoryRange(base: PhysAddr(0x0900_0000), size: 0x1000))
            XCTAssertEqual(p.smmus.count, 1)
            print(p.smmus[0], p.pciHostBridge.map { Array($0.windows) } as Any, p.psci as Any)
        }
    }
}
