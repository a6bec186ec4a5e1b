import AArch64
import Platform
import ArchC

/// The board entry point, called by Boot/start.S at EL2 with the MMU and
/// caches on (coarse map) and x0 = the DTB.
@c(hv_main)
func hvMain(_ dtb: UInt64) {
    guard let boot = BootEnvironment.read(dtb: dtb) else {
        // No console without a DTB: nothing can be said. Park.
        while true { arch_wfe() }
    }
    let platform = boot.platform
    var banks: [EL2Map.Range] = []
    for bank in platform.memoryBanks { banks.append((bank.base.raw, bank.size)) }
    var devices: [EL2Map.Range] = []
    if let uart = platform.console { devices.append((uart.registers.base.raw, uart.registers.size)) }
    for smmu in platform.smmus { devices.append((smmu.registers.base.raw, smmu.registers.size)) }
    if let bridge = platform.pciHostBridge {
        devices.append((bridge.ecam.base.raw, bridge.ecam.size))
        for window in bridge.windows { devices.append((window.cpuAddress.raw, window.size)) }
    }
    let map = EL2Map.map(ram: banks, devices: devices)

    Banner.cpu()
    Banner.memory(platform, map)
    Checks.expect(arch_read_currentel() >> 2 & 3 == 2, "running at EL2")
    if LinuxHost.requested(boot) { LinuxHost.run(boot) }
    if BootEnvironment.exceptionSelfTest { takeDataAbort() }
    Checks.expect(!platform.memoryBanks.isEmpty, "the DTB lists at least one memory bank")

    let image = MemoryRange(base: PhysAddr(arch_image_start()), size: arch_image_end() - arch_image_start())!
    var frames: FrameAllocator
    do throws(FrameAllocatorError) {
        frames = try FrameAllocator(platform: platform, image: image, deviceTree: boot.blob)
    } catch {
        Checks.expect(false, "frame allocator built from the DTB's memory banks")
        finish()
    }
    Banner.frames(frames, image: image, blob: boot.blob)
    Checks.expect(frameAllocatorKeepsOut(&frames, image: image, blob: boot.blob, reserved: platform),
                  "the frame allocator never hands out the image, the DTB or reserved memory")

    OwnershipScenarios.run(platform: platform, frames: &frames)
    P2MScenarios.run(frames: &frames)

    let functions = PCIBus.enumerate(platform)
    Checks.expect(functions.count > 0, "PCI functions enumerated through the ECAM the DTB describes")

    Board.runSMMUScenarios(platform: platform, functions: functions, frames: &frames)
    GuestScenario.run(frames: &frames)
}

/// Prints the verdict and powers off with it.
func finish() -> Never {
    Checks.summary()
    Power.exit(code: Checks.failed == 0 ? ExitCode.passed : ExitCode.checksFailed)
}

/// Takes frames until a few hundred have been seen (and gives them back),
/// checking none lies in a range that must never be handed out.
private func frameAllocatorKeepsOut(_ frames: inout FrameAllocator, image: MemoryRange, blob: MemoryRange,
                                    reserved platform: PlatformDescription) -> Bool {
    let probes = 256
    var ok = true
    var taken: [MFN] = []
    for _ in 0..<probes {
        guard let frame = try? frames.allocate() else { break }
        taken.append(frame)
        let a = frame.address.raw
        if image.contains(a) || blob.contains(a) { ok = false }
        for r in platform.reservedRanges where r.contains(a) { ok = false }
    }
    for frame in taken { try? frames.free(frame) }
    return ok && taken.count == probes
}

extension MemoryRange {
    func contains(_ address: UInt64) -> Bool { address >= base.raw && address - base.raw < size }
}

/// A load from beyond the EL2 identity map (it covers 0..1 TiB): a
/// translation fault at EL2 that the vectors must report.
private func takeDataAbort() {
    Console.line("selftest: loading from 0x20000000000, outside the EL2 map")
    let unmapped = UnsafePointer<UInt64>(bitPattern: UInt(0x200_0000_0000))!
    Console.hex(unmapped.pointee)
}

/// Started anywhere but EL2 (Boot/start.S turned on a minimal EL1 map first).
@c(hv_wrong_el)
func hvWrongEL(_ dtb: UInt64, _ el: UInt64) {
    guard BootEnvironment.read(dtb: dtb) != nil else { while true { arch_wfe() } }
    Console.put("hvmem: refusing to run at EL")
    Console.decimal(el)
    Console.line(": this image is a hypervisor and must be entered at EL2.")
    Console.line("hvmem: on QEMU, add virtualization=on to -M; with U-Boot, boot it without dropping to EL1.")
    Power.exit(code: ExitCode.wrongExceptionLevel)
}
