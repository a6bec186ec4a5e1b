import AArch64
import Translation
import Platform
import SMMUv3
import Ownership
import HostExits
import ArchC

/// The Linux-host mode (`hv.host=linux` in /chosen/bootargs): instead of the
/// board checks, the hypervisor deprivileges the OS kernel the loader placed
/// at `hv.kernel=0x<address>` (QEMU: `-device loader,file=Image,addr=...,
/// force-raw=on`) and runs it at EL1 as the host, pKVM's model: an identity
/// stage 2 that leaves out the hypervisor's own memory and the SMMU, and every
/// firmware call, stage-2 abort and control-device access decided at EL2.
///
/// The hypervisor keeps `hypervisorBytes` from the 2 MiB boundary its image
/// runs at: the frame table, the host P2M's tables and the SMMU's tables and
/// queues all come from that carve-out, so it is one reserved range in the
/// host's device tree and one hole in the host's stage 2.
enum LinuxHost {
    static let kernelOption: StaticString = "hv.kernel="
    static let hypervisorBytes: UInt64 = 32 << 20
    static let vmid: UInt16 = 1
    static let maximumIPABits = 40
    static let tablePoolFrames = 128
    static let mirrorPoolFrames = 1024
    static let asid: UInt16 = 1

    nonisolated(unsafe) static var active = false
    nonisolated(unsafe) static var bootCPU = 0
    /// The boot heap's use when the host starts: every exit is served
    /// without allocating, which the closing report checks against this.
    nonisolated(unsafe) static var heapAtEntry: UInt64 = 0
    /// The host's stage 2 and its own lock (every edit of it holds the lock),
    /// in one allocation: a static lock is initialised lazily, through code of its own.
    struct HostP2M: ~Copyable {
        var table: BoardP2M
        let lock = P2MLock()
    }
    nonisolated(unsafe) static var p2m: UnsafeMutablePointer<HostP2M>?
    nonisolated(unsafe) static var registers: HostEL2Registers?
    nonisolated(unsafe) static var smmuHandle: BoardSMMUHandle?
    nonisolated(unsafe) static var psci: UnsafeMutablePointer<PSCIMediator>?
    nonisolated(unsafe) static var pages: UnsafeMutablePointer<LinuxHostPages>?
    nonisolated(unsafe) static var handler: HostExitHandler?
    /// Per CPU: the control device's registers.
    nonisolated(unsafe) static var controlFiles: UnsafeMutablePointer<ControlRegisterFile>?
    nonisolated(unsafe) static var exitCounts: UnsafeMutablePointer<UInt64>?
    /// Guards the PSCI table and the page-state operations (Boot/host.S's word).
    static var lock: SpinLock { SpinLock(word: arch_host_lock()!) }
    nonisolated(unsafe) static var smmuPhandle: UInt32?
    nonisolated(unsafe) static var domain: SMMUDomain?
    /// edu's StreamID: the hypervisor's closing report looks for its faults.
    nonisolated(unsafe) static var eduStreamID: UInt32?
    /// The page below the control page (`run`): see `canaryWord`. Its
    /// address alone, which needs no lazy initialisation as a global.
    nonisolated(unsafe) static var canaryPage: UInt64 = 0
    /// Host RAM the host's DTB reserves (no-map) so its shell can read it with
    /// devmem (STRICT_DEVMEM refuses System RAM): the edu DMA test's buffer.
    static let dmaTestBytes: UInt64 = 64 << 10
    /// Room for the nodes the host's tree gains.
    static let deviceTreeSlack: UInt64 = 8 << 10

    static let carveOutAlignment: UInt64 = 1 << PageSize.shift2M

    /// The last page of `range` that overlaps neither `a` nor `b`.
    @_transparent
    static func lastFreePage(in range: MemoryRange, avoiding a: MemoryRange, _ b: MemoryRange) -> MemoryRange? {
        // From the last page down, in a while loop: a range loop stepped a
        // Range iterator in memory (so do the other loops here).
        var index = range.size >> PageSize.shift4K
        while index > 0 {
            index -= 1
            let page = MemoryRange(base: PhysAddr(raw: range.base.raw + (index << PageSize.shift4K)), size: PageSize.bytes4K)!
            if !page.overlaps(a) && !page.overlaps(b) { return page }
        }
        return nil
    }

