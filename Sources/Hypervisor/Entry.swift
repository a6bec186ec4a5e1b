import AArch64
import Platform
import HostExits
import ArchC

/// The board entry point, called by Boot/start.S at EL2 with the MMU and
/// caches on (coarse map) and x0 = the DTB. The helpers below with this one
/// caller are `@_transparent` (the board's inline threshold is 0: out of line
/// each was a frame and a call of its own), except the self-tests that must
/// keep a frame or a name of their own (overflowStack, swiftTrapSelfTest,
/// takeDataAbort).
@c(hv_main)
func hvMain(_ dtb: UInt64) {
    // EL2's own exceptions run on their own stack (Boot/vectors.S): CPU slot
    // 0's exception stack (start.S set TPIDR_EL2 to slot 0).
    arch_write_sp_el0(arch_cpu_stacks() + UInt64(HV_CPU_EXCEPTION_STACK_TOP))
    let boot = BootEnvironment.read(dtb: dtb)
    let cpu = CPUIDRegisters.read()
    do throws(FDTError) {
        try boot.platform.checkMemory(physicalAddressBits: cpu.physicalAddressRange.bits)
    } catch {
        DeviceTreeReport.reject(error, blob: boot.blob)
    }
    let map = EL2Map.map(ram: boot.platform.memoryBanks, devices: boot.platform.deviceRegions)
    EL2Protection.applyAndReport()
    if BootEnvironment.option(BootEnvironment.Option.writeText) { writeToText() }
    if BootEnvironment.option(BootEnvironment.Option.writeReadOnlyData) { EL2Protection.writeToReadOnlyData() }
    if BootEnvironment.option(BootEnvironment.Option.executeData) { executeData() }
    if BootEnvironment.option(BootEnvironment.Option.stackOverflow) { Console.decimal(overflowStack(1)) }
    if BootEnvironment.option(BootEnvironment.Option.swiftTrap) { Console.decimal(swiftTrapSelfTest(1)) }
    if BootEnvironment.option(BootEnvironment.Option.secondaryStackOverflow) { overflowOnSecondCPU(boot) }
    if BootEnvironment.option(BootEnvironment.Option.semihostingProbe) {
        Console.line("selftest: powering off as for a device tree with no console: semihosting exit 4 tried first")
        Power.probeSemihosting = true
        Power.exit(code: ExitCode.deviceTreeRejected)
    }

    Banner.cpu(cpu)
    Banner.memory(boot.platform, map)
    Checks.expect(arch_read_currentel() >> 2 & 3 == 2, "running at EL2")
    if LinuxHost.requested { LinuxHost.run(boot) }
    if BootEnvironment.option(BootEnvironment.Option.exception) { takeDataAbort() }
    Checks.expect(!boot.platform.memoryBanks.isEmpty, "the DTB lists at least one memory bank")

    let image = MemoryRange(base: PhysAddr(arch_image_start()), size: arch_image_end() - arch_image_start())!
    // Reported from the `let` it is built in, then moved to the `var`: reading
    // the `var` for the report copied all 8 KB of it once more.
    let built: FrameAllocator
    do throws(FrameAllocatorError) {
        built = try FrameAllocator(platform: boot.platform, image: image, deviceTree: boot.blob)
    } catch {
        Checks.expect(false, "frame allocator built from the DTB's memory banks")
        finish()
    }
    Banner.frames(built, image: image, blob: boot.blob)
    var frames = built
    Checks.expect(frameAllocatorKeepsOut(&frames, image: image, blob: boot.blob, reserved: boot.platform),
                  "the frame allocator never hands out the image, the DTB or reserved memory")

    OwnershipScenarios.run(platform: boot.platform, frames: &frames)
    P2MScenarios.run(cpu: cpu, frames: &frames)

    // Every SMMU aborts incoming DMA before the first config access wakes a device.
    let smmus = SMMUSetup.bringUpAll(boot.platform, frames: &frames)

    var pci = PCIBus.Scan()
    // The bridge's ECAM alone: each look at the optional bridge copied all of it.
    let ecam = boot.platform.pciHostBridge?.ecam
    if let ecam, Probe.read32(ecam.base.raw) == nil {
        Console.say("pcie: the ECAM the DTB describes at %x does not answer (external abort): the PCI checks are skipped\n",
                    ecam.base.raw)
    } else {
        pci = PCIBus.enumerate(boot.platform)
        if ecam != nil {
            Checks.expect(pci.count > 0, "PCI functions enumerated through the ECAM the DTB describes")
        }
    }

    Board.runSMMUScenarios(ready: smmus, platform: boot.platform, edu: pci.edu, cpu: cpu, frames: &frames)
    GuestScenario.run(cpu: cpu, frames: &frames)
}

/// Prints the verdict and powers off with it.
func finish() -> Never {
    Checks.summary()
    Power.exit(code: Checks.failed == 0 ? ExitCode.passed : ExitCode.checksFailed)
}

/// Takes frames until a few hundred have been seen (and gives them back),
/// checking none lies in a range that must never be handed out.
@_transparent
private func frameAllocatorKeepsOut(_ frames: inout FrameAllocator, image: MemoryRange, blob: MemoryRange,
                                    reserved platform: PlatformDescription) -> Bool {
    let probes = 256
    var ok = true
    var taken: [MFN] = []
    for _ in 0..<probes {
        guard let frame = try? frames.allocate() else { break }
        taken.append(frame)
        let a = frame.address
        if image.contains(a) || blob.contains(a) { ok = false }
    }
    // The reserved ranges against every frame taken, the list built once: per
    // probe, its getter (an 80-slot list, two ~2 KiB copies on the board) was
    // ~0.26M instructions of memcpy per boot.
    for r in platform.reservedRanges {
        for frame in taken where r.contains(frame.address) { ok = false }
    }
    for frame in taken { try? frames.free(frame) }
    return ok && taken.count == probes
}

