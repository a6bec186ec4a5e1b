import XCTest
import AArch64
import Translation
@testable import Ownership

final class GrantMappingsTests: XCTestCase {
    let dom0 = DomainID(0), domU = DomainID(1)

    /// Seed 002: the predicate is direct-mapped AND IOMMU-enabled, and nothing
    /// else; in particular not whether the P2M is shared with the IOMMU (the
    /// regression tied it to `need_iommu_pt_sync`, false whenever it is shared).
    func testSeed002PredicateTruthTable() {
        for direct in [false, true] {
            for iommu in [false, true] {
                for shared in [false, true] {
                    let c = DomainConfig(id: dom0, directMapped: direct, iommuEnabled: iommu, sharesP2MWithIOMMU: shared)
                    XCTAssertEqual(c.needsIOMMUMapping, direct && iommu, "direct \(direct) iommu \(iommu) shared \(shared)")
                    XCTAssertEqual(GrantIOMMUPolicy.needsIOMMUMapping(directMapped: direct, iommuEnabled: iommu), direct && iommu)
                }
            }
        }
    }

    func makeWorld(dom0Config: DomainConfig) -> World {
        var w = World()
        w.addDomain(dom0Config)
        w.addDomain(DomainConfig(id: domU))
        try! w.o.hostDonateToGuest(bank0, to: domU, at: GFN(raw: 0x10))
        return w
    }

    /// Seed 002's bug: dom0 direct-mapped, IOMMU on, P2M shared with the IOMMU;
    /// a frame granted by a domU and mapped by dom0 must also be mapped 1:1 for
    /// DMA, or the device faults ("Unhandled context fault").
    func testSeed002GrantMapOnDirectMappedDomainWithSharedP2MGetsIOMMUMapping() throws {
        var w = makeWorld(dom0Config: DomainConfig(id: dom0, directMapped: true, iommuEnabled: true, sharesP2MWithIOMMU: true))
        let identity = GFN(raw: bank0.raw)
        try w.o.grantMap(bank0, grantedBy: domU, into: dom0, at: GFN(raw: 0x500), readOnly: true)
        XCTAssertEqual(w.lookup(dom0, GFN(raw: 0x500))?.type, .grantMapRO)
        XCTAssertEqual(w.lookup(dom0, identity)?.mfn, bank0)
        XCTAssertEqual(w.lookup(dom0, identity)?.type, .iommuMapRO)
        XCTAssertEqual(w.o.state(of: bank0)?.references, 2)

        // The same frame granted again, writable: one IOMMU mapping, upgraded.
        try w.o.grantMap(bank0, grantedBy: domU, into: dom0, at: GFN(raw: 0x501), readOnly: false)
        XCTAssertEqual(w.lookup(dom0, identity)?.type, .iommuMapRW)
        XCTAssertEqual(w.o.withDomain(dom0) { (d: borrowing GuestDomain<TestP2M>) in d.iommuGrantMappings },
                       [IOMMUGrantMapping(frame: bank0, mappings: 2, writableMappings: 1)])

        // Unmapping the writable one downgrades; the last one removes it.
        try w.o.grantUnmap(dom0, gfn: GFN(raw: 0x501))
        XCTAssertEqual(w.lookup(dom0, identity)?.type, .iommuMapRO)
        try w.o.grantUnmap(dom0, gfn: GFN(raw: 0x500))
        XCTAssertNil(w.lookup(dom0, identity))
        XCTAssertNil(w.lookup(dom0, GFN(raw: 0x500)))
        XCTAssertEqual(w.o.state(of: bank0)?.references, 1)
        XCTAssertEqual(w.o.withDomain(dom0) { (d: borrowing GuestDomain<TestP2M>) in d.iommuGrantMappings.count }, 0)
    }

    /// The separate-table case gets the mapping too; no IOMMU or no direct map gets none.
    func testIOMMUMappingFollowsOnlyThePredicate() throws {
        let configs: [(DomainConfig, Bool)] = [
            (DomainConfig(id: dom0, directMapped: true, iommuEnabled: true, sharesP2MWithIOMMU: false), true),
            (DomainConfig(id: dom0, directMapped: true, iommuEnabled: false), false),
            (DomainConfig(id: dom0, directMapped: false, iommuEnabled: true), false),
        ]
        for (config, expected) in configs {
            var w = makeWorld(dom0Config: config)
            try w.o.grantMap(bank0, grantedBy: domU, into: dom0, at: GFN(raw: 0x500), readOnly: false)
            XCTAssertEqual(w.lookup(dom0, GFN(raw: bank0.raw)) != nil, expected, "\(config)")
        }
    }

    /// A granter that gives its frame up while it is grant-mapped: the frame
    /// stays until the last grant mapping is gone and flushed, then returns.
    func testGrantedFrameOutlivesItsOwnersReclaim() throws {
        var w = makeWorld(dom0Config: DomainConfig(id: dom0))
        try w.o.grantMap(bank0, grantedBy: domU, into: dom0, at: GFN(raw: 0x500), readOnly: false)
        try w.o.reclaim(domU, gfn: GFN(raw: 0x10))
        XCTAssertEqual(w.o.state(of: bank0), FrameState(owner: .guest(domU), hostState: .noPage, references: 1))
        try w.o.grantUnmap(dom0, gfn: GFN(raw: 0x500))
        XCTAssertEqual(w.o.state(of: bank0), .hostOwned)
    }

    func testRefusedGrantsChangeNothing() throws {
        var w = makeWorld(dom0Config: DomainConfig(id: dom0, directMapped: true, iommuEnabled: true))
        expectRefusal(.EPERM(.selfForeign(domU)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.grantMap(bank0, grantedBy: self.domU, into: self.domU, at: GFN(raw: 0x500), readOnly: false)
        }
        expectRefusal(.EPERM(.notOwner(bank0.adding(1), owner: .host)), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.grantMap(bank0.adding(1), grantedBy: self.domU, into: self.dom0, at: GFN(raw: 0x500), readOnly: false)
        }
        try w.o.hostDonateToGuest(bank0.adding(2), to: dom0, at: GFN(raw: bank0.raw))
        expectRefusal(.EBUSY(.gfnOccupied(dom0, GFN(raw: bank0.raw))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.grantMap(bank0, grantedBy: self.domU, into: self.dom0, at: GFN(raw: 0x500), readOnly: false)
        }
        expectRefusal(.EINVAL(.notGrantMapped(dom0, GFN(raw: 0x500))), &w) { (o: inout TestOwnership) throws(OwnershipError) in
            try o.grantUnmap(self.dom0, gfn: GFN(raw: 0x500))
        }
    }
}
