import AArch64
import XCTest
@testable import Platform

final class HostPlatformScanTests: XCTestCase {
    private func r(_ base: UInt64, _ size: UInt64) -> MemoryRange { MemoryRange(base: PhysAddr(raw: base), size: size)! }

    private func scan(_ bytes: [UInt8]) throws -> HostPlatformScan {
        try withTree(bytes) { tree in
            let platform = try PlatformDescription(tree)
            return try HostPlatformScan(tree, pciHostBridge: platform.pciHostBridge)
        }
    }

    private func scanError(_ bytes: [UInt8]) -> HostPlatformScanError? {
        do {
            _ = try withTree(bytes) { tree in try HostPlatformScan(tree, pciHostBridge: nil) }
            return nil
        } catch let error as HostPlatformScanError {
            return error
        } catch {
            XCTFail("\(error)")
            return nil
        }
    }

    func testQEMUVirtOneCPU() throws {
        let s = try scan(Fixture.bytes(Fixture.virt1G))
        XCTAssertEqual(Array(s.cpuAffinities), [0])
        let windows = Array(s.deviceWindows)
        // Flash, GIC, UART, RTC, fw_cfg, GPIO, virtio-mmio and the PCI windows
        // below RAM; the ECAM and the 64-bit window above it.
        XCTAssertTrue(windows.contains { $0.contains(PhysAddr(raw: 0x0900_0000)) })     // PL011
        XCTAssertTrue(windows.contains { $0.contains(PhysAddr(raw: 0x0800_0000)) })     // GIC distributor
        XCTAssertTrue(windows.contains { $0.contains(PhysAddr(raw: 0)) })               // flash
        XCTAssertTrue(windows.contains { $0.contains(PhysAddr(raw: 0x1000_0000)) })     // PCI MMIO window
        XCTAssertTrue(windows.contains { $0.contains(PhysAddr(raw: 0x40_1000_0000)) })  // ECAM
        XCTAssertTrue(windows.contains { $0.contains(PhysAddr(raw: 0x80_0000_0000)) })  // 64-bit PCI window
        XCTAssertFalse(windows.contains { $0.contains(PhysAddr(raw: 0x0905_0000)) })    // the SMMU
        XCTAssertFalse(windows.contains { $0.contains(PhysAddr(raw: 0x4000_0000)) })    // RAM
        for (a, b) in zip(windows, windows.dropFirst()) { XCTAssertLessThan(a.end.raw, b.base.raw) }
    }

    func testEveryDumpGivesALayoutAndItsCPUs() throws {
        let cpus: [String: Int] = ["virt-m512m-smp1.dtb": 1, "virt-m1g-smp1.dtb": 1, "virt-m2g-smp1.dtb": 1,
                                   "virt-m1g-smp2.dtb": 2, "virt-m2g-smp2.dtb": 2, "virt-gicv3-m1g-smp2.dtb": 2]
        for name in Fixture.qemuDumps {
            let bytes = Fixture.bytes(name)
            let s = try scan(bytes)
            XCTAssertEqual(Array(s.cpuAffinities), Array(0..<UInt64(cpus[name]!)), name)
            try withTree(bytes) { tree in
                let platform = try PlatformDescription(tree)
                let layout = try HostStage2Layout(
                    ram: platform.memoryBanks, devices: s.deviceWindows,
                    hypervisorOwned: [r(0x4000_0000, 0x80_0000)],
                    neverMapped: platform.smmus.map(\.registers) + [r(0x0A10_0000, 0x1000)], ipaLimit: 1 << 40)
                XCTAssertEqual(layout.memoryType(at: PhysAddr(raw: 0x0900_0000)), .device, name)
                XCTAssertNil(layout.memoryType(at: PhysAddr(raw: 0x0905_0000)), name)
                XCTAssertNil(layout.memoryType(at: PhysAddr(raw: 0x4000_0000)), name)
                XCTAssertEqual(layout.memoryType(at: PhysAddr(raw: 0x4080_0000)), .normal, name)
            }
        }
    }