    /// Whether the `bytes` from `base` lie inside one of the DTB's memory
    /// banks. (One loop for every such check: each closure passed to
    /// `contains(where:)` was a copy of it in the image.)
    static func inOneBank(_ platform: PlatformDescription, _ base: UInt64, bytes: UInt64) -> Bool {
        for bank in platform.memoryBanks where bank.contains(PhysAddr(raw: base)) {
            if bank.size - (base - bank.base.raw) >= bytes { return true }
        }
        return false
    }

    static var requested: Bool { BootEnvironment.option(BootEnvironment.Option.linuxHost) }

    /// The set-up steps with one caller that are `@_transparent` are inlined
    /// here (the board's inline threshold is 0): out of line, each call moved
    /// its large arguments and each step had its own frame. Those that came
    /// out larger inlined (bringUpSMMU, preparePSCI, attachEveryStream) stay
    /// out of line.
    static func run(_ boot: BootEnvironment) -> Never {
        // The image runs 2 MiB-aligned (it is position-independent; QEMU and
        // booti place it so): the carve-out starts there.
        let image = MemoryRange(base: PhysAddr(arch_image_start()), size: arch_image_end() - arch_image_start())!
        let base = image.base.raw & ~(carveOutAlignment - 1)
        guard let carveOut = MemoryRange(base: PhysAddr(raw: base), size: hypervisorBytes), image.end.raw <= carveOut.end.raw,
              inOneBank(boot.platform, carveOut.base.raw, bytes: carveOut.size) else {
            stop("host: no room in RAM for the hypervisor's 32 MiB carve-out from where the image runs")
        }
        // Its last page that holds neither the image nor the firmware's DTB is
        // the control page (the control device's: its IPA is nobody's RAM and
        // no device's, and the host stage 2 never maps it), and the page below
        // it the canary (the host's test script finds the canary there, from
        // the control node's address).
        guard let control = lastFreePage(in: carveOut, avoiding: image, boot.blob),
              let canary = MemoryRange(base: PhysAddr(raw: control.base.raw - PageSize.bytes4K), size: PageSize.bytes4K),
              carveOut.contains(canary.base), !canary.overlaps(image), !canary.overlaps(boot.blob) else {
            stop("host: the image and the DTB leave no room for the control page and the canary")
        }
        canaryPage = canary.base.raw
        // Read once: `writeHostDeviceTree` keeps its copy of the tree clear of it too.
        let initrd: MemoryRange?
        do throws(FDTError) {
            initrd = try boot.tree.initialRamdisk()
        } catch {
            stop("host: /chosen/linux,initrd-start/-end are malformed")
        }
        if let initrd, initrd.overlaps(carveOut) {
            stop("host: the initrd lies in the hypervisor's carve-out")
        }
        Console.say("host: hypervisor memory %x + %x\n", carveOut.base.raw, carveOut.size)

        let kernel = kernelPlacement(boot, carveOut: carveOut)
        var frames: FrameAllocator
        // The list types `FrameAllocator(platform:)` uses: one specialisation of its init in the image.
        var banks = FixedList<16, MemoryRange>()
        var excluded = FixedList<80, MemoryRange>()
        // One and four appends to fresh lists of capacity 16 and 80: none can
        // fail, so their results are not tested (a test that could not fail).
        _ = banks.append(carveOut)
        _ = excluded.append(image)
        _ = excluded.append(boot.blob)
        _ = excluded.append(control)
        _ = excluded.append(canary)
        do throws(FrameAllocatorError) {
            frames = try FrameAllocator(banks: banks, excluding: excluded)
        } catch {
            stop("host: no frame allocator over the hypervisor's carve-out")
        }
        let scan: HostPlatformScan
        do throws(HostPlatformScanError) { scan = try HostPlatformScan(boot.tree, pciHostBridge: boot.platform.pciHostBridge) } catch {
            stop("host: the DTB's CPUs or device windows are malformed")
        }
        let smmu = bringUpSMMU(boot.platform, frames: &frames)
        let doorbells: MSIDoorbells
        do throws(FDTError) { doorbells = try MSIDoorbells(boot.tree) } catch {
            stop("host: the PCI host bridge's MSI controller is malformed (msi-parent, msi-map, reg)")
        }
        buildP2M(boot.platform, scan: scan, doorbells: doorbells, carveOut: carveOut, control: control, smmu: smmu,
                 frames: &frames)
        attachEveryStream(boot.platform, smmu: smmu, frames: &frames)
        buildFrameTable(boot.platform, carveOut: carveOut, smmu: smmu, frames: &frames)
        let dtb = writeHostDeviceTree(boot, carveOut: carveOut, control: control, kernel: kernel, initrd: initrd)

        let el2 = HostEL2Registers(idAA64PFR0: arch_read_id_aa64pfr0_el1(), idAA64PFR1: arch_read_id_aa64pfr1_el1(),
                                   idAA64ISAR1: arch_read_id_aa64isar1_el1(), idAA64ISAR2: arch_read_id_aa64isar2_el1(),
                                   idAA64DFR0: arch_read_id_aa64dfr0_el1(),
                                   pmcr: HostEL2Registers.hasPMU(dfr0: arch_read_id_aa64dfr0_el1()) ? arch_read_pmcr_el0() : 0,
                                   sctlrEL1RES1: UInt64(HV_SCTLR_EL1_RES1))
        registers = el2
        publishEL2Regime()
        paintStacks()
        prepareExits()
        handler = HostExitHandler(controlPage: IPA(control.base.raw))
        active = true
        heapAtEntry = hv_heap_used()
        Console.say("host: entering the kernel at %x at EL1, DTB %x, HCR_EL2 %x\n", kernel.base.raw, dtb, el2.hcr)
        enter(cpu: bootCPU, entry: kernel.base.raw, x0: dtb)
    }

