import XCTest
import AArch64
@testable import Platform

final class PlatformDescriptionTests: XCTestCase {
    func describe(_ name: String) throws -> PlatformDescription {
        try withTree(Fixture.bytes(name)) { tree in try PlatformDescription(tree) }
    }

    func range(_ base: UInt64, _ size: UInt64) -> MemoryRange { MemoryRange(base: PhysAddr(base), size: size)! }

    /// HARDWARE.md section 8, checked against every dump.
    func testQEMUVirtFacts() throws {
        let expectedRAM: [String: UInt64] = ["m512m": 0x2000_0000, "m1g": 0x4000_0000, "m2g": 0x8000_0000]
        for name in Fixture.qemuDumps {
            let p = try describe(name)
            let size = try XCTUnwrap(expectedRAM.first { name.contains("-\($0.key)-") }?.value, name)
            XCTAssertEqual(Array(p.memoryBanks), [range(0x4000_0000, size)], name)
            XCTAssertEqual(Array(p.memoryReservations), [], name)
            XCTAssertEqual(Array(p.reservedMemory), [], name)
            XCTAssertEqual(p.console, ConsoleUART(registers: range(0x0900_0000, 0x1000), kind: .pl011,
                                                  source: .stdoutPath, node: p.console?.node ?? -1), name)

            XCTAssertEqual(p.smmus.count, 1, name)
            let smmu = p.smmus[0]
            XCTAssertEqual(smmu.registers, range(0x0905_0000, 0x2_0000), name)
            XCTAssertTrue(smmu.isCoherent, name)
            XCTAssertNotNil(smmu.phandle, name)
            // SPI 74..77 -> INTID 106..109.
            XCTAssertEqual(smmu.interrupts.eventQueue, 106, name)
            XCTAssertEqual(smmu.interrupts.priorityQueue, 107, name)
            XCTAssertEqual(smmu.interrupts.commandSync, 108, name)
            XCTAssertEqual(smmu.interrupts.globalError, 109, name)

            let pci = try XCTUnwrap(p.pciHostBridge, name)
            XCTAssertEqual(pci.ecam, range(0x40_1000_0000, 0x1000_0000), name)
            XCTAssertEqual(pci.firstBus, 0, name)
            XCTAssertEqual(pci.lastBus, 0xFF, name)
            XCTAssertTrue(pci.isCoherent, name)
            XCTAssertEqual(pci.segment, 0, name)
            XCTAssertEqual(pci.ioWindow, PCIWindow(space: .io, isPrefetchable: false, pciAddress: 0,
                                                   cpuAddress: PhysAddr(0x3EFF_0000), size: 0x1_0000), name)
            XCTAssertEqual(pci.memory32Window, PCIWindow(space: .memory32, isPrefetchable: false,
                                                         pciAddress: 0x1000_0000, cpuAddress: PhysAddr(0x1000_0000),
                                                         size: 0x2EFF_0000), name)
            XCTAssertEqual(pci.memory64Window, PCIWindow(space: .memory64, isPrefetchable: false,
                                                         pciAddress: 0x80_0000_0000,
                                                         cpuAddress: PhysAddr(0x80_0000_0000),
                                                         size: 0x80_0000_0000), name)
            XCTAssertEqual(Array(pci.iommuMap), [IOMMUMapEntry(ridBase: 0, target: smmu.phandle!, outputBase: 0,
                                                               length: 0x1_0000)], name)
            // Identity RID -> SID: edu at 00:02.0 is SID 0x10.
            XCTAssertEqual(pci.iommuTarget(forRequesterID: BDF(bus: 0, device: 2, function: 0)!.requesterID),
                           IOMMUTarget(iommu: smmu.phandle!, streamID: 0x10), name)

            // The EL2 map's Device ranges: UART, SMMU, ECAM, then the I/O, 32-bit and 64-bit windows.
            XCTAssertEqual(Array(p.deviceRegions), [
                range(0x0900_0000, 0x1000), range(0x0905_0000, 0x2_0000), range(0x40_1000_0000, 0x1000_0000),
                range(0x3EFF_0000, 0x1_0000), range(0x1000_0000, 0x2EFF_0000), range(0x80_0000_0000, 0x80_0000_0000),
            ], name)

            let psci = try XCTUnwrap(p.psci, name)
            XCTAssertEqual(psci.conduit, .smc, name)
            XCTAssertTrue(psci.hasStandardFunctionIDs, name)
            XCTAssertEqual(psci.cpuOn, 0xC400_0003, name)
            XCTAssertEqual(psci.cpuOff, 0x8400_0002, name)
            XCTAssertEqual(psci.cpuSuspend, 0xC400_0001, name)
            XCTAssertEqual(psci.migrate, 0xC400_0005, name)
        }
    }

