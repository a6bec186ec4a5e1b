import AArch64
import Ownership
import XCTest
@testable import HostExits

final class ControlDeviceTests: XCTestCase {
    private func write(_ file: inout ControlRegisterFile, _ ops: inout FakeOperations, _ offset: UInt64, _ value: UInt64,
                       bytes: Int = 8) throws(ControlAccessError) {
        XCTAssertNil(try file.access(ControlAccess(offset: offset, bytes: bytes, writeValue: value), operations: &ops))
    }
    private func read(_ file: inout ControlRegisterFile, _ ops: inout FakeOperations, _ offset: UInt64,
                      bytes: Int = 8) throws(ControlAccessError) -> UInt64? {
        try file.access(ControlAccess(offset: offset, bytes: bytes, writeValue: nil), operations: &ops)
    }

    func testLayoutPinned() {
        XCTAssertEqual(ControlRegisterFile.idOffset, 0x00)
        XCTAssertEqual(ControlRegisterFile.frameOffset, 0x08)
        XCTAssertEqual(ControlRegisterFile.countOffset, 0x10)
        XCTAssertEqual(ControlRegisterFile.domainOffset, 0x18)
        XCTAssertEqual(ControlRegisterFile.guestFrameOffset, 0x20)
        XCTAssertEqual(ControlRegisterFile.commandOffset, 0x28)
        XCTAssertEqual(ControlRegisterFile.statusOffset, 0x30)
        XCTAssertEqual(ControlRegisterFile.identification, 0x1_4856_4D43)
        XCTAssertEqual(ControlCommand.shareForDMA.rawValue, 1)
        XCTAssertEqual(ControlCommand.unshareForDMA.rawValue, 2)
        XCTAssertEqual(ControlCommand.donateToHypervisor.rawValue, 3)
        XCTAssertEqual(ControlCommand.reclaimFromHypervisor.rawValue, 4)
        XCTAssertEqual(ControlCommand.donateToGuest.rawValue, 5)
        XCTAssertEqual(ControlCommand.reclaimFromGuest.rawValue, 6)
    }

    func testRegistersReadBackInBothWidths() throws {
        var file = ControlRegisterFile()
        var ops = FakeOperations()
        XCTAssertEqual(try read(&file, &ops, 0x00), 0x1_4856_4D43)
        XCTAssertEqual(try read(&file, &ops, 0x00, bytes: 4), 0x4856_4D43)
        for offset: UInt64 in [0x08, 0x10, 0x18, 0x20] {
            try write(&file, &ops, offset, 0xAAAA_BBBB_CCCC_DDDD)
            XCTAssertEqual(try read(&file, &ops, offset), 0xAAAA_BBBB_CCCC_DDDD)
            XCTAssertEqual(try read(&file, &ops, offset, bytes: 4), 0xCCCC_DDDD)
            // A 32-bit write zero-extends.
            try write(&file, &ops, offset, 0x1234_5678, bytes: 4)
            XCTAssertEqual(try read(&file, &ops, offset), 0x1234_5678)
        }
        XCTAssertEqual(file.frame, 0x1234_5678)
        XCTAssertEqual(try read(&file, &ops, 0x30), 0)
        XCTAssertTrue(ops.calls.isEmpty)
    }