    /// The kernel the loader placed where `hv.kernel=` says, checked against
    /// its own header and kept clear of the hypervisor's memory.
    @_transparent
    private static func kernelPlacement(_ boot: BootEnvironment, carveOut: MemoryRange) -> MemoryRange {
        guard let address = boot.tree.bootArgumentNumber(kernelOption) else {
            stop("host: hv.host=linux needs hv.kernel=0x<address> (where -device loader put the Image)")
        }
        guard inOneBank(boot.platform, address, bytes: UInt64(ARM64ImageHeader.size)),
              let bytes = UnsafeRawPointer(bitPattern: UInt(address)) else {
            stop("host: hv.kernel= is not an address in RAM")
        }
        let header: ARM64ImageHeader
        do throws(ARM64ImageError) {
            header = try ARM64ImageHeader(UnsafeRawBufferPointer(start: bytes, count: ARM64ImageHeader.size))
        } catch {
            stop("host: no arm64 Image header at hv.kernel= (magic, image_size, flags)")
        }
        guard let placed = header.placement(loadedAt: PhysAddr(raw: address)), !placed.overlaps(carveOut),
              inOneBank(boot.platform, placed.base.raw, bytes: placed.size) else {
            stop("host: the kernel's placement breaks the boot protocol or overlaps the hypervisor's memory")
        }
        Console.say("host: arm64 Image at %x + %x\n", placed.base.raw, placed.size)
        return placed
    }

