import XCTest
@testable import AArch64

final class EL2StackLayoutTests: XCTestCase {
    /// Boot/include/host.h: 8 CPUs, 16 KiB exception stacks, 64 KiB stacks.
    let layout = EL2StackLayout(base: 0x4010_0000, cpus: 8, exceptionStackBytes: 0x4000, stackBytes: 0x1_0000)!

    func testTheSlotMatchesBootIncludeHostH() {
        XCTAssertEqual(layout.slotBytes, 0x1_6000)                // HV_CPU_SLOT_SIZE
        XCTAssertEqual(layout.exceptionStackTopOffset, 0x5000)    // HV_CPU_EXCEPTION_STACK_TOP
        XCTAssertEqual(layout.end, 0x4010_0000 + 8 * 0x1_6000)
    }

    func testStacksAndTheirGuardPages() {
        for cpu in 0..<8 {
            let slot = 0x4010_0000 + UInt64(cpu) * 0x1_6000
            XCTAssertEqual(layout.exceptionStackTop(cpu: cpu), slot + 0x5000)
            XCTAssertEqual(layout.stackBase(cpu: cpu), slot + 0x6000)
            XCTAssertEqual(layout.stackTop(cpu: cpu), slot + 0x1_6000)
            // The page below each stack is its guard; the stacks themselves are not guards.
            XCTAssertEqual(layout.guardPage(containing: slot), .exceptionStack(cpu: cpu))
            XCTAssertEqual(layout.guardPage(containing: slot + 0xFFF), .exceptionStack(cpu: cpu))
            XCTAssertNil(layout.guardPage(containing: slot + 0x1000))
            XCTAssertNil(layout.guardPage(containing: slot + 0x4FFF))
            XCTAssertEqual(layout.guardPage(containing: slot + 0x5000), .stack(cpu: cpu))
            XCTAssertEqual(layout.guardPage(containing: slot + 0x5FF8), .stack(cpu: cpu))
            XCTAssertNil(layout.guardPage(containing: slot + 0x6000))
            XCTAssertNil(layout.guardPage(containing: slot + 0x1_5FFF))
        }
        // One CPU's stack overflowing lands in its own guard, never in the CPU below.
        XCTAssertEqual(layout.guardPage(containing: layout.stackBase(cpu: 1)! - 8), .stack(cpu: 1))
        XCTAssertEqual(layout.guardPage(containing: layout.stackBase(cpu: 1)! - 0x1000 - 0x4000 - 8), .exceptionStack(cpu: 1))
        XCTAssertNil(layout.guardPage(containing: 0x4010_0000 - 1))
        XCTAssertNil(layout.guardPage(containing: layout.end))
        XCTAssertNil(layout.stackTop(cpu: 8))
        XCTAssertNil(layout.exceptionStackTop(cpu: -1))
        XCTAssertNil(layout.stackBase(cpu: 8))
    }

    func testLayoutsThatCannotBeMappedAreRefused() {
        XCTAssertNil(EL2StackLayout(base: 0x4010_0800, cpus: 8, exceptionStackBytes: 0x4000, stackBytes: 0x1_0000))
        XCTAssertNil(EL2StackLayout(base: 0x4010_0000, cpus: 0, exceptionStackBytes: 0x4000, stackBytes: 0x1_0000))
        XCTAssertNil(EL2StackLayout(base: 0x4010_0000, cpus: 8, exceptionStackBytes: 0x4100, stackBytes: 0x1_0000))
        XCTAssertNil(EL2StackLayout(base: 0x4010_0000, cpus: 8, exceptionStackBytes: 0x4000, stackBytes: 0))
        XCTAssertNil(EL2StackLayout(base: UInt64.max - 0xFFF, cpus: 8, exceptionStackBytes: 0x4000, stackBytes: 0x1_0000))
        XCTAssertNil(EL2StackLayout(base: 0, cpus: Int.max, exceptionStackBytes: 0x4000, stackBytes: 0x1_0000))
    }
}
