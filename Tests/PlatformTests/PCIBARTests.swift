import XCTest
import AArch64
@testable import Platform

final class PCIBARTests: XCTestCase {
    let edu = BDF(bus: 0, device: 2, function: 0)!

    func pciError(_ body: () throws -> Void) -> PCIError? {
        do {
            try body()
            return nil
        } catch { return error as? PCIError }
    }

    /// HARDWARE.md section 9: BAR0 reads back 0xFFF00000 = 1 MiB, 32-bit, not prefetchable.
    func testSizesEduBAR0AndRestoresEverything() throws {
        let fake = FakeECAM.virtWithEdu()
        let ecam = PCIECAM(registers: fake, firstBus: 0, lastBus: 0xFF)
        let device = fake.functions[edu.requesterID]!
        device.command = 0x0002
        device.bars[0].value = 0x1230_0000
        let bar = try XCTUnwrap(try ecam.sizeBAR(0, of: edu))
        XCTAssertEqual(bar, PCIBAR(index: 0, kind: .memory32(prefetchable: false), size: 0x10_0000))
        XCTAssertEqual(device.bars[0].value, 0x1230_0000)
        XCTAssertEqual(device.command, 0x0002)
        XCTAssertEqual(device.commandWhileProbing, [0])
        // The status half of every command write is zero (RW1C bits kept).
        XCTAssertTrue(device.writes.filter { $0.0 == 4 }.allSatisfy { $0.1 >> 16 == 0 })
        XCTAssertEqual(device.status, 0x0010)
        // BAR1..5 are absent.
        for index in 1..<6 { XCTAssertNil(try ecam.sizeBAR(index, of: edu)) }
        XCTAssertEqual(pciError { _ = try ecam.sizeBAR(6, of: self.edu) }, .barIndexOutOfRange(6))
        XCTAssertEqual(pciError { _ = try ecam.sizeBAR(0, of: BDF(bus: 0, device: 9, function: 0)!) },
                       .noFunction(BDF(bus: 0, device: 9, function: 0)!))
    }

    /// The board's bring-up: assign edu's BAR0 from the DTB's 32-bit window,
    /// then enable memory decoding and bus mastering (status/command 0x00100006).
    func testAssignsEduFromTheDTBWindowAndEnables() throws {
        let platform = try withTree(Fixture.bytes(Fixture.virt1G)) { tree in try PlatformDescription(tree) }
        let bridge = try XCTUnwrap(platform.pciHostBridge)
        let fake = FakeECAM.virtWithEdu()
        let ecam = PCIECAM(registers: fake, bridge: bridge)
        var window = PCIWindowAllocator(window: try XCTUnwrap(bridge.memory32Window))
        let assigned = try XCTUnwrap(try ecam.assignMemoryBAR(0, of: edu, from: &window))
        XCTAssertEqual(assigned.pciAddress, 0x1000_0000)
        XCTAssertEqual(assigned.cpuAddress, PhysAddr(0x1000_0000))
        XCTAssertEqual(ecam.read32(edu, PCIConfigRegister.bar0), 0x1000_0000)
        ecam.enableMemoryAndBusMaster(edu)
        XCTAssertEqual(ecam.read32(edu, PCIConfigRegister.commandStatus), 0x0010_0006)
        XCTAssertEqual(ecam.command(of: edu), [.memorySpace, .busMaster])
        // The next BAR lands after it, naturally aligned.
        XCTAssertEqual(try window.allocate(size: 0x4000).pci, 0x1010_0000)
        XCTAssertEqual(try window.allocate(size: 0x20_0000).pci, 0x1020_0000)
    }

    func testSixtyFourBitPrefetchableAndIOBARs() throws {
        let fake = FakeECAM()
        let bdf = BDF(bus: 0, device: 1, function: 0)!
        var bars: [FakeFunction.BAR] = [
            .init(size: 0x100, flags: 0x1),                  // I/O, 256 bytes
            .init(size: 0x2_0000_0000, flags: 0xC),          // 64-bit prefetchable, 8 GiB
            .init(size: 0x2_0000_0000, flags: 0, isUpperHalf: true),
        ]
        bars += [.init(size: 0x1000, flags: 0x4)]            // 64-bit at BAR3 ...
        bars += [.init(size: 0x1000, flags: 0, isUpperHalf: true)]
        bars += [.init(size: 0x1000, flags: 0x4)]            // ... and one at BAR5 with no room for its upper half
        fake.functions[bdf.requesterID] = FakeFunction(vendor: 0x1AF4, device: 0x1000, classCode: 0x02_0000,
                                                        revision: 0, header: 0, bars: bars)
        let ecam = PCIECAM(registers: fake, firstBus: 0, lastBus: 0)
        XCTAssertEqual(try ecam.sizeBAR(0, of: bdf), PCIBAR(index: 0, kind: .io, size: 0x100))
        let wide = try XCTUnwrap(try ecam.sizeBAR(1, of: bdf))
        XCTAssertEqual(wide, PCIBAR(index: 1, kind: .memory64(prefetchable: true), size: 0x2_0000_0000))
        XCTAssertEqual(pciError { _ = try ecam.sizeBAR(5, of: bdf) }, .barIndexOutOfRange(6))

        let window64 = PCIWindow(space: .memory64, isPrefetchable: true, pciAddress: 0x80_0000_0000,
                                 cpuAddress: PhysAddr(0x80_0000_0000), size: 0x80_0000_0000)
        var allocator = PCIWindowAllocator(window: window64)
        let assigned = try XCTUnwrap(try ecam.assignMemoryBAR(1, of: bdf, from: &allocator))
        XCTAssertEqual(assigned.pciAddress, 0x80_0000_0000)
        XCTAssertEqual(ecam.read32(bdf, 0x14), 0x0000_000C)
        XCTAssertEqual(ecam.read32(bdf, 0x18), 0x80)

        // An I/O BAR is not placed in a memory window; a 32-bit BAR not in a 64-bit one.
        let before = allocator
        XCTAssertEqual(pciError { _ = try ecam.assignMemoryBAR(0, of: bdf, from: &allocator) },
                       .unsupportedBARType(raw: 0x1))
        XCTAssertEqual(allocator.next, before.next)
        let edu = BDF(bus: 0, device: 2, function: 0)!
        fake.functions[edu.requesterID] = .edu()
        XCTAssertEqual(pciError { _ = try ecam.assignMemoryBAR(0, of: edu, from: &allocator) },
                       .windowUnsuitable(.memory64))
    }

