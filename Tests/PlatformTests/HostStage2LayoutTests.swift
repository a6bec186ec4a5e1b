import AArch64
import XCTest
@testable import Platform

final class HostStage2LayoutTests: XCTestCase {
    private func r(_ base: UInt64, _ size: UInt64) -> MemoryRange { MemoryRange(base: PhysAddr(raw: base), size: size)! }
    private func run(_ base: UInt64, _ size: UInt64, _ g: HostStage2Granule, _ m: HostMemoryType = .normal) -> HostStage2Run {
        HostStage2Run(base: PhysAddr(raw: base), size: size, granule: g, memory: m)
    }
    private let ipa40: UInt64 = 1 << 40

    private func layout(ram: [MemoryRange], devices: [MemoryRange] = [], hyp: [MemoryRange] = [],
                        never: [MemoryRange] = [], limit: UInt64? = nil) throws(HostStage2LayoutError) -> [HostStage2Run] {
        Array(try HostStage2Layout(ram: ram, devices: devices, hypervisorOwned: hyp, neverMapped: never,
                                   ipaLimit: limit ?? ipa40).runs)
    }

    /// Runs tile the mapped space: sorted, disjoint, each a whole number of its granule, aligned to it.
    private func assertWellFormed(_ runs: [HostStage2Run], file: StaticString = #filePath, line: UInt = #line) {
        var previousEnd: UInt64 = 0
        for run in runs {
            XCTAssertGreaterThanOrEqual(run.base.raw, previousEnd, file: file, line: line)
            XCTAssertEqual(run.base.raw % run.granule.bytes, 0, file: file, line: line)
            XCTAssertEqual(run.size % run.granule.bytes, 0, file: file, line: line)
            XCTAssertGreaterThan(run.size, 0, file: file, line: line)
            previousEnd = run.base.raw + run.size
        }
    }

    func testGranuleSizes() {
        XCTAssertEqual(HostStage2Granule.page4K.bytes, 0x1000)
        XCTAssertEqual(HostStage2Granule.block2M.bytes, 0x20_0000)
        XCTAssertEqual(HostStage2Granule.block1G.bytes, 0x4000_0000)
    }

    func testOneGiBWithUnalignedHypervisorImage() throws {
        // QEMU virt -m 1G: the hypervisor Image at 0x4008_0000, 2 MiB long.
        let runs = try layout(ram: [r(0x4000_0000, 0x4000_0000)], hyp: [r(0x4008_0000, 0x20_0000)])
        XCTAssertEqual(runs, [
            run(0x4000_0000, 0x8_0000, .page4K),
            run(0x4028_0000, 0x18_0000, .page4K),
            run(0x4040_0000, 0x3FC0_0000, .block2M),
        ])
        assertWellFormed(runs)
    }

    func testTwoGiBWithTopOfBankAndLastPageOwned() throws {
        let runs = try layout(ram: [r(0x4000_0000, 0x8000_0000)],
                              hyp: [r(0x7FE0_0000, 0x20_0000), r(0xBFFF_F000, 0x1000)])
        XCTAssertEqual(runs, [
            run(0x4000_0000, 0x3FE0_0000, .block2M),
            run(0x8000_0000, 0x3FE0_0000, .block2M),
            run(0xBFE0_0000, 0x1F_F000, .page4K),
        ])
        assertWellFormed(runs)
    }

    func testOneGiBBlocksInTheMiddle() throws {
        let runs = try layout(ram: [r(0x4000_0000, 0xC000_0000)], hyp: [r(0x4008_0000, 0x1000)])
        XCTAssertEqual(runs, [
            run(0x4000_0000, 0x8_0000, .page4K),
            run(0x4008_1000, 0x17_F000, .page4K),
            run(0x4020_0000, 0x3FE0_0000, .block2M),
            run(0x8000_0000, 0x8000_0000, .block1G),
        ])
        assertWellFormed(runs)
    }

    func testHypervisorRangesRoundOutwardAndRAMRoundsInward() throws {
        // A bank with a ragged start and end; a hypervisor range of 16 bytes
        // inside one page takes the whole page; two touching ranges merge.
        let runs = try layout(ram: [r(0x4000_0800, 0x3800)],
                              hyp: [r(0x4000_2010, 0x10), r(0x4000_1000, 0x1000)])
        XCTAssertEqual(runs, [run(0x4000_3000, 0x1000, .page4K)])
    }

