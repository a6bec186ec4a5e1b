import XCTest
import AArch64
import HostFakes
@testable import Translation

/// Seeded random operation sequences against a plain dictionary model.
///
/// After every operation: `lookup` agrees with the model on every touched GFN (and its
/// neighbours); the listener saw exactly the pages the model lost or re-pointed; the
/// IOMMU mirror fed by the change stream agrees with the model; table pages are
/// accounted for (in use + free + waiting in the batch = pool size), and each one's
/// valid-entry count in the pool equals a recount of its entries; a failed
/// operation left the table memory, the pool and the hooks exactly as they were.
/// The break-before-make checker watches the whole sequence. At the end a bounded
/// relinquish returns every table page.
final class P2MModelTests: XCTestCase {
    struct XorShift {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        mutating func below(_ n: UInt64) -> UInt64 { next() % n }
        mutating func chance(_ percent: UInt64) -> Bool { below(100) < percent }
    }

    typealias Model = [UInt64: (mfn: UInt64, type: P2MType)]

    static let mappable: [P2MType] = P2MType.allCases.filter { $0 != .invalid }
    static let transitions: [(P2MType, P2MType)] = [
        (.ramRW, .ramRO), (.ramRO, .ramRW), (.iommuMapRW, .iommuMapRO), (.iommuMapRO, .iommuMapRW),
        (.grantMapRW, .grantMapRO), (.mapForeignRW, .mapForeignRO),
    ]

    /// 48 regions of 2 MiB spread over four 1 GiB areas, so level-1 and level-2
    /// tables are shared by some regions and not others.
    static func regionBase(_ r: UInt64) -> UInt64 { (r % 4) << 18 + ((r / 4) * 3) << 9 }
    static let regions: UInt64 = 48

    func testRandomSequenceRoomyPool() throws {
        try run(seed: 0x5EED_0001, operations: 3000, poolPages: 160)
    }

    func testRandomSequenceTightPool() throws {
        // Small enough that maps and splits regularly run out of table pages.
        try run(seed: 0x5EED_0002, operations: 1500, poolPages: 14)
    }

    func testRandomSequenceLevelZeroStart() throws {
        // 48-bit IPA: the walk starts at level 0, so level-1 tables get unlinked too.
        try run(seed: 0x5EED_0003, operations: 800, poolPages: 160, ipaBits: 48, paRange: .bits48)
    }

    func testRandomSequenceConcatenatedLevelTwoRoot() throws {
        // 32-bit IPA: four concatenated level-2 root tables, no level 1 at all.
        try run(seed: 0x5EED_0004, operations: 800, poolPages: 160, ipaBits: 32, paRange: .bits40)
    }