    func testMisuseIsRefusedAndChangesNothing() throws {
        var file = ControlRegisterFile()
        var ops = FakeOperations()
        try write(&file, &ops, 0x08, 0x40003)
        try write(&file, &ops, 0x10, 1)
        let table: [(ControlAccess, ControlAccessError)] = [
            (ControlAccess(offset: 0x08, bytes: 1, writeValue: 1), .unsupportedWidth(1)),
            (ControlAccess(offset: 0x08, bytes: 2, writeValue: nil), .unsupportedWidth(2)),
            (ControlAccess(offset: 0x08, bytes: 16, writeValue: nil), .unsupportedWidth(16)),
            (ControlAccess(offset: 0x0C, bytes: 4, writeValue: 1), .unaligned(0x0C)),
            (ControlAccess(offset: 0x2C, bytes: 4, writeValue: 1), .unaligned(0x2C)),
            (ControlAccess(offset: 0x09, bytes: 8, writeValue: nil), .unaligned(0x09)),
            (ControlAccess(offset: 0x38, bytes: 8, writeValue: 3), .outOfRange(0x38)),
            (ControlAccess(offset: 0xFF8, bytes: 8, writeValue: nil), .outOfRange(0xFF8)),
            (ControlAccess(offset: UInt64.max, bytes: 8, writeValue: nil), .outOfRange(UInt64.max)),
            (ControlAccess(offset: 0x00, bytes: 8, writeValue: 0), .readOnly(0x00)),
            (ControlAccess(offset: 0x30, bytes: 4, writeValue: 0), .readOnly(0x30)),
        ]
        for (access, expected) in table {
            let before = file
            XCTAssertThrowsError(try file.access(access, operations: &ops)) {
                XCTAssertEqual($0 as? ControlAccessError, expected, "\(access)")
            }
            XCTAssertEqual(file, before)
        }
        XCTAssertTrue(ops.calls.isEmpty)
    }

    func testCommandsRunTheOperationsWithTheArguments() throws {
        let table: [(frame: UInt64, count: UInt64, domain: UInt64, gfn: UInt64, command: UInt64, call: FakeOperations.Call)] = [
            (0x40003, 2, 0, 0, 1, .share(MFN(raw: 0x40003), 2)),
            (0x40003, 512, 0, 0, 2, .unshare(MFN(raw: 0x40003), 512)),
            (0x40004, 1, 0, 0, 3, .donateToHypervisor(MFN(raw: 0x40004))),
            (0x40004, 1, 0, 0, 4, .reclaimFromHypervisor(MFN(raw: 0x40004))),
            (0x40005, 1, 2, 0x10, 5, .donateToGuest(MFN(raw: 0x40005), DomainID(2), GFN(raw: 0x10))),
            (0x40005, 1, 0x7FEF, 0x10, 6, .reclaimFromGuest(DomainID(0x7FEF), GFN(raw: 0x10))),
        ]
        for row in table {
            var file = ControlRegisterFile()
            var ops = FakeOperations()
            try write(&file, &ops, 0x08, row.frame)
            try write(&file, &ops, 0x10, row.count)
            try write(&file, &ops, 0x18, row.domain)
            try write(&file, &ops, 0x20, row.gfn)
            try write(&file, &ops, 0x28, row.command, bytes: 4)
            XCTAssertEqual(ops.calls, [row.call])
            XCTAssertEqual(try read(&file, &ops, 0x30), 0)
            XCTAssertEqual(try read(&file, &ops, 0x28), row.command)
        }
    }

    func testBadArgumentsAreRefusedBeforeAnyOperation() throws {
        let frameLimit: UInt64 = 1 << 40
        let table: [(frame: UInt64, count: UInt64, domain: UInt64, gfn: UInt64, command: UInt64, status: UInt64)] = [
            (0x40003, 1, 0, 0, 0, 0x1_0001),
            (0x40003, 1, 0, 0, 7, 0x1_0001),
            (0x40003, 1, 0, 0, UInt64.max, 0x1_0001),
            (0x40003, 0, 0, 0, 1, 0x1_0002),
            (0x40003, 513, 0, 0, 1, 0x1_0002),
            (0x40003, UInt64.max, 0, 0, 2, 0x1_0002),
            (0x40003, 2, 0, 0, 3, 0x1_0002),
            (0x40003, 0, 0, 0, 4, 0x1_0002),
            (0x40003, 2, 1, 0, 5, 0x1_0002),
            (frameLimit, 1, 0, 0, 1, 0x1_0003),
            (frameLimit - 1, 2, 0, 0, 1, 0x1_0003),
            (UInt64.max, 1, 0, 0, 3, 0x1_0003),
            (0x40003, 1, 0x7FF0, 0, 5, 0x1_0004),
            (0x40003, 1, 0x1_0001, 0, 6, 0x1_0004),
            (0x40003, 1, 1, frameLimit, 5, 0x1_0003),
        ]
        for row in table {
            var file = ControlRegisterFile()
            var ops = FakeOperations()
            try write(&file, &ops, 0x08, row.frame)
            try write(&file, &ops, 0x10, row.count)
            try write(&file, &ops, 0x18, row.domain)
            try write(&file, &ops, 0x20, row.gfn)
            try write(&file, &ops, 0x28, row.command)
            XCTAssertEqual(try read(&file, &ops, 0x30), row.status, "\(row)")
            XCTAssertTrue(ops.calls.isEmpty, "\(row)")
        }
    }