    func testHolesDevicesAndNeverMappedRanges() throws {
        // Two banks with a hole, virt's low MMIO window with the SMMU and the
        // control page carved out, the high ECAM window.
        let runs = try layout(
            ram: [r(0x1_0000_0000, 0x4000_0000), r(0x4000_0000, 0x2000_0000)],
            devices: [r(0, 0x4000_0000), r(0x40_1000_0000, 0x1000_0000)],
            hyp: [r(0x4000_0000, 0x40_0000)],
            never: [r(0x0905_0000, 0x2_0000), r(0x0A10_0000, 0x1000)])
        XCTAssertEqual(runs, [
            run(0, 0x0900_0000, .block2M, .device),
            run(0x0900_0000, 0x5_0000, .page4K, .device),
            run(0x0907_0000, 0x19_0000, .page4K, .device),
            run(0x0920_0000, 0xE0_0000, .block2M, .device),
            run(0x0A00_0000, 0x10_0000, .page4K, .device),
            run(0x0A10_0000 + 0x1000, 0xF_F000, .page4K, .device),
            run(0x0A20_0000, 0x35E0_0000, .block2M, .device),
            run(0x4040_0000, 0x1FC0_0000, .block2M),
            run(0x1_0000_0000, 0x4000_0000, .block1G),
            run(0x40_1000_0000, 0x1000_0000, .block2M, .device),
        ])
        assertWellFormed(runs)
    }

    func testMemoryTypeLookup() throws {
        let layout = try HostStage2Layout(
            ram: [r(0x4000_0000, 0x4000_0000)], devices: [r(0x0900_0000, 0x1000)],
            hypervisorOwned: [r(0x4008_0000, 0x20_0000)], neverMapped: [r(0x0905_0000, 0x2_0000)], ipaLimit: ipa40)
        let table: [(UInt64, HostMemoryType?)] = [
            (0x4000_0000, .normal), (0x4007_FFFF, .normal), (0x4008_0000, nil), (0x4027_FFFF, nil),
            (0x4028_0000, .normal), (0x7FFF_FFFF, .normal), (0x8000_0000, nil), (0x0900_0FFF, .device),
            (0x0900_1000, nil), (0x0905_0000, nil), (0, nil), (UInt64.max, nil),
        ]
        for (address, expected) in table {
            XCTAssertEqual(layout.memoryType(at: PhysAddr(raw: address)), expected, "\(address)")
        }
        XCTAssertTrue(layout.isHostRAM(PhysAddr(raw: 0x5000_0000)))
        XCTAssertFalse(layout.isHostRAM(PhysAddr(raw: 0x4010_0000)))
        XCTAssertFalse(layout.isHostRAM(PhysAddr(raw: 0x0900_0000)))
    }

    func testZeroSizedRangesAreIgnored() throws {
        let runs = try layout(ram: [r(0x4000_0000, 0x20_0000), r(0x8000_0000, 0)],
                              devices: [r(0x0900_0000, 0)], hyp: [r(0x4000_0000, 0)], never: [r(0x4000_0000, 0)])
        XCTAssertEqual(runs, [run(0x4000_0000, 0x20_0000, .block2M)])
    }

    func testHostileInputsAreRefusedWithTheOffendingRange() {
        let table: [([MemoryRange], [MemoryRange], [MemoryRange], [MemoryRange], UInt64, HostStage2LayoutError)] = [
            // Overlapping banks, in either order.
            ([r(0x4000_0000, 0x4000_0000), r(0x7FFF_F000, 0x2000)], [], [], [], ipa40,
             .ramOverlap(PhysAddr(raw: 0x7FFF_F000), other: PhysAddr(raw: 0x4000_0000))),
            ([r(0x7FFF_F000, 0x2000), r(0x4000_0000, 0x4000_0000)], [], [], [], ipa40,
             .ramOverlap(PhysAddr(raw: 0x4000_0000), other: PhysAddr(raw: 0x7FFF_F000))),
            // A device window over RAM, even one page of it after rounding outward.
            ([r(0x4000_0000, 0x4000_0000)], [r(0x3FFF_F800, 0x1000)], [], [], ipa40,
             .deviceOverlapsRAM(PhysAddr(raw: 0x3FFF_F800))),
            // Hypervisor memory straddling a bank's end, or outside RAM.
            ([r(0x4000_0000, 0x4000_0000)], [], [r(0x7FFF_F000, 0x2000)], [], ipa40,
             .hypervisorRangeOutsideRAM(PhysAddr(raw: 0x7FFF_F000))),
            ([r(0x4000_0000, 0x4000_0000)], [], [r(0x1000, 0x1000)], [], ipa40,
             .hypervisorRangeOutsideRAM(PhysAddr(raw: 0x1000))),
            // Beyond the IPA space, for every kind of input.
            ([r(0xFFFF_F000, 0x2000)], [], [], [], 1 << 32,
             .beyondIPASpace(PhysAddr(raw: 0xFFFF_F000), size: 0x2000, limit: 1 << 32)),
            ([r(0x4000_0000, 0x1000)], [r(UInt64.max - 0xFFF, 0xFFF)], [], [], ipa40,
             .beyondIPASpace(PhysAddr(raw: UInt64.max - 0xFFF), size: 0xFFF, limit: ipa40)),
            ([r(0x4000_0000, 0x1000)], [], [], [r(ipa40, 1)], ipa40,
             .beyondIPASpace(PhysAddr(raw: ipa40), size: 1, limit: ipa40)),
        ]
        for (ram, devices, hyp, never, limit, expected) in table {
            XCTAssertThrowsError(try layout(ram: ram, devices: devices, hyp: hyp, never: never, limit: limit)) {
                XCTAssertEqual($0 as? HostStage2LayoutError, expected)
            }
        }
    }

