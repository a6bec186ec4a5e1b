import XCTest
import AArch64
@testable import Ownership

final class HostHypervisorTransitionsTests: XCTestCase {
    func testDonateAndReturnRoundTrip() throws {
        var o = makeOwnership()
        try o.hostDonateToHypervisor(bank0)
        XCTAssertEqual(o.state(of: bank0), FrameState(owner: .hypervisor, hostState: .noPage))
        expectRefusal(.EPERM(.notOwner(bank0, owner: .hypervisor)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostDonateToHypervisor(bank0)
        }
        try o.hypervisorDonateToHost(bank0)
        XCTAssertEqual(o.state(of: bank0), .hostOwned)
        expectRefusal(.EPERM(.notOwner(bank0, owner: .host)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hypervisorDonateToHost(bank0)
        }
        expectRefusal(.EINVAL(.notRAM(deviceFrame.address)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostDonateToHypervisor(deviceFrame)
        }
    }

    func testShareWithHypervisorExcludesEverythingElse() throws {
        var o = makeOwnership()
        try o.hostShareWithHypervisor(bank0)
        XCTAssertEqual(o.state(of: bank0), FrameState(owner: .host, hostState: .sharedOwned, borrower: .hypervisor))
        expectRefusal(.EPERM(.borrowedBy(bank0, .hypervisor)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostDonateToHypervisor(bank0)
        }
        expectRefusal(.EPERM(.borrowedBy(bank0, .hypervisor)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostShareWithHypervisor(bank0)
        }
        try o.hostUnshareWithHypervisor(bank0)
        XCTAssertEqual(o.state(of: bank0), .hostOwned)
        expectRefusal(.EPERM(.borrowedBy(bank0, .none)), &o) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hostUnshareWithHypervisor(bank0)
        }
    }

    /// alloc_xenheap_page / free_xenheap_page, and share_xen_page_with_guest's preconditions.
    func testXenheapLifecycle() throws {
        var w = World()
        w.addDomain(DomainConfig(id: DomainID(1)))
        let f = bank0.adding(5)
        expectRefusal(.EINVAL(.notXenheap(f)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.shareXenPageWithGuest(f, with: DomainID(1), readOnly: false)
        }
        try w.o.allocateXenheapPage(f)
        XCTAssertEqual(w.o.state(of: f), FrameState(owner: .hypervisor, hostState: .noPage, isXenheap: true))
        expectRefusal(.EPERM(.notOwner(f, owner: .hypervisor)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.hypervisorDonateToHost(f)   // the xenheap goes back through freeXenheapPage only
        }
        expectRefusal(.ENOENT(.noSuchDomain(DomainID(3))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.shareXenPageWithGuest(f, with: DomainID(3), readOnly: false)
        }
        try w.o.freeXenheapPage(f)
        XCTAssertEqual(w.o.state(of: f), .hostOwned)
        expectRefusal(.EINVAL(.notXenheap(f)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.freeXenheapPage(f)
        }
        // Shared with a guest, it is the guest's: not freeable by the hypervisor.
        try w.o.allocateXenheapPage(f)
        try w.o.shareXenPageWithGuest(f, with: DomainID(1), readOnly: false)
        expectRefusal(.EPERM(.notOwner(f, owner: .guest(DomainID(1)))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.freeXenheapPage(f)
        }
        expectRefusal(.EPERM(.notOwner(f, owner: .guest(DomainID(1)))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.shareXenPageWithGuest(f, with: DomainID(1), readOnly: true)
        }
    }

    func testDomainRegistryRefusals() throws {
        var w = World()
        w.o = try PageOwnership(banks: testBanks, maxDomains: 2, cache: RecordingCache())
        w.addDomain(DomainConfig(id: DomainID(1)))
        let cases: [(DomainID, OwnershipError)] = [
            (DomainID(1), .EINVAL(.domainExists(DomainID(1)))),
            (DomainID(DomainID.firstReserved), .EINVAL(.notADomain(DomainID(DomainID.firstReserved)))),
        ]
        for (id, expected) in cases {
            let p2m = w.makeP2M(vmid: 9)
            do {
                try w.o.createDomain(DomainConfig(id: id), p2m: p2m)
                XCTFail("created \(id)")
            } catch {
                XCTAssertEqual(error, expected)
            }
        }
        w.addDomain(DomainConfig(id: DomainID(2)))
        let p2m = w.makeP2M(vmid: 9)
        do {
            try w.o.createDomain(DomainConfig(id: DomainID(3)), p2m: p2m)
            XCTFail("created a third domain in two slots")
        } catch {
            XCTAssertEqual(error, .ENOMEM(.domainSlots(2)))
        }
        XCTAssertEqual(w.o.domainIDs, [DomainID(1), DomainID(2)])
        XCTAssertFalse(DomainID(DomainID.firstReserved).isGuest)
        XCTAssertTrue(DomainID(0).isGuest)
    }
}
