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
}
