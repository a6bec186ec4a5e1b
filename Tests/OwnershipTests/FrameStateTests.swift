import XCTest
import AArch64
@testable import Ownership

final class FrameStateTests: XCTestCase {
    /// Every field at its documented bit position (FrameState.swift's diagram).
    func testFieldPositionsArePinned() {
        let table: [(FrameState, UInt64)] = [
            (FrameState(owner: .none, hostState: .owned), 0),
            (FrameState(owner: .host, hostState: .owned), 1 << 32),
            (FrameState(owner: .hypervisor, hostState: .noPage), 2 << 32 | 3 << 34),
            (FrameState(owner: .guest(DomainID(0x1234)), hostState: .noPage), 0x1234 << 16 | 3 << 32 | 3 << 34),
            (FrameState(owner: .host, hostState: .sharedOwned, borrower: .iommu, dmaShares: 0xBEEF),
             0xBEEF | 1 << 32 | 1 << 34 | 1 << 36),
            (FrameState(owner: .host, hostState: .sharedOwned, borrower: .hypervisor), 1 << 32 | 1 << 34 | 2 << 36),
            (FrameState(owner: .host, hostState: .sharedOwned, borrower: .guest(DomainID(7))),
             7 << 16 | 1 << 32 | 1 << 34 | 3 << 36),
            (FrameState(owner: .guest(DomainID(1)), hostState: .sharedBorrowed), 1 << 16 | 3 << 32 | 2 << 34),
            (FrameState(owner: .none, hostState: .owned, isAllocated: true), 1 << 38),
            (FrameState(owner: .none, hostState: .owned, isXenheap: true), 1 << 39),
            (FrameState(owner: .none, hostState: .owned, cacheFlushRequired: true), 1 << 40),
            (FrameState(owner: .none, hostState: .owned, references: 1), 1 << 41),
            (FrameState(owner: .none, hostState: .owned, references: FrameState.maxReferences), 0x7F_FFFF << 41),
        ]
        for (state, raw) in table {
            XCTAssertEqual(state.raw, raw, "\(state)")
            XCTAssertEqual(FrameState(raw: raw), state)
        }
    }

    func testCountersSaturateAtTheirFieldWidths() {
        XCTAssertEqual(FrameState.maxDMAShares, 0xFFFF)
        XCTAssertEqual(FrameState.maxReferences, (1 << 23) - 1)
    }

    /// The state is the entry's word itself: reading it out of the frame table
    /// decodes nothing, and a transition writes the word it was built in.
    func testStateIsOneWord() {
        XCTAssertEqual(MemoryLayout<FrameState>.size, MemoryLayout<UInt64>.size)
    }

    /// Each setter changes its own field only, and the domain field stays
    /// canonical: it names the guest owner or guest borrower, else it is zero.
    func testSettersChangeOneFieldAndKeepTheDomainCanonical() {
        var s = FrameState(owner: .guest(DomainID(5)), hostState: .noPage, references: 3, dmaShares: 0,
                           isAllocated: true, cacheFlushRequired: true)
        XCTAssertEqual(s.raw, 5 << 16 | 3 << 32 | 3 << 34 | 1 << 38 | 1 << 40 | 3 << 41)
        s.owner = .host
        XCTAssertEqual(s.raw, 1 << 32 | 3 << 34 | 1 << 38 | 1 << 40 | 3 << 41, "no guest named: domain cleared")
        s.hostState = .sharedOwned
        s.borrower = .guest(DomainID(9))
        XCTAssertEqual(s, FrameState(owner: .host, hostState: .sharedOwned, borrower: .guest(DomainID(9)),
                                     references: 3, isAllocated: true, cacheFlushRequired: true))
        s.owner = .hypervisor
        XCTAssertEqual(s.borrower, .guest(DomainID(9)), "the borrower keeps its domain")
        s.borrower = .none
        s.references = FrameState.maxReferences
        s.dmaShares = 0xFFFF
        s.isAllocated = false
        s.isXenheap = true
        s.cacheFlushRequired = false
        XCTAssertEqual(s.raw, 0xFFFF | 2 << 32 | 1 << 34 | 1 << 39 | 0x7F_FFFF << 41)
        XCTAssertEqual(s, FrameState(owner: .hypervisor, hostState: .sharedOwned, references: FrameState.maxReferences,
                                     dmaShares: 0xFFFF, isXenheap: true))
        // Domain bits beside no guest are not part of the state.
        XCTAssertEqual(FrameState(raw: 0x1234 << 16 | 1 << 32), .hostOwned)
        XCTAssertEqual(FrameState(raw: 0x1234 << 16 | 1 << 32).raw, FrameState.hostOwned.raw)
    }

