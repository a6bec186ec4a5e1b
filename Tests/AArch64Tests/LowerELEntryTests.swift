import XCTest
import AArch64

/// The sequence that prepares a lower EL's entry, pinned.
final class LowerELEntryTests: XCTestCase {
    enum Step: Equatable {
        case vtcr(UInt64), vttbr(UInt64), hcr(UInt64), isb, tlbiALLE1, dsbNSH
    }
    struct Recorder: LowerELEntryRegisters {
        var steps: [Step] = []
        mutating func writeVTCR(_ value: VTCR) { steps.append(.vtcr(value.raw)) }
        mutating func writeVTTBR(_ value: VTTBR) { steps.append(.vttbr(value.raw)) }
        mutating func writeHCR(_ value: UInt64) { steps.append(.hcr(value)) }
        mutating func synchronizeContext() { steps.append(.isb) }
        mutating func invalidateAllEL1TLBs() { steps.append(.tlbiALLE1) }
        mutating func completeLocalTLBMaintenance() { steps.append(.dsbNSH) }
    }

    /// Before the ERET into a lower EL: the regime registers, an ISB, then every
    /// EL1&0 TLB entry of every VMID invalidated (TLBI ALLE1), completed (DSB NSH)
    /// and synchronized (ISB) as the last steps, so the first entry of each CPU
    /// finds no entry left by firmware or an earlier user of the VMID.
    func testFirstEntryIsPrecededByAnEL1TLBInvalidation() throws {
        let vtcr = try VTCR(ipaBits: 40, paRange: .bits40, vmidWidth: .bits8)
        let vttbr = try VTTBR(root: MFN(raw: 0x8_0000), vmid: 3, vtcr: vtcr, vmidWidth: .bits8)
        var r = Recorder()
        LowerELEntry.prepare(&r, vtcr: vtcr, vttbr: vttbr, hcr: 0x8000_0001)
        XCTAssertEqual(r.steps, [.vtcr(vtcr.raw), .vttbr(vttbr.raw), .hcr(0x8000_0001), .isb,
                                 .tlbiALLE1, .dsbNSH, .isb])
    }
}