    func testOwnershipRefusalLandsInStatusAndTheNextSuccessClearsIt() throws {
        var file = ControlRegisterFile()
        var ops = FakeOperations()
        try write(&file, &ops, 0x08, 0x40003)
        try write(&file, &ops, 0x10, 1)
        ops.failure = .EPERM(.dmaShared(MFN(raw: 0x40003), shares: 2))
        try write(&file, &ops, 0x28, 3)
        XCTAssertEqual(try read(&file, &ops, 0x30), 0x103)
        ops.failure = nil
        try write(&file, &ops, 0x28, 3)
        XCTAssertEqual(try read(&file, &ops, 0x30), 0)
    }

    func testEachCPUHasItsOwnArguments() throws {
        var cpu0 = ControlRegisterFile()
        var cpu1 = ControlRegisterFile()
        var ops = FakeOperations()
        try write(&cpu0, &ops, 0x08, 0x40003)
        try write(&cpu1, &ops, 0x08, 0x40007)
        try write(&cpu0, &ops, 0x10, 1)
        try write(&cpu1, &ops, 0x10, 1)
        try write(&cpu1, &ops, 0x28, 3)
        try write(&cpu0, &ops, 0x28, 1)
        XCTAssertEqual(ops.calls, [.donateToHypervisor(MFN(raw: 0x40007)), .share(MFN(raw: 0x40003), 1)])
    }

    func testTheIssueSequenceOverTheRealOwnership() throws {
        // 16 host frames at 0x4000_0000; the test page is frame 0x40003.
        var ops = try OwnershipOperations(banks: [MemoryBank(base: PhysAddr(0x4000_0000), bytes: 16 * PageSize.bytes4K)])
        var file = ControlRegisterFile()
        func run(_ command: UInt64) throws -> UInt64 {
            XCTAssertNil(try file.access(ControlAccess(offset: 0x28, bytes: 8, writeValue: command), operations: &ops))
            return try XCTUnwrap(try file.access(ControlAccess(offset: 0x30, bytes: 8, writeValue: nil), operations: &ops))
        }
        XCTAssertNil(try file.access(ControlAccess(offset: 0x08, bytes: 8, writeValue: 0x40003), operations: &ops))
        XCTAssertNil(try file.access(ControlAccess(offset: 0x10, bytes: 4, writeValue: 1), operations: &ops))
        let frame = MFN(raw: 0x40003)
        XCTAssertEqual(try run(1), 0)
        XCTAssertEqual(try run(1), 0)
        XCTAssertEqual(try run(3), ControlStatus.code(OwnershipError.EPERM(.dmaShared(frame, shares: 2))))
        XCTAssertEqual(try run(2), 0)
        XCTAssertEqual(try run(2), 0)
        XCTAssertEqual(try run(2), 0x203)                 // ENOENT: not shared any more
        XCTAssertEqual(ops.ownership.state(of: frame), .hostOwned)
        XCTAssertEqual(try run(3), 0)
        XCTAssertEqual(ops.ownership.state(of: frame)?.owner, .hypervisor)
        XCTAssertEqual(try run(3), 0x101)                 // EPERM: not the host's any more
        XCTAssertEqual(try run(1) >> 8, 1)                // and it cannot be shared for DMA
        XCTAssertEqual(try run(4), 0)
        XCTAssertEqual(ops.ownership.state(of: frame), .hostOwned)
        XCTAssertEqual(try run(4), 0x101)                 // reclaiming twice is refused
        XCTAssertEqual(ops.ownership.state(of: frame), .hostOwned)
    }
}
