import XCTest
@testable import FDTFuzzing
@testable import Platform

/// A quick run of the device-tree fuzzer inside `swift test` (a debug build
/// manages about 500 executions a second). `make test` also runs 10^4
/// executions of the release `hv-fuzz`, and its long run is
/// `swift run -c release hv-fuzz 1000000`.
final class FDTFuzzTests: XCTestCase {
    static let executions: UInt64 = 2_000

    func seeds() -> [[UInt8]] { Fixture.qemuDumps.map { Fixture.bytes($0) } + [Fixture.bytes(Fixture.sparse)] }

    func testMutatedTreesEndInATypedRejectionOrAKeptPromise() {
        let fuzzer = FDTFuzzer(seeds: seeds(), seed: 0x11)
        var stages: [FDTFuzzTarget.Stage: Int] = [:]
        for index in 0..<FDTFuzzTests.executions {
            let outcome = FDTFuzzTarget.execute(fuzzer.input(at: index))
            stages[outcome.stage, default: 0] += 1
            XCTAssertEqual(outcome.violations, [], "execution \(index)")
        }
        // The mutations reach every stage: most are refused early, some get through.
        for stage in [FDTFuzzTarget.Stage.tree, .description, .accepted] {
            XCTAssertGreaterThan(stages[stage, default: 0], 0, "no input stopped at \(stage)")
        }
    }

    func testPackedSeedsParseToTheSameDescription() throws {
        for name in Fixture.qemuDumps {
            let full = Fixture.bytes(name), packed = FDTFuzzer.packed(full)
            XCTAssertLessThan(packed.count, 16 << 10, name)
            let a = try withTree(full) { try PlatformDescription($0) }
            let b = try withTree(packed) { try PlatformDescription($0) }
            XCTAssertEqual(Array(a.memoryBanks), Array(b.memoryBanks), name)
            XCTAssertEqual(Array(a.deviceRegions), Array(b.deviceRegions), name)
            XCTAssertEqual(a.console, b.console, name)
        }
    }

    func testTheSameIndexGivesTheSameInput() {
        let a = FDTFuzzer(seeds: seeds(), seed: 7), b = FDTFuzzer(seeds: seeds(), seed: 7)
        XCTAssertEqual(a.input(at: 12_345), b.input(at: 12_345))
        XCTAssertNotEqual(a.input(at: 1), a.input(at: 2))
    }

    /// Inserted nesting keeps the header consistent, so it reaches the
    /// structure walk: 40 extra levels are refused for depth, not for size.
    func testInsertedNestingReachesTheStructureWalk() throws {
        let fuzzer = FDTFuzzer(seeds: seeds(), seed: 1)
        var blob = Fixture.bytes(Fixture.virt1G)
        let (start, _) = try XCTUnwrap(fuzzer.structureBlock(blob))
        var opening: [UInt8] = []
        for _ in 0..<40 { opening += [0, 0, 0, 1, 0x6E, 0, 0, 0] }
        var closing: [UInt8] = []
        for _ in 0..<40 { closing += [0, 0, 0, 2] }
        let rootProperties = start + 8   // FDT_BEGIN_NODE "" of the root is one word plus the padded name
        fuzzer.insert(&blob, opening + closing, at: rootProperties)
        guard case .nestingTooDeep(_, let limit)? = parseError(blob) else { return XCTFail("expected nestingTooDeep") }
        XCTAssertEqual(limit, FlattenedDeviceTree.maxDepth)
    }
}

/// The fuzz driver's hang detector: an execution that never returns is
/// reported by the watchdog thread with its index, and one that returns in
/// time is not.
final class FDTFuzzWatchdogTests: XCTestCase {
    final class Record: @unchecked Sendable {
        let lock = NSLock()
        var hangs: [UInt64] = []
        var count: Int { lock.lock(); defer { lock.unlock() }; return hangs.count }
        func add(_ index: UInt64) { lock.lock(); hangs.append(index); lock.unlock() }
    }

    func testAnExecutionThatNeverReturnsIsReportedWithItsIndex() {
        let record = Record()
        let watchdog = FDTFuzzWatchdog(limit: .milliseconds(200), poll: .milliseconds(20)) { index, running in
            XCTAssertGreaterThan(running, .milliseconds(200))
            record.add(index)
        }
        defer { watchdog.stop() }
        let giveUp = ContinuousClock.now + .seconds(20)
        for index in UInt64(0)..<3 {
            watchdog.begin(index)
            _ = FDTFuzzTarget.execute(Fixture.bytes(Fixture.qemuDumps[0]))
            watchdog.end()
        }
        watchdog.begin(3)
        // The execution the watchdog must see: it ends only once reported
        // (or after 20 s, when the test fails below).
        FDTFuzzTarget.spinForever { record.count > 0 || ContinuousClock.now > giveUp }
        XCTAssertEqual(record.hangs, [3])
        XCTAssertTrue(watchdog.hasFired)
    }

    func testExecutionsThatReturnInTimeAreNotReported() {
        let record = Record()
        let watchdog = FDTFuzzWatchdog(limit: .milliseconds(300), poll: .milliseconds(20)) { index, _ in
            record.add(index)
        }
        defer { watchdog.stop() }
        let fuzzer = FDTFuzzer(seeds: Fixture.qemuDumps.map { Fixture.bytes($0) }, seed: 7)
        let until = ContinuousClock.now + .milliseconds(900)
        var index: UInt64 = 0
        while ContinuousClock.now < until {
            watchdog.begin(index)
            _ = FDTFuzzTarget.execute(fuzzer.input(at: index))
            watchdog.end()
            index += 1
        }
        // Idle (between executions) for longer than the limit: still nothing to report.
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertEqual(record.hangs, [])
        XCTAssertFalse(watchdog.hasFired)
    }
}