    func testCapacitiesAreTypedErrors() {
        let banks = (0..<33).map { r(0x4000_0000 + UInt64($0) * 0x10_0000, 0x1000) }
        XCTAssertThrowsError(try layout(ram: banks)) {
            XCTAssertEqual($0 as? HostStage2LayoutError, .tooManyRanges(capacity: 32))
        }
        // 30 single pages owned every 2 GiB of a 64 GiB bank cut it into
        // pieces of five runs each (pages, 2 MiB, 1 GiB, 2 MiB, pages): 150 > 128.
        let hyp = (0..<30).map { r(0x4000_0000 + UInt64($0) * 0x8000_0000 + 0x20_3000, 0x1000) }
        XCTAssertThrowsError(try layout(ram: [r(0x4000_0000, 0x10_0000_0000)], hyp: hyp)) {
            XCTAssertEqual($0 as? HostStage2LayoutError, .tooManyRuns(capacity: 128))
        }
    }

    /// The merge works in place: a full set refuses a new disjoint interval
    /// and stays exactly as it was; one that merges with others still fits
    /// (the merge frees their slots), however full the set.
    func testPageIntervalsFullSetRefusesUnchangedAndStillMerges() {
        var set = PageIntervals()
        for i in 0..<UInt64(32) { XCTAssertTrue(set.insertMerging(PageInterval(first: i * 10, end: i * 10 + 2))) }
        let full = Array(set.list)
        XCTAssertEqual(full.count, 32)
        XCTAssertFalse(set.insertMerging(PageInterval(first: 1000, end: 1001)))
        XCTAssertFalse(set.insertMerging(PageInterval(first: 5, end: 6)))
        XCTAssertEqual(Array(set.list), full)
        // Touches [10, 12) and overlaps [20, 22): the three become [10, 22).
        XCTAssertTrue(set.insertMerging(PageInterval(first: 12, end: 21)))
        XCTAssertEqual(set.list.count, 31)
        XCTAssertEqual(set.list[1], PageInterval(first: 10, end: 22))
        XCTAssertEqual(set.list[2], PageInterval(first: 30, end: 32))
        XCTAssertTrue(set.insertMerging(PageInterval(first: 1000, end: 1001)))
        XCTAssertEqual(set.list[31], PageInterval(first: 1000, end: 1001))
    }

    func testEveryRAMPageIsMappedExactlyOnceUnlessOwned() throws {
        // Property check on a small random layout: each page of RAM is mapped
        // iff no hypervisor range touches it.
        var seed: UInt64 = 0x1234_5678
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 33 }
        for _ in 0..<50 {
            let bankPages = 1 + next() % 1200
            let bank = r(0x4000_0000, bankPages << 12)
            let hyp = (0..<(next() % 5)).map { _ in
                let page = next() % bankPages
                let offset = next() % 0x1000
                return r(0x4000_0000 + page * 0x1000 + offset, 1 + next() % 0x3000)
            }.filter { $0.end.raw <= bank.end.raw }
            let layout = try HostStage2Layout(ram: [bank], devices: [MemoryRange](), hypervisorOwned: hyp,
                                              neverMapped: [MemoryRange](), ipaLimit: ipa40)
            assertWellFormed(Array(layout.runs))
            for page in 0..<bankPages {
                let pa = PhysAddr(raw: 0x4000_0000 + page << 12)
                let owned = hyp.contains { $0.framesTouching.contains(pa.frame) }
                XCTAssertEqual(layout.isHostRAM(pa), !owned)
            }
        }
    }
}
