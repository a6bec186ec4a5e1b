import XCTest
import AArch64

/// Whether and how frames are cleaned before a guest sees them, pinned.
final class GuestFrameCoherenceTests: XCTestCase {
    struct RecordingCache: CacheMaintenance {
        var ops: [String] = []
        mutating func clean(_ address: PhysAddr, bytes: UInt64) { ops.append("cvac \(address.raw) \(bytes)") }
        mutating func cleanAndInvalidate(_ address: PhysAddr, bytes: UInt64) { ops.append("civac \(address.raw) \(bytes)") }
        mutating func synchronize() { ops.append("dsb") }
    }

    /// HCR_EL2.FWB is bit 46 (FEAT_S2FWB). Without it, frames are cleaned and
    /// invalidated to PoC and the maintenance completed before the mapping.
    func testGuestFramesAreCleanedUnlessStage2ForcesWriteBack() {
        XCTAssertEqual(GuestFrameCoherence.hcrFWB, 0x0000_4000_0000_0000)
        var cache = RecordingCache()
        XCTAssertTrue(GuestFrameCoherence(hcr: 0x8000_0001).prepareForGuest(MFN(raw: 0x4_0002), count: 3,
                                                                           cache: &cache))
        XCTAssertEqual(cache.ops, ["civac \(0x4000_2000) \(3 * 4096)", "dsb"])
        cache.ops = []
        XCTAssertFalse(GuestFrameCoherence(hcr: 1 << 46 | 1).prepareForGuest(MFN(raw: 0x4_0002), cache: &cache))
        XCTAssertEqual(cache.ops, [])
        XCTAssertTrue(GuestFrameCoherence(hcr: 1 << 46).stage2ForcesWriteBack)
        XCTAssertFalse(GuestFrameCoherence(hcr: ~(UInt64(1) << 46)).stage2ForcesWriteBack)
    }
}
