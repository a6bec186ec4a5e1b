import AArch64
import Ownership
import XCTest
@testable import HostExits

final class ControlStatusTests: XCTestCase {
    func testEveryOwnershipErrorHasItsPinnedCode() {
        let m = MFN(raw: 0x40001)
        let p = PhysAddr(raw: 0x4000_1000)
        let d = DomainID(1)
        let g = GFN(raw: 5)
        let table: [(OwnershipError, UInt64)] = [
            (.EPERM(.notOwner(m, owner: .hypervisor)), 0x101),
            (.EPERM(.wrongHostState(m, .noPage)), 0x102),
            (.EPERM(.dmaShared(m, shares: 2)), 0x103),
            (.EPERM(.borrowedBy(m, .iommu)), 0x104),
            (.EPERM(.selfForeign(d)), 0x105),
            (.ENOENT(.unmapped(d, g)), 0x201),
            (.ENOENT(.noSuchDomain(d)), 0x202),
            (.ENOENT(.notDMAShared(m)), 0x203),
            (.ENOMEM(.tablePages(g)), 0xC01),
            (.ENOMEM(.domainSlots(8)), 0xC02),
            (.ENOMEM(.hostDeviceSlots(16)), 0xC03),
            (.EBUSY(.xenheapAlreadyMapped(m, at: g)), 0x1001),
            (.EBUSY(.gfnOccupied(d, g)), 0x1002),
            (.EBUSY(.p2mEntryExists(g)), 0x1003),
            (.EBUSY(.flushPending(m)), 0x1004),
            (.EBUSY(.iommuNotConfirmed(g)), 0x1005),
            (.EEXIST(.dmaDomainAttached(3)), 0x1101),
            (.EEXIST(.sharedInfoInstalled(m)), 0x1102),
            (.EINVAL(.bankMisaligned(p, bytes: 1)), 0x1601),
            (.EINVAL(.bankOverlap(p)), 0x1602),
            (.EINVAL(.misaligned(p)), 0x1603),
            (.EINVAL(.sizeMisaligned(1)), 0x1604),
            (.EINVAL(.rangeWraps(p, bytes: 1)), 0x1605),
            (.EINVAL(.ramClaimedAsDevice(p)), 0x1606),
            (.EINVAL(.notRAM(p)), 0x1607),
            (.EINVAL(.notADomain(d)), 0x1608),
            (.EINVAL(.domainExists(d)), 0x1609),
            (.EINVAL(.gfnOutOfRange(g)), 0x160A),
            (.EINVAL(.grantFrameIndex(1, status: true)), 0x160B),
            (.EINVAL(.sharedInfoIndex(1)), 0x160C),
            (.EINVAL(.notXenheap(m)), 0x160D),
            (.EINVAL(.notGuestRAM(d, g)), 0x160E),
            (.EINVAL(.notGrantMapped(d, g)), 0x160F),
            (.EINVAL(.rangeEmpty), 0x1610),
            (.EINVAL(.dmaDomainUnknown(1)), 0x1611),
            (.EINVAL(.p2mRejected(g)), 0x1612),
            (.EINVAL(.notHostDevice(p, bytes: 0x1000)), 0x1613),
            (.EINVAL(.deviceRegionOverlapsRAM(p)), 0x1614),
            (.EOVERFLOW(.dmaShareCount(m)), 0x4B01),
            (.EOVERFLOW(.referenceCount(m)), 0x4B02),
            (.EOVERFLOW(.iommuMappingCount(m)), 0x4B03),
        ]
        for (error, code) in table { XCTAssertEqual(ControlStatus.code(error), code, "\(error)") }
        // Distinct codes, none of them success or a device code.
        XCTAssertEqual(Set(table.map(\.1)).count, table.count)
        XCTAssertFalse(table.contains { $0.1 == ControlStatus.success || $0.1 >= 0x1_0000 })
    }

    func testDeviceRefusalCodes() {
        XCTAssertEqual(ControlStatus.success, 0)
        XCTAssertEqual(ControlStatus.code(ControlCommandError.unknownCommand(9)), 0x1_0001)
        XCTAssertEqual(ControlStatus.code(ControlCommandError.countOutOfRange(0)), 0x1_0002)
        XCTAssertEqual(ControlStatus.code(ControlCommandError.frameOutOfRange(0)), 0x1_0003)
        XCTAssertEqual(ControlStatus.code(ControlCommandError.domainOutOfRange(0)), 0x1_0004)
    }
}