    /// The one-compare test agrees with pKVM's five conditions on every state
    /// that differs from an exclusively host-owned frame in one field.
    func testExclusivelyHostOwnedIsTheFiveConditions() {
        var states: [FrameState] = [.hostOwned]
        let owners: [PageOwner] = [.none, .host, .hypervisor, .guest(DomainID(1))]
        let borrowers: [Borrower] = [.none, .iommu, .hypervisor, .guest(DomainID(2))]
        for owner in owners {
            for host in HostPageState.allCases {
                for borrower in borrowers {
                    if case .guest = owner, case .guest = borrower { continue }
                    for (refs, shares) in [(UInt32(0), UInt16(0)), (1, 0), (0, 1), (FrameState.maxReferences, 0xFFFF)] {
                        states.append(FrameState(owner: owner, hostState: host, borrower: borrower,
                                                 references: refs, dmaShares: shares))
                        states.append(FrameState(owner: owner, hostState: host, borrower: borrower,
                                                 references: refs, dmaShares: shares, isAllocated: true,
                                                 isXenheap: true, cacheFlushRequired: true))
                    }
                }
            }
        }
        for s in states {
            let expected = s.owner == .host && s.hostState == .owned && s.borrower == .none
                && s.dmaShares == 0 && s.references == 0
            XCTAssertEqual(s.isExclusivelyHostOwned, expected, "\(s.raw)")
        }
    }

    /// `isOwned(by:)`/`isBorrowed(by:)` compare the encoded fields; they agree
    /// with decoding and `==` for every owner and borrower kind, a guest of the
    /// same or another domain included.
    func testOwnerAndBorrowerTestsAgreeWithDecodedEquality() {
        let owners: [PageOwner] = [.none, .host, .hypervisor, .guest(DomainID(1)), .guest(DomainID(0x1234))]
        let borrowers: [Borrower] = [.none, .iommu, .hypervisor, .guest(DomainID(1)), .guest(DomainID(0x1234))]
        for owner in owners {
            for borrower in borrowers {
                if case .guest = owner, case .guest = borrower { continue }
                let s = FrameState(owner: owner, hostState: .sharedOwned, borrower: borrower, references: 1)
                for o in owners { XCTAssertEqual(s.isOwned(by: o), s.owner == o, "\(s.raw) \(o)") }
                for b in borrowers { XCTAssertEqual(s.isBorrowed(by: b), s.borrower == b, "\(s.raw) \(b)") }
            }
        }
    }

    /// The donation states built from constants are exactly what the field
    /// initialiser makes of them (a guest's domain in its field included).
    func testDonationStatesMatchTheFieldInitialiser() {
        XCTAssertEqual(FrameState.hypervisorOwned.raw, FrameState(owner: .hypervisor, hostState: .noPage).raw)
        XCTAssertEqual(FrameState.xenheapOwned.raw, FrameState(owner: .hypervisor, hostState: .noPage, isXenheap: true).raw)
        for d in [DomainID(0), DomainID(1), DomainID(0x7FEF), DomainID(0xFFFF)] {
            XCTAssertEqual(FrameState.donated(to: d).raw,
                           FrameState(owner: .guest(d), hostState: .noPage, references: 1, isAllocated: true).raw, "\(d)")
        }
    }
}