    func testHandMadeSparseNonCoherentTree() throws {
        let p = try describe(Fixture.sparse)
        // The disabled bank at 0xc0000000 is left out.
        XCTAssertEqual(Array(p.memoryBanks), [range(0x8000_0000, 0x1000_0000), range(0x8_8000_0000, 0x800_0000),
                                              range(0x9_0000_0000, 0x20_0000)])
        XCTAssertEqual(Array(p.memoryReservations), [range(0x8001_0000, 0x3000)])
        // The dynamic `cma` child has no reg and reserves nothing.
        XCTAssertEqual(p.reservedMemory.count, 1)
        XCTAssertEqual(p.reservedMemory[0].range, range(0x8100_0000, 0x10_0000))
        XCTAssertTrue(p.reservedMemory[0].noMap)
        XCTAssertEqual(Array(p.reservedRanges), [range(0x8001_0000, 0x3000), range(0x8100_0000, 0x10_0000)])
        // stdout-path "serial0:115200n8" -> alias -> /soc@1c000000/serial@90000,
        // reg 0x90000 translated through the soc's ranges to 0x1c090000.
        XCTAssertEqual(p.console?.registers, range(0x1C09_0000, 0x1000))
        XCTAssertEqual(p.console?.isPL011, true)

        XCTAssertEqual(p.smmus.count, 1)
        XCTAssertFalse(p.smmus[0].isCoherent)
        XCTAssertEqual(p.smmus[0].registers, range(0x2B40_0000, 0x10_0000))
        XCTAssertEqual(p.smmus[0].interrupts.eventQueue, 32 + 134)
        XCTAssertEqual(p.smmus[0].interrupts.globalError, 32 + 135)
        XCTAssertNil(p.smmus[0].interrupts.priorityQueue)

        let pci = try XCTUnwrap(p.pciHostBridge)
        XCTAssertFalse(pci.isCoherent)
        XCTAssertEqual(pci.segment, 1)
        // bus-range 0..0x3f, but 16 MiB of ECAM covers only 16 buses.
        XCTAssertEqual(pci.firstBus, 0)
        XCTAssertEqual(pci.lastBus, 0x0F)
        XCTAssertEqual(pci.memory64Window, PCIWindow(space: .memory64, isPrefetchable: true,
                                                     pciAddress: 0x40_0000_0000, cpuAddress: PhysAddr(0x40_0000_0000),
                                                     size: 0x1_0000_0000))
        XCTAssertEqual(pci.ioWindow?.cpuAddress, PhysAddr(0x5F80_0000))
        let smmu = try XCTUnwrap(p.smmus[0].phandle)
        XCTAssertEqual(pci.iommuTarget(forRequesterID: 0x0008), IOMMUTarget(iommu: smmu, streamID: 0x1_0008))
        XCTAssertEqual(pci.iommuTarget(forRequesterID: 0x0108), IOMMUTarget(iommu: smmu, streamID: 0x2_0008))
        XCTAssertNil(pci.iommuTarget(forRequesterID: 0x0200))

        XCTAssertEqual(p.psci?.conduit, .hvc)
        XCTAssertNil(p.psci?.cpuOn)
    }

    func testAbsentNodesGiveEmptyDescriptions() throws {
        let p = try withTree(FDTBuilder.minimal().blob()) { tree in try PlatformDescription(tree) }
        XCTAssertEqual(Array(p.memoryBanks), [range(0x4000_0000, 0x1000_0000)])
        XCTAssertNil(p.console)
        XCTAssertNil(p.pciHostBridge)
        XCTAssertNil(p.psci)
        XCTAssertTrue(p.smmus.isEmpty)
        XCTAssertTrue(p.deviceRegions.isEmpty)
    }

    func testCapacityErrors() throws {
        var b = FDTBuilder()
        b.begin("")
        b.begin("memory")
        b.property("device_type", string: "memory")
        b.property("reg", cells: Array(repeating: [0, 0x1000, 0x1000], count: 17).flatMap { $0 })
        b.end()
        b.end()
        XCTAssertEqual(parseError(b.blob()), .tooManyMemoryBanks(capacity: 16))

        var s = FDTBuilder()
        s.begin("")
        for i in 0..<9 {
            s.begin("smmu@\(i)")
            s.property("compatible", string: "arm,smmu-v3")
            s.property("reg", cells: [0, UInt32(i) << 20, 0x2_0000])
            s.end()
        }
        s.end()
        XCTAssertEqual(parseError(s.blob()), .tooManySMMUs(capacity: 8))

        var m = FDTBuilder()
        m.begin("")
        m.begin("memory")
        m.property("device_type", string: "memory")
        m.end()
        m.end()
        XCTAssertEqual(parseError(m.blob()), .missingReg(node: 56 + 8))
    }

    func testPSCIFoundByCompatibleWhenNotNamedPsci() throws {
        var b = FDTBuilder()
        b.begin("")
        b.begin("firmware-psci")
        b.property("compatible", Array("arm,psci-0.2".utf8) + [0])
        b.property("method", string: "hvc")
        b.end()
        b.end()
        let p = try withTree(b.blob()) { tree in try PlatformDescription(tree) }
        XCTAssertEqual(p.psci, PSCIDescription(conduit: .hvc, hasStandardFunctionIDs: true, cpuSuspend: nil,
                                               cpuOff: nil, cpuOn: nil, migrate: nil))
    }

    func testTwoHostBridgesAreRefused() {
        var b = FDTBuilder()
        b.begin("")
        for i in 0..<2 {
            b.begin("pcie@\(i)")
            b.property("compatible", string: "pci-host-ecam-generic")
            b.property("reg", cells: [0, UInt32(i) << 28, 0x1000_0000])
            b.end()
        }
        b.end()
        guard case .multiplePCIHostBridges? = parseError(b.blob()) else { return XCTFail("expected multiplePCIHostBridges") }
    }

    func testUntranslatableBus() throws {
        var b = FDTBuilder()
        b.begin("")
        b.begin("chosen")
        b.property("stdout-path", string: "/bus/uart@0")
        b.end()
        b.begin("bus")
        b.property("#address-cells", cells: [1])
        b.property("#size-cells", cells: [1])
        b.begin("uart@0")
        b.property("reg", cells: [0, 0x1000])
        b.end()
        b.end()
        b.end()
        // The tree itself is well formed; only the description fails.
        let bus = try withTree(b.blob()) { tree in try XCTUnwrap(tree.node(atPath: "/bus")).offset }
        XCTAssertEqual(parseError(b.blob()), .untranslatableAddress(node: bus))
    }
}