    /// The host's identity stage 2 (Platform's HostStage2Layout): RAM minus
    /// the carve-out as Normal memory, every device window the DTB describes
    /// (HostPlatformScan) as Device memory, the SMMU's registers and the
    /// control page never mapped. A stage-1 mirror (an SMMU without stage 2)
    /// maps none of that MMIO for DMA except the MSI doorbell pages. The
    /// PSCI table, which takes the layout's RAM, is made here too (returning
    /// the layout copied all of it).
    @_transparent
    private static func buildP2M(_ platform: PlatformDescription, scan: HostPlatformScan, doorbells: MSIDoorbells,
                                 carveOut: MemoryRange, control controlPage: MemoryRange, smmu: BoardSMMUHandle,
                                 frames: inout FrameAllocator) {
        // What both the CPU and the SMMU can output: the P2M is shared with,
        // or mirrored into, the SMMU.
        let cpuRange = PhysicalAddressRange(idAA64MMFR0: arch_read_id_aa64mmfr0_el1()) ?? .bits32
        let smmuRange = PhysicalAddressRange(rawValue: UInt8(smmu.smmu.features.outputAddressSizeCode)) ?? .bits32
        let paRange = min(min(cpuRange, smmuRange), .bits48)
        let ipaBits = min(maximumIPABits, paRange.bits)
        var neverMapped = FixedList<16, MemoryRange>()
        for smmu in platform.smmus { _ = neverMapped.append(smmu.registers) }
        _ = neverMapped.append(controlPage)
        let layout: HostStage2Layout
        do throws(HostStage2LayoutError) {
            layout = try HostStage2Layout(ram: platform.memoryBanks, devices: scan.deviceWindows,
                                          hypervisorOwned: CollectionOfOne(carveOut), neverMapped: neverMapped,
                                          ipaLimit: 1 << UInt64(ipaBits))
        } catch {
            stop("host: the host's stage-2 layout was refused (overlapping or out-of-range DTB ranges)")
        }
        let pool: FramePool
        let mirrorPool: FramePool
        do throws(FrameAllocatorError) {
            pool = try FramePool(frames: tablePoolFrames, from: &frames)
            mirrorPool = try FramePool(frames: mirrorPoolFrames, from: &frames)
        } catch {
            stop("host: no table pages for the host's stage 2 and its IOMMU mirror")
        }
        var doorbellPages = doorbells.pages
        let hooks: BoardHooks
        do throws(Stage1MirrorError) {
            // The doorbell list's slots read in place from one copy: a `for in`
            // copies the whole list into its iterator, and `doorbells.pages[i]`
            // copied it at every read.
            var doorbellFrames: [MFN] = []
            var i = 0
            while i < doorbellPages.count {
                doorbellFrames.append(doorbellPages[slot: i].base.frame)
                i += 1
            }
            hooks = try BoardHooks.make(handle: smmu, asid: asid, ipaBits: ipaBits, pool: mirrorPool,
                                        msiDoorbells: doorbellFrames, allocator: &frames)
        } catch {
            stop("host: the host's DMA domain (stage-1 mirror or shared stage 2) could not be made")
        }
        let host = heapAllocate(HostP2M.self)
        do throws(P2MError) {
            host.initialize(to: HostP2M(table: try BoardP2M(
                configuration: P2MConfiguration(vmid: vmid, ipaBits: ipaBits, paRange: paRange,
                                                vmidWidth: VMIDWidth(idAA64MMFR1: arch_read_id_aa64mmfr1_el1())),
                pool: pool, hooks: hooks)))
        } catch {
            stop("host: the host's stage 2 could not be created")
        }
        var batch = BoardBatch.make()
        var failed = false
        var blocks1G: UInt64 = 0, blocks2M: UInt64 = 0, pages: UInt64 = 0
        let held = host.pointee.lock.acquire()
        // By index: a `for in` brought an iterator specialisation for this list
        // type. Slots read in place from one copy (`layout.runs[i]` copied all 128).
        var runs = layout.runs
        var i = 0
        while i < runs.count {
            let run = runs[slot: i]
            i += 1
            let first = run.base.raw >> PageSize.shift4K
            let count = run.size >> PageSize.shift4K
            switch run.granule {
            case .block1G: blocks1G += count / run.granule.pages
            case .block2M: blocks2M += count / run.granule.pages
            case .page4K: pages += count
            }
            do throws(P2MError) {
                try host.pointee.table.map(GFN(raw: first), to: MFN(raw: first), count: count,
                                      as: run.memory == .normal ? .ramRW : .mmioDirectDevice, flushing: &batch,
                                      holding: held)
            } catch { failed = true }
        }
        Board.commit(&host.pointee.table, &batch, smmu, holding: held)
        host.pointee.lock.release(held)
        if failed { stop("host: mapping the host's identity stage 2 failed") }
        p2m = host
        domain = hooks.domain(vttbr: host.pointee.table.vttbr, vtcr: host.pointee.table.vtcr)
        if hooks.mirror != nil {
            i = 0
            while i < doorbellPages.count {
                let page = doorbellPages[slot: i]
                Console.say("host: MSI doorbell reachable by DMA at %x + %x\n", page.base.raw, page.size)
                i += 1
            }
        }
        Console.say("host: identity stage 2, VTCR_EL2 %x: %d runs, %d 1 GiB blocks, %d 2 MiB blocks, %d pages\n",
                    host.pointee.table.vtcr.raw, UInt64(truncatingIfNeeded: runs.count), blocks1G, blocks2M, pages)
        preparePSCI(scan, layout: layout)
    }