    func testProgramChecksAlignmentAndReach() throws {
        let fake = FakeECAM.virtWithEdu()
        let ecam = PCIECAM(registers: fake, firstBus: 0, lastBus: 0)
        let bar = PCIBAR(index: 0, kind: .memory32(prefetchable: false), size: 0x10_0000)
        let writesBefore = fake.functions[edu.requesterID]!.writes.count
        XCTAssertEqual(pciError { try ecam.program(bar, of: self.edu, at: 0x1008_0000) },
                       .misalignedBARAddress(0x1008_0000, size: 0x10_0000))
        XCTAssertEqual(pciError { try ecam.program(bar, of: self.edu, at: 0x1_0000_0000) },
                       .addressAbove4GiB(0x1_0000_0000))
        XCTAssertEqual(fake.functions[edu.requesterID]!.writes.count, writesBefore)
        XCTAssertNoThrow(try ecam.program(bar, of: edu, at: 0xFFF0_0000))
    }

    func testWindowExhaustionLeavesAllocatorAndDeviceUnchanged() throws {
        let small = PCIWindow(space: .memory32, isPrefetchable: false, pciAddress: 0x1000_0000,
                              cpuAddress: PhysAddr(0x1000_0000), size: 0x8_0000)
        var window = PCIWindowAllocator(window: small)
        let fake = FakeECAM.virtWithEdu()
        let ecam = PCIECAM(registers: fake, firstBus: 0, lastBus: 0)
        XCTAssertEqual(pciError { _ = try ecam.assignMemoryBAR(0, of: self.edu, from: &window) },
                       .windowExhausted(size: 0x10_0000))
        XCTAssertEqual(window.next, 0x1000_0000)
        XCTAssertEqual(ecam.read32(edu, PCIConfigRegister.bar0), 0)
        XCTAssertEqual(pciError { _ = try window.allocate(size: 0x3000) }, .sizeNotPowerOfTwo(0x3000))
        XCTAssertEqual(pciError { _ = try window.allocate(size: 0) }, .sizeNotPowerOfTwo(0))
        XCTAssertEqual(try window.allocate(size: 0x8_0000).pci, 0x1000_0000)
        XCTAssertEqual(pciError { _ = try window.allocate(size: 0x1000) }, .windowExhausted(size: 0x1000))
    }

    func testWindowAddressConversion() {
        let io = PCIWindow(space: .io, isPrefetchable: false, pciAddress: 0, cpuAddress: PhysAddr(0x3EFF_0000),
                           size: 0x1_0000)
        XCTAssertEqual(io.cpuAddress(forPCIAddress: 0x1234), PhysAddr(0x3EFF_1234))
        XCTAssertNil(io.cpuAddress(forPCIAddress: 0x1_0000))
        var allocator = PCIWindowAllocator(window: io)
        XCTAssertEqual(try allocator.allocate(size: 0x100).cpu, PhysAddr(0x3EFF_0000))
    }

    /// BAR type and flag bits pinned (PCIe Base 5.0, 7.5.1.2.1).
    func testBARFlagEncodings() {
        XCTAssertEqual(PCIBAR.ioSpaceBit, 0b1)
        XCTAssertEqual(PCIBAR.memoryType64 << PCIBAR.memoryTypeShift, 0b100)
        XCTAssertEqual(PCIBAR.prefetchableBit, 0b1000)
        XCTAssertEqual(PCICommand.memorySpace.rawValue, 0x2)
        XCTAssertEqual(PCICommand.busMaster.rawValue, 0x4)
        XCTAssertEqual(PCICommand.ioSpace.rawValue, 0x1)
    }
}
