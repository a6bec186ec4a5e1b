import XCTest
@testable import Platform

final class PCIFunctionTests: XCTestCase {
    func testEnumeratesQEMUVirtWithEdu() {
        let fake = FakeECAM.virtWithEdu()
        let ecam = PCIECAM(registers: fake, firstBus: 0, lastBus: 0)
        let found = Array(ecam.functions)
        XCTAssertEqual(found.map(\.address), [BDF(bus: 0, device: 0, function: 0)!, BDF(bus: 0, device: 2, function: 0)!])
        XCTAssertEqual(found[0].vendorID, 0x1B36)
        XCTAssertEqual(found[0].deviceID, 0x0008)
        XCTAssertEqual(found[0].classCode, 0x06_0000)
        let edu = found[1]
        XCTAssertEqual(edu.vendorID, 0x1234)
        XCTAssertEqual(edu.deviceID, 0x11E8)
        XCTAssertEqual(edu.revision, 0x10)
        XCTAssertEqual(edu.classCode, 0x00_FF00)
        XCTAssertEqual(edu.headerLayout, 0)
        XCTAssertFalse(edu.isMultiFunction)
        XCTAssertEqual(edu.barCount, 6)
        // 32 devices, one function probe each (no multi-function device).
        XCTAssertEqual(fake.accesses, 32 + 2 * 2)
    }

    func testMultiFunctionBitGatesFunctionsOneToSeven() {
        let fake = FakeECAM()
        // 00:03.0 multi-function with 00:03.5; 00:04.0 single-function with a
        // stray 00:04.1 that must not be probed; 00:05.1 without 00:05.0.
        fake.functions[BDF(bus: 0, device: 3, function: 0)!.requesterID] =
            FakeFunction(vendor: 0x8086, device: 1, classCode: 0x02_0000, revision: 1, header: 0x80)
        fake.functions[BDF(bus: 0, device: 3, function: 5)!.requesterID] =
            FakeFunction(vendor: 0x8086, device: 2, classCode: 0x02_0000, revision: 1, header: 0x00)
        fake.functions[BDF(bus: 0, device: 4, function: 0)!.requesterID] =
            FakeFunction(vendor: 0x8086, device: 3, classCode: 0x02_0000, revision: 1, header: 0x00)
        fake.functions[BDF(bus: 0, device: 4, function: 1)!.requesterID] =
            FakeFunction(vendor: 0x8086, device: 4, classCode: 0x02_0000, revision: 1, header: 0x00)
        fake.functions[BDF(bus: 0, device: 5, function: 1)!.requesterID] =
            FakeFunction(vendor: 0x8086, device: 5, classCode: 0x02_0000, revision: 1, header: 0x00)
        // A bridge on bus 2, header layout 1.
        fake.functions[BDF(bus: 2, device: 0, function: 0)!.requesterID] =
            FakeFunction(vendor: 0x1B36, device: 0x000C, classCode: 0x06_0400, revision: 0, header: 0x01)
        let found = Array(PCIECAM(registers: fake, firstBus: 0, lastBus: 2).functions)
        XCTAssertEqual(found.map(\.address.requesterID), [0x001D, 0x0018, 0x0020, 0x0200].sorted())
        XCTAssertEqual(found.first { $0.address.bus == 2 }?.barCount, 2)
        XCTAssertTrue(found[0].isMultiFunction)
    }

    func testBusRangeBoundsTheScanAndTheOffsets() {
        let fake = FakeECAM()
        // ECAM whose first bus is 0x10: bus 0x11 device 1 is at (1 << 20 | 1 << 15).
        fake.functions[UInt16(1 << 8 | 1 << 3)] = .edu()
        let ecam = PCIECAM(registers: fake, firstBus: 0x10, lastBus: 0x11)
        let found = Array(ecam.functions)
        XCTAssertEqual(found.map(\.address), [BDF(bus: 0x11, device: 1, function: 0)!])
        XCTAssertEqual(ecam.offset(of: BDF(bus: 0x11, device: 1, function: 0)!, 0x10), 0x10_8010)
        XCTAssertEqual(ecam.offset(of: BDF(bus: 0x10, device: 31, function: 7)!, 0xFFC), 0xF_FFFC)
        XCTAssertNil(ecam.offset(of: BDF(bus: 0x0F, device: 0, function: 0)!, 0))
        // Outside the range: reads as absent, writes dropped, no access made.
        let before = fake.accesses
        XCTAssertEqual(ecam.read32(BDF(bus: 0x12, device: 0, function: 0)!, 0), UInt32.max)
        ecam.write32(BDF(bus: 0x0F, device: 0, function: 0)!, 4, 6)
        XCTAssertEqual(fake.accesses, before)
        XCTAssertEqual(PCIECAM(registers: fake, firstBus: 0xFF, lastBus: 0xFF).functions.map { $0 }.count, 0)
    }

    func testStreamIDsThroughTheDTBIOMMUMap() throws {
        let platform = try withTree(Fixture.bytes(Fixture.virt1G)) { tree in try PlatformDescription(tree) }
        let bridge = try XCTUnwrap(platform.pciHostBridge)
        let ecam = PCIECAM(registers: FakeECAM.virtWithEdu(), bridge: bridge)
        let sids = ecam.functions.compactMap { bridge.iommuTarget(forRequesterID: $0.address.requesterID)?.streamID }
        XCTAssertEqual(sids, [0x00, 0x10])
        XCTAssertEqual(bridge.iommuTarget(forRequesterID: 0x10)?.iommu, platform.smmus[0].phandle)
    }
}
