import AArch64
import HostFakes
import Ownership
import Translation
import XCTest
@testable import HostExits

/// The host stage 2 as a set of unmapped frames; can be told to fail.
struct FakeHostStage2: HostStage2Editor {
    var unmapped: Set<MFN> = []
    var log: [String] = []
    var failure: OwnershipError?

    mutating func unmapFromHost(_ frame: MFN) throws(OwnershipError) {
        if let failure { throw failure }
        unmapped.insert(frame)
        log.append("unmap \(String(frame.raw, radix: 16))")
    }
    mutating func mapIntoHost(_ frame: MFN) throws(OwnershipError) {
        if let failure { throw failure }
        unmapped.remove(frame)
        log.append("map \(String(frame.raw, radix: 16))")
    }
}

final class HostOwnershipOperationsTests: XCTestCase {
    typealias Operations = HostOwnershipOperations<NullCache, TestP2M, FakeHostStage2>
    let frame = MFN(raw: 0x40003)
    let guest = DomainID(1)
    let ram = SparseRAM()
    let log = EventLog()

    private func operations() throws -> Operations {
        var ownership = try PageOwnership<NullCache, TestP2M>(
            banks: [MemoryBank(base: PhysAddr(0x4000_0000), bytes: 16 * PageSize.bytes4K)], cache: NullCache())
        let memory = SparseMemory(ram: ram)
        let p2m = try TestP2M(configuration: P2MConfiguration(vmid: 2, ipaBits: 39, paRange: .bits40, vmidWidth: .bits8),
                              memory: memory, pool: FreeListPool(memory: memory, first: MFN(raw: 0x10_0000), count: 16),
                              tlb: RecordingTLB(log: log), iommu: RecordingIOMMU(log: log),
                              listener: ownership.entryListener, observer: NoChangeObserver())
        try ownership.createDomain(DomainConfig(id: guest), p2m: p2m)
        return Operations(ownership: ownership, stage2: FakeHostStage2())
    }

    func testDonationLeavesTheHostsMappingsAndReclaimRestoresThem() throws {
        var ops = try operations()
        try ops.shareForDMA(frame, count: 1)
        XCTAssertThrowsError(try ops.donateToHypervisor(frame))
        XCTAssertTrue(ops.stage2.unmapped.isEmpty)
        try ops.unshareForDMA(frame, count: 1)
        try ops.donateToHypervisor(frame)
        XCTAssertEqual(ops.ownership.state(of: frame)?.owner, .hypervisor)
        XCTAssertEqual(ops.stage2.unmapped, [frame])
        try ops.reclaimFromHypervisor(frame)
        XCTAssertEqual(ops.ownership.state(of: frame), .hostOwned)
        XCTAssertEqual(ops.stage2.log, ["unmap 40003", "map 40003"])
    }

    func testAFailedUnmapUndoesTheDonation() throws {
        var ops = try operations()
        ops.stage2.failure = .ENOMEM(.tablePages(GFN(raw: 0x40003)))
        let before = ops.ownership.frames.snapshot()
        XCTAssertThrowsError(try ops.donateToHypervisor(frame)) {
            XCTAssertEqual($0 as? OwnershipError, .ENOMEM(.tablePages(GFN(raw: 0x40003))))
        }
        XCTAssertEqual(ops.ownership.frames.snapshot(), before)
        XCTAssertThrowsError(try ops.donateToGuest(frame, domain: guest, at: GFN(raw: 0x10)))
        XCTAssertEqual(ops.ownership.state(of: frame)?.owner, .host)
        XCTAssertNil(ops.ownership.withDomain(guest) { (d: borrowing GuestDomain<TestP2M>) in d.p2m.translate(GFN(raw: 0x10)) } ?? nil)
    }

    func testAFailedRemapUndoesTheReclaim() throws {
        var ops = try operations()
        try ops.donateToHypervisor(frame)
        ops.stage2.failure = .ENOMEM(.tablePages(GFN(raw: 0x40003)))
        let before = ops.ownership.frames.snapshot()
        XCTAssertThrowsError(try ops.reclaimFromHypervisor(frame))
        XCTAssertEqual(ops.ownership.frames.snapshot(), before)
        XCTAssertEqual(ops.stage2.unmapped, [frame])
    }

    func testGuestDonationAndReclaim() throws {
        var ops = try operations()
        try ops.donateToGuest(frame, domain: guest, at: GFN(raw: 0x10))
        XCTAssertEqual(ops.ownership.state(of: frame)?.owner, .guest(guest))
        XCTAssertEqual(ops.stage2.unmapped, [frame])
        XCTAssertThrowsError(try ops.reclaimFromGuest(guest, at: GFN(raw: 0x11)))
        XCTAssertEqual(ops.stage2.unmapped, [frame])
        try ops.reclaimFromGuest(guest, at: GFN(raw: 0x10))
        XCTAssertEqual(ops.ownership.state(of: frame)?.owner, .host)
        XCTAssertTrue(ops.stage2.unmapped.isEmpty)
        // A failed remap gives the frame back to the guest, where it was.
        try ops.donateToGuest(frame, domain: guest, at: GFN(raw: 0x10))
        ops.stage2.failure = .ENOMEM(.tablePages(GFN(raw: 0x40003)))
        XCTAssertThrowsError(try ops.reclaimFromGuest(guest, at: GFN(raw: 0x10)))
        XCTAssertEqual(ops.ownership.state(of: frame)?.owner, .guest(guest))
    }

    func testTheControlDeviceDrivesIt() throws {
        var ops = try operations()
        var file = ControlRegisterFile()
        _ = try file.access(ControlAccess(offset: 0x08, bytes: 8, writeValue: frame.raw), operations: &ops)
        _ = try file.access(ControlAccess(offset: 0x10, bytes: 8, writeValue: 1), operations: &ops)
        _ = try file.access(ControlAccess(offset: 0x28, bytes: 8, writeValue: 3), operations: &ops)
        XCTAssertEqual(try file.access(ControlAccess(offset: 0x30, bytes: 8, writeValue: nil), operations: &ops), 0)
        XCTAssertEqual(ops.stage2.unmapped, [frame])
    }
}
