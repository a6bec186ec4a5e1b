import XCTest
import AArch64
import Translation
@testable import SMMUv3

/// Draining, wrap and both overflow signals.
final class EventQueueTests: XCTestCase {
    /// QEMU 7.2 reports a full queue as GERROR.EVENTQ_ABT_ERR (HARDWARE.md
    /// section 5): the drain says what the SMMU said (records lost through an
    /// abort, not OVFLG), reads the valid records and acknowledges it.
    func testEventOverflowQEMUStyleViaGERROR() throws {
        var h = try Harness(.qemu72, configuration: SMMUConfiguration(eventQueueLog2Entries: 2))
        for i: UInt32 in 0..<7 { _ = h.fake.dma(stream: 0x40 + i, iova: 0, write: false) }
        let (events, result) = h.drain()
        XCTAssertEqual(events.count, 4)
        XCTAssertEqual(result, EventDrainResult(count: 4, overflowed: false, writeAborted: true))
        XCTAssertTrue(result.eventsLost)
        XCTAssertEqual(h.fake.gerror ^ h.fake.gerrorn, 0)
        // Recording resumes and the next drain is clean.
        _ = h.fake.dma(stream: 0x50, iova: 0, write: false)
        XCTAssertEqual(h.drain().1, EventDrainResult(count: 1, overflowed: false))
    }

    /// GERROR.EVENTQ_ABT_ERR (bit 2) is an aborted queue access, not an
    /// overflow (IHI 0070 7.2.2): reported as `writeAborted`, never as
    /// `overflowed`; records written before it are read, and the
    /// acknowledgement through GERRORN lets the SMMU write the queue again.
    func testEventQueueWriteAbortIsNotOverflow() throws {
        var h = try Harness(.qemu10)
        _ = h.fake.dma(stream: 0x40, iova: 0, write: false)
        h.fake.eventWritesAbort = true
        _ = h.fake.dma(stream: 0x41, iova: 0, write: false)
        h.fake.eventWritesAbort = false
        _ = h.fake.dma(stream: 0x42, iova: 0, write: false)  // not written: the abort is active
        XCTAssertEqual((h.fake.gerror ^ h.fake.gerrorn) & GERROR.eventQueueAbortError, GERROR.eventQueueAbortError)
        let (events, result) = h.drain()
        XCTAssertEqual(events.map(\.stream.raw), [0x40])
        XCTAssertEqual(result, EventDrainResult(count: 1, overflowed: false, writeAborted: true))
        XCTAssertEqual(h.fake.gerror ^ h.fake.gerrorn, 0)
        XCTAssertEqual(h.fake.evtqCons & EventQueue.overflowFlag, 0)
        _ = h.fake.dma(stream: 0x43, iova: 0, write: false)
        let (after, clean) = h.drain()
        XCTAssertEqual(after.map(\.stream.raw), [0x43])
        XCTAssertEqual(clean, EventDrainResult(count: 1))
    }

    /// EVTQ_PROD.OVFLG toggles once per overflow condition however many
    /// records are dropped (IHI 0070 7.4); the drain reports it and copies it to
    /// EVTQ_CONS.OVACKFLG (bit 31) with the new read index.
    func testEventOverflowArchitectedOVFLG() throws {
        var h = try Harness(.qemu10, configuration: SMMUConfiguration(eventQueueLog2Entries: 2))
        for i: UInt32 in 0..<7 { _ = h.fake.dma(stream: 0x40 + i, iova: 0, write: false) }
        XCTAssertEqual(h.fake.evtqProd & EventQueue.overflowFlag, EventQueue.overflowFlag)
        let (events, result) = h.drain()
        XCTAssertEqual(events.map(\.stream.raw), [0x40, 0x41, 0x42, 0x43])
        XCTAssertEqual(result, EventDrainResult(count: 4, overflowed: true, writeAborted: false))
        XCTAssertEqual(h.fake.evtqCons, EventQueue.overflowFlag | 0b100)  // OVACKFLG | wrap, RD 0
        XCTAssertEqual(h.fake.evtqCons & EventQueue.overflowFlag, h.fake.evtqProd & EventQueue.overflowFlag)
        _ = h.fake.dma(stream: 0x50, iova: 0, write: false)
        XCTAssertEqual(h.drain().1, EventDrainResult(count: 1, overflowed: false))
        // A second overflow, after the first was acknowledged, toggles OVFLG back.
        for i: UInt32 in 0..<6 { _ = h.fake.dma(stream: 0x60 + i, iova: 0, write: false) }
        XCTAssertEqual(h.drain().1, EventDrainResult(count: 4, overflowed: true))
        XCTAssertEqual(h.fake.evtqCons & EventQueue.overflowFlag, 0)
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
