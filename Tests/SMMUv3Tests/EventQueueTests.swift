import XCTest
import AArch64
import Translation
@testable import SMMUv3

/// Draining, wrap and both overflow signals.
final class EventQueueTests: XCTestCase {
    func testEventOverflowQEMUStyleViaGERROR() throws {
        var h = try Harness(.qemu72, configuration: SMMUConfiguration(eventQueueLog2Entries: 2))
        for i: UInt32 in 0..<7 { _ = h.fake.dma(stream: 0x40 + i, iova: 0, write: false) }
        let (events, result) = h.drain()
        XCTAssertEqual(events.count, 4)
        XCTAssertTrue(result.overflowed)
        XCTAssertEqual(h.fake.gerror ^ h.fake.gerrorn, 0)
        // Recording resumes and the next drain is clean.
        _ = h.fake.dma(stream: 0x50, iova: 0, write: false)
        XCTAssertEqual(h.drain().1, EventDrainResult(count: 1, overflowed: false))
    }

    func testEventOverflowArchitectedOVFLG() throws {
        var h = try Harness(.qemu10, configuration: SMMUConfiguration(eventQueueLog2Entries: 2))
        for i: UInt32 in 0..<5 { _ = h.fake.dma(stream: 0x40 + i, iova: 0, write: false) }
        let (events, result) = h.drain()
        XCTAssertEqual(events.map(\.stream.raw), [0x40, 0x41, 0x42, 0x43])
        XCTAssertTrue(result.overflowed)
        XCTAssertEqual(h.fake.evtqCons & EventQueue.overflowFlag, h.fake.evtqProd & EventQueue.overflowFlag)
        _ = h.fake.dma(stream: 0x50, iova: 0, write: false)
        XCTAssertEqual(h.drain().1, EventDrainResult(count: 1, overflowed: false))
    }

    func testEventQueueWraps() throws {
        var h = try Harness(.qemu72, configuration: SMMUConfiguration(eventQueueLog2Entries: 2))
        var seen: [UInt32] = []
        for round: UInt32 in 0..<3 {
            for i: UInt32 in 0..<3 { _ = h.fake.dma(stream: 0x100 + round * 3 + i, iova: 0, write: false) }
            seen += h.drain().0.map(\.stream.raw)
        }
        XCTAssertEqual(seen, Array(0x100..<0x109))
    }

    /// Writing EVTQ_CONS gives the entries back to the SMMU, which may then
    /// overwrite them: a barrier must order every record load before that
    /// register write (a load and a later store may be reordered; Linux
    /// `queue_sync_cons_out` puts DMB OSH there). Checked coherent and not.
    func testRecordLoadsAreOrderedBeforeTheConsWrite() throws {
        for profile in [FakeSMMU.Profile.qemu10, .qemu72NonCoherent] {
            var h = try Harness(profile)
            for i: UInt32 in 0..<3 { _ = h.fake.dma(stream: 0x40 + i, iova: 0, write: false) }
            let queue = h.smmu.eventQueue.base.raw..<(h.smmu.eventQueue.base.raw + h.smmu.eventQueue.byteSize)
            h.memory.tracing = true
            let (events, _) = h.drain()
            h.memory.tracing = false
            XCTAssertEqual(events.count, 3)
            let trace = h.memory.trace
            let lastLoad = trace.lastIndex { access in
                if case .load(let a) = access { return queue.contains(a.raw) }
                return false
            }
            let consWrite = trace.firstIndex { access in
                if case .registerWrite(SMMURegister.evtqCons, _) = access { return true }
                return false
            }
            guard let lastLoad, let consWrite else { return XCTFail("no record load or no EVTQ_CONS write: \(trace)") }
            XCTAssertLessThan(lastLoad, consWrite)
            XCTAssertTrue(trace[(lastLoad + 1)..<consWrite].contains(.barrier),
                          "no barrier between the last record load and EVTQ_CONS: \(trace)")
        }
    }
}