    /// The frame table for all RAM, in the carve-out: every frame starts
    /// host-owned, then the carve-out's frames become the hypervisor's own
    /// (xenheap), which the host can neither share nor reclaim.
    @_transparent
    private static func buildFrameTable(_ platform: PlatformDescription, carveOut: MemoryRange, smmu: BoardSMMUHandle,
                                        frames: inout FrameAllocator) {
        let banks = OwnershipScenarios.frameTableBanks(platform)
        let tableFrames = (FrameTableStorage.bytesNeeded(for: banks) + PageSize.offsetMask4K) >> PageSize.shift4K
        var ownership: BoardOwnership
        do throws(OwnershipError) {
            let base: MFN
            do throws(FrameAllocatorError) { base = try frames.allocate(count: tableFrames) } catch {
                stop("host: no room in the carve-out for the frame table")
            }
            ownership = try BoardOwnership(
                banks: banks, placingFrameTableAt: UnsafeMutableRawPointer(bitPattern: UInt(base.address.raw))!,
                cache: BoardCache())
            let first = carveOut.base.frame
            var i: UInt64 = 0
            while i < carveOut.size >> PageSize.shift4K {
                try ownership.allocateXenheapPage(first.adding(i))
                i += 1
            }
        } catch {
            stop("host: the frame table could not be built")
        }
        guard let p2m else { stop("host: frame table before the stage 2") }
        let frameCount = ownership.frames.frameCount
        let operations = heapAllocate(LinuxHostPages.self)
        operations.initialize(to: LinuxHostPages(ownership: ownership, stage2: LinuxHostStage2(p2m: p2m, smmu: smmu)))
        pages = operations
        Console.say("host: frame table for %d frames, the carve-out's %d are the hypervisor's\n",
                    UInt64(truncatingIfNeeded: frameCount), carveOut.size >> PageSize.shift4K)
    }

    /// PSCI bookkeeping for every CPU the DTB lists; CPUs the host starts
    /// enter at Boot/host.S's hv_cpu_entry.
    private static func preparePSCI(_ scan: HostPlatformScan, layout: HostStage2Layout) {
        let cpus = scan.cpuAffinities
        let me = arch_read_mpidr_el1() & PSCIMediator.affinityMask
        var index: Int?
        var i = 0
        while i < cpus.count {
            if cpus[i] == me { index = i }
            i += 1
        }
        guard let index else { stop("host: the boot CPU's MPIDR is not in /cpus") }
        let table = heapAllocate(PSCIMediator.self)
        do throws(PSCISetupError) {
            table.initialize(to: try PSCIMediator(cpuMPIDRs: cpus, bootCPU: index,
                                                  hypervisorEntry: PhysAddr(raw: arch_host_cpu_entry()), hostRAM: layout))
        } catch {
            stop("host: the PSCI table could not be set up from /cpus")
        }
        psci = table
        bootCPU = index
    }