/// A load from beyond the EL2 identity map (it covers 0..1 TiB): a
/// translation fault at EL2 that the vectors must report. Out of line:
/// inlined into hv_main, its load and print were the same instructions as
/// hv.selftest=host-exit-fault's in LinuxHost.exit, the outliner made them
/// one function, and that fault was reported in it instead of in exit.
private func takeDataAbort() {
    Console.line("selftest: loading from 0x20000000000, outside the EL2 map")
    let unmapped = UnsafePointer<UInt64>(bitPattern: UInt(0x200_0000_0000))!
    Console.hex(unmapped.pointee)
}

/// A store into the image's own code: a permission fault at EL2 under W^X.
@_transparent
private func writeToText() {
    let text = arch_image_start() + 0x1000
    Console.say("selftest: storing to .text at %x\n", text)
    UnsafeMutablePointer<UInt64>(bitPattern: UInt(text))!.pointee = 0
    Console.line("selftest: the store to .text went through")
}

/// A `ret` written to the heap and called: an instruction abort at EL2 under W^X.
@_transparent
private func executeData() {
    let ret: UInt32 = 0xD65F_03C0
    let code = heapAllocate(UInt32.self)
    code.pointee = ret
    arch_dsb_ishst()
    Console.say("selftest: calling a ret written to the heap at %x\n", UInt64(UInt(bitPattern: code)))
    let function = unsafeBitCast(code, to: (@convention(c) () -> Void).self)
    function()
    Console.line("selftest: the heap executed")
}

/// Recurses until the main stack runs into its guard page. Each level
/// publishes its frame's address, so the compiler must keep every frame.
nonisolated(unsafe) private var overflowFrame: UInt64 = 0
@inline(never)
func overflowStack(_ depth: UInt64) -> UInt64 {
    var frame = InlineArray<32, UInt64>(repeating: depth)
    withUnsafeMutablePointer(to: &frame) { overflowFrame = UInt64(UInt(bitPattern: $0)) }
    arch_dsb_ishst()
    if depth == UInt64.max { return 0 }
    return overflowStack(depth &+ 1) &+ frame[Int(depth & 31)]
}

/// `hv.selftest=stack-overflow-cpu1`: starts a second CPU the way the host
/// mode starts every CPU (PSCI CPU_ON at Boot/host.S's entry, CPU slot 1) and
/// lets it recurse on its own EL2 stack (`hvCPUMain`): the guard page below
/// that stack must stop it, and its handler, on its own exception stack,
/// reports it and ends the run. This CPU waits, and fails the run if nothing
/// was reported within the timeout.
private func overflowOnSecondCPU(_ boot: BootEnvironment) -> Never {
    let psciCPUOn: UInt64 = 0xC400_0003       // CPU_ON, SMC64 (DEN0022 5.1.4)
    let secondSlot: UInt64 = 1
    let waitSeconds: UInt64 = 10
    let me = arch_read_mpidr_el1() & PSCIMediator.affinityMask
    var target: UInt64?
    do throws(HostPlatformScanError) {
        let scan = try HostPlatformScan(boot.tree, pciHostBridge: boot.platform.pciHostBridge)
        // The first CPU that is not this one, read in place from one copy.
        var cpus = scan.cpuAffinities
        var i = 0
        while i < cpus.count && target == nil {
            if cpus[slot: i] != me { target = cpus[slot: i] }
            i += 1
        }
    } catch {
        Checks.expect(false, "selftest: /cpus lists the CPUs")
        finish()
    }
    guard let target else {
        Checks.expect(false, "selftest: a second CPU in /cpus (run QEMU with -smp 2)")
        finish()
    }
    LinuxHost.publishEL2Regime()
    Console.say("selftest: starting the CPU with MPIDR %x at the hypervisor's CPU entry (slot 1), to overflow its EL2 stack\n",
                target)
    let result: UInt64
    switch Power.conduit {
    case .smc: result = arch_smc_call(psciCPUOn, target, arch_host_cpu_entry(), secondSlot)
    case .hvc: result = arch_hvc_call(psciCPUOn, target, arch_host_cpu_entry(), secondSlot)
    case .none: result = UInt64.max
    }
    // Nothing is printed from here on while the second CPU reports.
    guard result == 0 else {
        Checks.expect(false, "selftest: PSCI CPU_ON started the second CPU")
        finish()
    }
    let frequency = arch_read_cntfrq_el0()
    let start = arch_read_cntpct_el0()
    while arch_read_cntpct_el0() &- start < waitSeconds &* frequency {}
    Checks.expect(false, "selftest: the second CPU's stack overflow was reported within 10 s")
    finish()
}

/// Adds UInt64.max to `value` with Swift's checked `+`: traps (BRK) for any
/// value above 0. The addend is a variable, so the compiler cannot fold it.
nonisolated(unsafe) private var trapAddend = UInt64.max
@inline(never)
private func swiftTrapSelfTest(_ value: UInt64) -> UInt64 {
    Console.line("selftest: adding UInt64.max to 1 in Swift (an overflow trap)")
    return value + trapAddend
}

/// Started anywhere but EL2 (Boot/start.S turned on a minimal EL1 map first).
@c(hv_wrong_el)
func hvWrongEL(_ dtb: UInt64, _ el: UInt64) {
    _ = BootEnvironment.read(dtb: dtb)
    Console.say("hvmem: refusing to run at EL%d: this image is a hypervisor and must be entered at EL2.\n", el)
    Console.line("hvmem: on QEMU, add virtualization=on to -M; with U-Boot, boot it without dropping to EL1.")
    Power.exit(code: ExitCode.wrongExceptionLevel)
}