    func run(seed: UInt64, operations: Int, poolPages: Int, ipaBits: Int = 40,
             paRange: PhysicalAddressRange = .bits40) throws {
        var rng = XorShift(state: seed)
        let rig = Rig(poolPages: poolPages)
        let removals = RemovalLog(), mirror = MirrorState()
        var p2m = try rig.makeHookedP2M(removals: removals, mirror: mirror, ipaBits: ipaBits, paRange: paRange)
        var batch = FlushBatch(releaser: FakeReleaser(log: nil, checker: rig.checker))
        var model: Model = [:]
        var failures: [String: Int] = [:]
        var heldExpected: UInt64 = 0
        let mfnLimit: UInt64 = 1 << 28

        for step in 0..<operations {
            let region = rng.below(Self.regions)
            let aligned = rng.chance(30)
            var gfn = Self.regionBase(region) + (aligned ? 0 : rng.below(512))
            var count: UInt64
            switch rng.below(10) {
            case 0, 1, 2: count = 1
            case 3, 4, 5: count = 1 + rng.below(64)
            case 6, 7: count = 1 + rng.below(1100)
            default: count = 512
            }
            let giant = rng.below(400) == 0
            if giant {
                gfn = (region % 4) << 18
                count = 1 << 18
            }
            let kind = rng.below(100)
            removals.runs.removeAll()
            let eventsBefore = mirror.events.count
            let wordsBefore = rig.memory.words
            let freeBefore = p2m.pool.availableTablePages
            let inUseBefore = p2m.tablePagesInUse
            let heldBefore = batch.heldReferences
            var expectedRemoved: [UInt64: UInt64] = [:]
            var outcome: P2MError? = nil
            let range = gfn..<(gfn + count)

            do {
                if kind < 45 {
                    let type = Self.mappable[Int(rng.below(UInt64(Self.mappable.count)))]
                    var mfn = rng.below(mfnLimit - count)
                    if aligned && rng.chance(60) { mfn &= ~(giant ? (1 << 18) - 1 : 511) }
                    let replace = rng.chance(50)
                    if !replace, let first = range.first(where: { model[$0] != nil }) {
                        outcome = .alreadyMapped(GFN(raw: first))
                    }
                    try p2m.map(GFN(raw: gfn), to: MFN(raw: mfn), count: count, as: type,
                                policy: replace ? .replace : .insertOnly, flushing: &batch, holding: lockHeld)
                    XCTAssertNil(outcome, "step \(step): expected \(String(describing: outcome))")
                    for g in range {
                        let new = mfn + (g - gfn)
                        if let old = model[g], old.mfn != new {
                            expectedRemoved[g] = old.mfn
                            if old.type.holdsForeignReference { heldExpected += 1 }
                        }
                        model[g] = (new, type)
                    }
                } else if kind < 75 {
                    try p2m.unmap(GFN(raw: gfn), count: count, flushing: &batch, holding: lockHeld)
                    for g in range {
                        if let old = model.removeValue(forKey: g) {
                            expectedRemoved[g] = old.mfn
                            if old.type.holdsForeignReference { heldExpected += 1 }
                        }
                    }
                } else if kind < 92 {
                    var (from, to) = Self.transitions[Int(rng.below(UInt64(Self.transitions.count)))]
                    if rng.chance(5) {
                        (from, to) = (to == .ramRW ? .ramRO : .grantMapRO, .grantMapRW)
                        outcome = from.canChange(to: to) ? nil : .unsupportedTypeTransition(from: from, to: to)
                    }
                    try p2m.changeType(GFN(raw: gfn), count: count, from: from, to: to, flushing: &batch, holding: lockHeld)
                    XCTAssertNil(outcome, "step \(step)")
                    for g in range { if let old = model[g], old.type == from { model[g] = (old.mfn, to) } }
                } else {
                    do { try p2m.commit(&batch, holding: lockHeld) } catch { XCTFail("step \(step): \(error)") }
                    XCTAssertTrue(batch.isEmpty)
                }
            } catch {
                if case .tablePoolExhausted = error {
                    outcome = error
                } else {
                    XCTAssertEqual(error, outcome, "step \(step)")
                }
                failures[String(describing: error).prefix(while: { $0 != "(" }).description, default: 0] += 1
                // All-or-nothing: nothing moved anywhere.
                XCTAssertTrue(rig.memory.words == wordsBefore, "step \(step): table memory changed on \(error)")
                XCTAssertEqual(p2m.pool.availableTablePages, freeBefore, "step \(step)")
                XCTAssertEqual(p2m.tablePagesInUse, inUseBefore, "step \(step)")
                XCTAssertEqual(mirror.events.count, eventsBefore, "step \(step)")
                XCTAssertEqual(batch.heldReferences, heldBefore, "step \(step)")
                expectedRemoved = [:]
            }

            XCTAssertEqual(removals.pages, expectedRemoved, "step \(step): listener")
            let lo = gfn == 0 ? 0 : gfn - 1
            for g in lo...(gfn + count) { check(p2m, model, mirror, g, step) }
            XCTAssertEqual(p2m.tablePagesInUse + p2m.pool.availableTablePages + batch.unlinkedTablePages, poolPages,
                           "step \(step): table pages leaked")
            // The per-page valid-entry counts the engine keeps agree with the tables.
            // Every 16th step: a wrong count persists until its table is freed, so
            // sampling still catches it, without a full walk of the tree per step.
            if step % 16 == 0 {
                XCTAssertEqual(auditValidEntryCounts(p2m.table, memory: rig.memory, pool: p2m.pool, "step \(step)"),
                               p2m.tablePagesInUse, "step \(step): tables reachable")
            }
            if rng.chance(15) { try p2m.commit(&batch, holding: lockHeld) }
            if step % 250 == 249 {
                for r in 0..<Self.regions { for g in Self.regionBase(r)..<(Self.regionBase(r) + 512) { check(p2m, model, mirror, g, step) } }
            }
        }
        XCTAssertEqual(batch.releaser.released.reduce(0) { $0 + $1.1 } + batch.releaser.held.reduce(0) { $0 + $1.1 },
                       heldExpected, "foreign references held")

        // Bounded teardown returns every page, and the listener hears of every mapping left.
        removals.runs.removeAll()
        var steps = 0
        while p2m.relinquish(budget: 64, flushing: &batch, holding: lockHeld) == .more {
            steps += 1
            auditValidEntryCounts(p2m.table, memory: rig.memory, pool: p2m.pool, allowEmpty: true,
                                  "relinquish step \(steps)")
        }
        let removedAtTeardown = removals.pages
        XCTAssertEqual(removedAtTeardown.count, model.count)
        for (g, m) in model { XCTAssertEqual(removedAtTeardown[g], m.mfn) }
        rig.checker.roots = 0..<0
        try p2m.commit(&batch, holding: lockHeld)
        XCTAssertEqual(p2m.pool.availableTablePages, poolPages, "no table page leaked after destroy")
        XCTAssertEqual(p2m.tablePagesInUse, 0)
        rig.checker.assertClean()
        XCTAssertGreaterThan(rig.checker.checkedStores, 1000)
        // The sequence really exercised both outcomes.
        XCTAssertGreaterThan(failures.values.reduce(0, +), 10, "\(failures)")
    }

    func check(_ p2m: borrowing HookedP2M, _ model: Model, _ mirror: MirrorState, _ g: UInt64, _ step: Int,
               line: UInt = #line) {
        let got = p2m.lookup(GFN(raw: g))
        let want = model[g]
        XCTAssertEqual(got?.mfn.raw, want?.mfn, "step \(step) gfn \(String(g, radix: 16))", line: line)
        XCTAssertEqual(got?.type, want?.type, "step \(step) gfn \(String(g, radix: 16))", line: line)
        if let got {
            XCTAssertTrue(got.order.isAligned(g - (got.mfn.raw & (got.order.pages - 1))) || got.order == .page4K)
        }
        XCTAssertEqual(mirror.pages[g]?.mfn, want?.mfn, "step \(step) mirror", line: line)
        XCTAssertEqual(mirror.pages[g]?.type, want?.type, "step \(step) mirror", line: line)
    }
}