    /// The SMMU belongs to the hypervisor: the host's tree does not describe
    /// it, and without one the host's devices could reach the hypervisor's
    /// memory, so the host mode refuses to run.
    private static func bringUpSMMU(_ platform: PlatformDescription, frames: inout FrameAllocator) -> BoardSMMUHandle {
        // Slot 0 read in place: `first` was a copy of Collection.first for this list type.
        guard !platform.smmus.isEmpty else {
            stop("host: the DTB describes no arm,smmu-v3: the host's DMA could reach the hypervisor, refusing")
        }
        let description = platform.smmus[0]
        let registers = MMIORegisterBlock(base: description.registers.base.raw)
        let features: SMMUFeatures
        do throws(SMMUProbeError) { features = try SMMUFeatures.probe(registers) } catch {
            stop("host: the SMMU's ID registers describe hardware this driver cannot drive")
        }
        let ready: ReadySMMU
        do throws(BringUpError) {
            ready = try SMMUSetup.enable(description, features, frames: &frames)
        } catch {
            stop("host: SMMU bring-up failed")
        }
        Console.say(ready.mode == .stage2 ? "host: SMMU at %x owned by the hypervisor; the host's DMA domain shares its stage 2\n"
                    : "host: SMMU at %x owned by the hypervisor; the host's DMA domain is a stage-1 mirror of its stage 2\n",
                    description.registers.base.raw)
        let handle = ready.handle
        smmuHandle = handle
        smmuPhandle = description.phandle
        return handle
    }

    /// Every requester ID on every bus the host bridge decodes that has a
    /// function on it is attached to the host's domain, so whatever the host
    /// enables later DMAs through the host's translation and nothing else.
    private static func attachEveryStream(_ platform: PlatformDescription, smmu: BoardSMMUHandle,
                                          frames: inout FrameAllocator) {
        guard let bridge = platform.pciHostBridge, let domain else { return }
        // One bit per bus number (256): the buses with a function on them. Bus
        // numbers are below 256 (their word, bus >> 6, below 4: read unchecked).
        var populated = InlineArray<4, UInt64>(repeating: 0)
        for function in PCIBus.ecam(bridge).functions {
            let bus = Int(function.address.bus)
            populated[unchecked: bus >> 6] |= 1 << UInt64(bus & 63)
            if function.vendorID == EduDevice.vendorID && function.deviceID == EduDevice.deviceID {
                eduStreamID = bridge.iommuTarget(forRequesterID: function.address.requesterID)?.streamID
            }
        }
        var attached: UInt64 = 0
        var failed = false
        // While loops: a range loop stepped a Range iterator in memory (a
        // closed range brought its own iterator and index(after:) too).
        var bus = Int(bridge.firstBus)
        while bus <= Int(bridge.lastBus) {
            if populated[unchecked: bus >> 6] >> UInt64(bus & 63) & 1 != 0 {
                var devfn = 0
                while devfn < 256 {
                    if let target = bridge.iommuTarget(forRequesterID: UInt16(truncatingIfNeeded: bus) << 8
                                                                  | UInt16(truncatingIfNeeded: devfn)),
                       smmuPhandle == nil || target.iommu == smmuPhandle {
                        do throws(AttachError) {
                            try smmu.smmu.attach(StreamID(target.streamID), to: domain, allocator: &frames)
                            attached += 1
                        } catch { failed = true }
                    }
                    devfn += 1
                }
            }
            bus += 1
        }
        if failed { stop("host: attaching the PCI StreamIDs to the host's domain failed") }
        Console.say("host: %d StreamIDs attached to the host's DMA domain\n", attached)
    }

