import XCTest
import AArch64
@testable import SMMUv3

final class InvalidationPlannerTests: XCTestCase {
    func commands(_ p: InvalidationPlanner, _ scope: InvalidationScope, first: UInt64, pages: UInt64) -> [Command] {
        var out: [Command] = []
        p.plan(scope, first: PageNumber(first), pages: pages) { out.append($0) }
        return out
    }

    func testRangesCoverExactlyTheRun() {
        let p = InvalidationPlanner(rangeInvalidation: true)
        for pages: UInt64 in [1, 2, 3, 16, 31, 33, 511, 512, 513, 1000, 262_144, 262_143, 1 << 30] {
            let cmds = commands(p, .stage2(vmid: 1), first: 0x100, pages: pages)
            var next: UInt64 = 0x100
            for c in cmds {
                XCTAssertEqual(c.opcode, Command.Opcode.tlbiS2IPA.rawValue)
                XCTAssertEqual((c.dw1 & Command.ipaMask) >> 12, next, "contiguous, pages \(pages)")
                // Never the Reserved NUM=0, SCALE=0, TTL=0 with TG != 0.
                if c.dw1 >> Command.tgShift & 3 != 0 { XCTAssertNotEqual(c.dw0 & 0x1FF_F000, 0) }
                next += c.rangePages
            }
            XCTAssertEqual(next - 0x100, pages, "pages \(pages)")
            XCTAssertLessThanOrEqual(cmds.count, 7)
        }
    }

    func testPowerOfTwoRunIsOneCommand() {
        let p = InvalidationPlanner(rangeInvalidation: true)
        let cmds = commands(p, .stage1(asid: 3, vmid: 0), first: 0, pages: 262_144)
        XCTAssertEqual(cmds, [.tlbiNHVA(asid: 3, va: IOVA(0), range: TLBIRange(num: 0, scale: 18))])
        XCTAssertEqual(commands(p, .stage1(asid: 3, vmid: 0), first: 0, pages: 512).count, 1)
        XCTAssertEqual(commands(p, .stage1(asid: 3, vmid: 0), first: 0, pages: 16).count, 1)
    }

    func testSinglePageIsANonRangeTLBI() {
        let p = InvalidationPlanner(rangeInvalidation: true)
        XCTAssertEqual(commands(p, .stage2(vmid: 2), first: 5, pages: 1), [.tlbiS2IPA(vmid: 2, ipa: IPA(0x5000))])
    }

    func testWithoutRILOneCommandPerPageThenWholeASID() {
        let p = InvalidationPlanner(rangeInvalidation: false, maximumCommands: 64)
        let small = commands(p, .stage1(asid: 3, vmid: 0), first: 0x10, pages: 16)
        XCTAssertEqual(small.count, 16)
        XCTAssertEqual(small.last, .tlbiNHVA(asid: 3, va: IOVA(0x1F000)))
        XCTAssertEqual(commands(p, .stage1(asid: 3, vmid: 0), first: 0, pages: 65), [.tlbiNHASID(asid: 3)])
        XCTAssertEqual(commands(p, .stage2(vmid: 4), first: 0, pages: 512), [.tlbiS12VMAll(vmid: 4)])
    }

    /// Each planned command is exactly what the builders make for its scope
    /// (ASID and VMID, or VMID), leaf flag, range and address, including
    /// address bits the IPA field (dw1 [51:12]) drops and the VA field keeps.
    func testCommandsMatchTheBuildersForEveryScopeLeafAndRange() {
        let ril = InvalidationPlanner(rangeInvalidation: true, leafOnly: true)
        XCTAssertEqual(commands(ril, .stage1(asid: 5, vmid: 7), first: 0x10, pages: 3),
                       [.tlbiNHVA(asid: 5, vmid: 7, va: IOVA(0x10000), range: TLBIRange(num: 2, scale: 0), leaf: true)])
        XCTAssertEqual(commands(ril, .stage2(vmid: 9), first: 0x10, pages: 34),
                       [.tlbiS2IPA(vmid: 9, ipa: IPA(0x10000), range: TLBIRange(num: 16, scale: 1), leaf: true)])
        let high: UInt64 = 1 << 40 | 0x23  // address bit 52 set: outside the IPA field, inside the VA field
        XCTAssertEqual(commands(ril, .stage2(vmid: 9), first: high, pages: 1),
                       [.tlbiS2IPA(vmid: 9, ipa: IPA(high << 12), leaf: true)])
        XCTAssertEqual(commands(ril, .stage2(vmid: 9), first: high, pages: 1).first?.dw1, 0x23000 | Command.leaf)
        XCTAssertEqual(commands(ril, .stage1(asid: 5, vmid: 7), first: high, pages: 1),
                       [.tlbiNHVA(asid: 5, vmid: 7, va: IOVA(high << 12), leaf: true)])
        let perPage = InvalidationPlanner(rangeInvalidation: false)
        XCTAssertEqual(commands(perPage, .stage1(asid: 5, vmid: 7), first: 0x10, pages: 2),
                       [.tlbiNHVA(asid: 5, vmid: 7, va: IOVA(0x10000)), .tlbiNHVA(asid: 5, vmid: 7, va: IOVA(0x11000))])
        XCTAssertEqual(commands(perPage, .stage2(vmid: 9), first: 0x10, pages: 1), [.tlbiS2IPA(vmid: 9, ipa: IPA(0x10000))])
    }

    func testZeroPagesIsNothing() {
        XCTAssertTrue(commands(InvalidationPlanner(rangeInvalidation: true), .stage2(vmid: 1), first: 0, pages: 0).isEmpty)
    }
}