    private func cpusTree(_ regs: [[UInt32]], addressCells: UInt32 = 1) -> [UInt8] {
        var b = FDTBuilder()
        b.begin("")
        b.begin("cpus")
        b.property("#address-cells", cells: [addressCells])
        b.property("#size-cells", cells: [0])
        for (i, reg) in regs.enumerated() {
            b.begin("cpu@\(i)")
            b.property("device_type", string: "cpu")
            if !reg.isEmpty { b.property("reg", cells: reg) }
            b.end()
        }
        b.begin("idle-states")
        b.end()
        b.end()
        b.end()
        return b.blob()
    }

    func testCPUAffinities() throws {
        XCTAssertEqual(Array(try scan(cpusTree([[0], [1], [0x100], [0x1_0000]])).cpuAffinities), [0, 1, 0x100, 0x1_0000])
        XCTAssertEqual(Array(try scan(cpusTree([[0, 0], [0x1, 0x0]], addressCells: 2)).cpuAffinities), [0, 0x1_0000_0000])
    }

    func testHostileCPUNodes() {
        let table: [([UInt8], HostPlatformScanError)] = [
            (cpusTree([[0], [0]]), .duplicateMPIDR(0)),
            (cpusTree([[0], [0x8000_0000]]), .malformedMPIDR(0x8000_0000)),
            (cpusTree([[0, 0], [0x100, 0]], addressCells: 2), .malformedMPIDR(0x100_0000_0000)),
            (cpusTree((0..<9).map { [UInt32($0)] }), .tooManyCPUs(capacity: 8)),
            (cpusTree([[0, 0], [0, 1, 2]], addressCells: 2), .source(.propertyLengthNotMultiple(node: 0, length: 12, tupleBytes: 8))),
        ]
        for (bytes, expected) in table {
            let error = scanError(bytes)
            if case .source(.propertyLengthNotMultiple(_, let length, let tuple)) = expected {
                guard case .source(.propertyLengthNotMultiple(_, length, tuple))? = error else {
                    return XCTFail("\(String(describing: error))")
                }
            } else {
                XCTAssertEqual(error, expected)
            }
        }
        if case .cpuWithoutReg? = scanError(cpusTree([[0], []])) {} else { XCTFail("a CPU without reg was accepted") }
    }

    func testWindowsMergeAndAreBounded() throws {
        // The scan merges through `add` into [base, end) intervals.
        var w = PageIntervals()
        func ranges(_ set: PageIntervals) -> [MemoryRange] {
            set.list.map { MemoryRange(base: PhysAddr($0.first), size: $0.end - $0.first)! }
        }
        try HostPlatformScan.add(r(0x2000, 0x1000), to: &w)
        try HostPlatformScan.add(r(0x1000, 0x1000), to: &w)
        try HostPlatformScan.add(r(0x5000, 0x1000), to: &w)
        try HostPlatformScan.add(r(0x1800, 0x4000), to: &w)
        XCTAssertEqual(ranges(w), [r(0x1000, 0x5000)])
        for i in 1..<32 { try HostPlatformScan.add(r(UInt64(i) << 20, 0x1000), to: &w) }
        let before = ranges(w)
        XCTAssertThrowsError(try HostPlatformScan.add(r(0x8000_0000, 0x1000), to: &w)) {
            XCTAssertEqual($0 as? HostPlatformScanError, .tooManyWindows(capacity: 32))
        }
        XCTAssertEqual(ranges(w), before)
        // A window ending at the highest address a MemoryRange can end at keeps its end.
        var top = PageIntervals()
        try HostPlatformScan.add(r(0xFFFF_FFFF_FFFF_E000, 0x1FFF), to: &top)
        XCTAssertEqual(ranges(top), [r(0xFFFF_FFFF_FFFF_E000, 0x1FFF)])
    }
}