    /// The host's device tree (Platform's HostDeviceTree), written into host
    /// RAM just above the carve-out: the DMA test region first, then the tree.
    /// Linux reserves the memory its DTB sits in, and the initrd, the kernel
    /// and the firmware's tree lie elsewhere (checked).
    @_transparent
    private static func writeHostDeviceTree(_ boot: BootEnvironment, carveOut: MemoryRange,
                                            control controlPage: MemoryRange, kernel: MemoryRange,
                                            initrd: MemoryRange?) -> UInt64 {
        let dmaTest = MemoryRange(base: carveOut.end, size: dmaTestBytes)!
        let capacity = (UInt64(boot.tree.header.totalSize) + deviceTreeSlack + PageSize.offsetMask4K) & ~PageSize.offsetMask4K
        let target = MemoryRange(base: dmaTest.end, size: capacity)!
        var clear = !target.overlaps(kernel) && !target.overlaps(boot.blob)
        for r in boot.platform.reservedRanges where target.overlaps(r) { clear = false }
        if let initrd, target.overlaps(initrd) { clear = false }
        guard clear, inOneBank(boot.platform, target.base.raw, bytes: target.size) else {
            stop("host: no room for the host's device tree above the carve-out")
        }
        var edits = HostDeviceTreeEdits(controlDevice: controlPage, dmaTestRegion: dmaTest)
        // The whole carve-out, the control page included: that page is in
        // /memory's range too, and the host must not take it for RAM.
        edits.reserveForHypervisor(carveOut)
        let buffer = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: UInt(target.base.raw)),
                                                   count: Int(capacity))
        let size: Int
        do throws(FDTWriteError) {
            size = try HostDeviceTree.derive(from: boot.tree, edits: edits, into: buffer)
        } catch {
            stop("host: deriving the host's device tree failed")
        }
        Console.say("host: device tree at %x + %x (SMMU and iommu-map dropped; hypervisor, DMA test region %x and control page %x added)\n",
                    target.base.raw, UInt64(truncatingIfNeeded: size), dmaTest.base.raw, controlPage.base.raw)
        // The kernel reads it with its MMU and caches off (booting.rst): the
        // lines this CPU wrote through the EL2 map go to the point of coherency
        // (BoardCache's DC CVAC loop, then DSB SY).
        var cache = BoardCache()
        cache.clean(target.base, bytes: UInt64(size))
        cache.synchronize()
        return target.base.raw
    }

    /// MAIR/TCR/TTBR0/SCTLR of EL2 for the CPUs the host starts (Boot/host.S
    /// loads them with the MMU off, so they are cleaned to the point of coherency).
    static func publishEL2Regime() {
        let regime = arch_el2_regime()!
        regime[0] = arch_read_mair_el2()
        regime[1] = arch_read_tcr_el2()
        regime[2] = arch_read_ttbr0_el2()
        regime[3] = arch_read_sctlr_el2()
        arch_dsb_sy()
        arch_dc_cvac(UInt64(UInt(bitPattern: regime)))
        arch_dsb_sy()
    }

    /// This CPU's EL2 state for the host, then the eret into it.
    static func enter(cpu: Int, entry: UInt64, x0: UInt64) -> Never {
        guard let el2 = registers, let p2m else { stop("host: entered before the host was built") }
        arch_write_tpidr_el2(UInt64(cpu))
        arch_write_cptr_el2(el2.cptr)
        arch_write_cnthctl_el2(el2.cnthctl)
        arch_write_cntvoff_el2(el2.cntvoff)
        arch_write_vpidr_el2(arch_read_midr_el1())
        arch_write_vmpidr_el2(arch_read_mpidr_el1())
        arch_write_hstr_el2(el2.hstr)
        arch_write_mdcr_el2(el2.mdcr)
        if let sre = el2.iccSRE {
            arch_write_icc_sre_el2(sre)
            arch_isb()
            arch_write_ich_hcr_el2(0)
        }
        arch_write_sctlr_el1(el2.sctlrEL1)
        var entryRegisters = BoardEntryRegisters()
        LowerELEntry.prepare(&entryRegisters, vtcr: p2m.pointee.table.vtcr, vttbr: p2m.pointee.table.vttbr,
                             hcr: el2.hcr)
        guard let stackTop = EL2Protection.cpuStacks?.stackTop(cpu: cpu) else { stop("host: no EL2 stack for this CPU") }
        arch_write_spsr_el2(el2.spsr)
        Power.lowerELEntered = true
        hv_host_enter(entry, x0, stackTop)
    }

    /// Ends the host mode's set-up with `message` (never one character
    /// long: it goes on as its address alone, as `Console.put` explains).
    @_transparent
    static func stop(_ message: StaticString) -> Never {
        stopText(message.utf8Start)
    }

    @inline(never)
    static func stopText(_ message: UnsafePointer<UInt8>) -> Never {
        hvConsoleLine(message)
        Checks.failed += 1
        finish()
    }
}
