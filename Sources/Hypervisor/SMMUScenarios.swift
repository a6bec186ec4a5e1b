import AArch64
import Translation
import Ownership
import Platform
import SMMUv3
import ArchC

typealias BoardSMMU = SMMU<MMIORegisterBlock, IdentityMemory, BoardCache>
typealias BoardSMMUHandle = SMMUHandle<MMIORegisterBlock, IdentityMemory, BoardCache>
typealias BoardHooks = SMMUDomainHooks<MMIORegisterBlock, IdentityMemory, BoardCache, FramePool>
enum BoardDomain: BoardP2MEnvironment {
    typealias IOMMU = BoardDomainHooks
    typealias Listener = FrameEntryListener
    typealias Observer = BoardDomainHooks
    typealias SessionGuest = BoardMirrorSink
}
typealias BoardMirrorSink = MirrorSink<MMIORegisterBlock, IdentityMemory, BoardCache, FramePool>

/// The stage-1 mirror's commits run through the board P2M's session type
/// (`P2MGuestSession`): the image holds the engine's commit half once, the
/// P2M's, where the mirror's own sink type made a second copy (about 3.9 KB).
enum BoardMirrorCommit: Stage1MirrorCommit {
    static func commitMap(_ engine: TableEngine, _ plan: consuming MapPlan, memory: IdentityMemory,
                          sink: inout BoardMirrorSink) {
        P2MGuestSession<BoardDomain, FrameReferenceReleaser>.commitMapFromRoot(engine, plan, memory: memory,
                                                                               guest: &sink)
    }
    static func commitUnmap(_ engine: TableEngine, _ plan: consuming RangePlan, memory: IdentityMemory,
                            sink: inout BoardMirrorSink) {
        P2MGuestSession<BoardDomain, FrameReferenceReleaser>.commitUnmapFromRoot(engine, plan, memory: memory,
                                                                                 guest: &sink)
    }
}
/// Every board P2M (the SMMU domain, the Linux host's stage 2, the stage-2
/// walker scenario, the guest, and the ownership layer's) has this one type,
/// and every board flush batch is `FlushBatch<FrameReferenceReleaser>`: each
/// P2M environment and releaser is a full copy of the table engine in the image
/// (about 8 KiB each), so a P2M no SMMU shares has no hooks (`BoardDomainHooks(nil)`)
/// and one without a frame table a `FrameEntryListener()` and batches whose
/// `FrameReferenceReleaser()` traps on a held reference, rather than types of their own.
typealias BoardP2M = P2M<BoardDomain>

/// The board's one flush batch type.
typealias BoardBatch = FlushBatch<FrameReferenceReleaser>

extension FlushBatch where Releaser == FrameReferenceReleaser {
    /// An empty batch: one call at each of the board's edit sites instead of
    /// the releaser's and the batch's initialisers.
    @inline(never)
    static func make() -> BoardBatch { BoardBatch(releaser: FrameReferenceReleaser()) }
}

/// A board P2M's IOMMU invalidator and change observer: the SMMU domain's
/// hooks, or none for a P2M no SMMU shares (then only the CPU invalidates, and
/// `commitCPU` cannot fail).
struct BoardDomainHooks: IOMMUInvalidator, P2MChangeObserver {
    let hooks: BoardHooks?

    init(_ hooks: BoardHooks?) { self.hooks = hooks }

    func prepare(_ change: P2MPlannedChange) -> Bool { hooks?.prepare(change) ?? true }
    func apply(_ change: P2MChange) { hooks?.apply(change, commit: BoardMirrorCommit.self) }
    func invalidate(vmid: UInt16, _ gfn: GFN, count: UInt64) { hooks?.invalidate(vmid: vmid, gfn, count: count) }
    func invalidateAll(vmid: UInt16) { hooks?.invalidateAll(vmid: vmid) }
    var hasPendingInvalidations: Bool { hooks?.hasPendingInvalidations ?? false }
    func synchronize() throws(IOMMUSyncError) { try hooks?.synchronize() }
}

extension P2M where Environment == BoardDomain {
    /// A P2M the SMMU behind `hooks` shares (stage 2) or mirrors (stage 1):
    /// its invalidations and changes go there too. Without hooks, a board P2M
    /// no SMMU shares (one initialiser for both kinds).
    init(configuration: P2MConfiguration, pool: FramePool, hooks: BoardHooks? = nil) throws(P2MError) {
        try self.init(configuration: configuration, memory: IdentityMemory(), pool: pool, tlb: BoardTLB(),
                      iommu: BoardDomainHooks(hooks), listener: FrameEntryListener(), observer: BoardDomainHooks(hooks))
    }

    /// `commit` for a P2M no SMMU shares: only the CPU invalidates, and a CPU
    /// invalidation always completes (DSB ISH), so this cannot fail.
    @discardableResult
    mutating func commitCPU(_ batch: inout FlushBatch<FrameReferenceReleaser>,
                            holding lock: borrowing P2MLockHeld) -> FlushStatistics {
        precondition(iommu.hooks == nil, "commitCPU on a P2M an SMMU shares")
        do throws(P2MFlushError) {
            return try commit(&batch, holding: lock)
        } catch {
            preconditionFailure("a P2M without IOMMU hooks never fails to synchronize")
        }
    }
}

/// The SMMUv3 on the board: probe, bring-up, and a real DMA through it.
///
/// One domain (VMID 1) gets a P2M; the SMMU either shares it (stage 2) or
/// keeps a stage-1 mirror of it (stage 1 only, Debian's QEMU 7.2). QEMU's
/// `edu` device, attached to that domain by its StreamID, copies data from an
/// IOVA into its buffer and back; after the page is unmapped and the flush
/// batch committed, the same DMA must fault with F_TRANSLATION.
///
/// The scenario's steps with one caller each are transparent: with the
/// board's inline threshold of 0 each was a function of its own (prologue,
/// argument moves, epilogue). `makeDomain` and `dmaScenario` stay out of line:
/// inlined, the domain's failure exits each grew their own cleanup.
enum Board {
    /// edu masks DMA addresses to 28 bits: the IOVA window lies below 256 MiB
    /// while its frames sit wherever the frame allocator put them.
    static let iova = IOVA(0x0010_0000)
    static let vmid: UInt16 = 1
    static let asid: UInt16 = 1
    static let tablePoolFrames = 64
    static let pattern: UInt64 = 0x5EED_F00D_0000_0000
    static let patternWords = 8
    static let returnOffset: UInt64 = 0x800

    /// Runs the checks on the SMMU the edu device's `iommu-map` entry names
    /// (the first one up when edu has no entry); `ready` are the SMMUs
    /// `SMMUSetup` brought up before PCI enumeration.
    static func runSMMUScenarios(ready: FixedList<8, ReadySMMU>, platform: PlatformDescription, edu: PCIDevice?,
                                 cpu: CPUIDRegisters, frames: inout FrameAllocator) {
        guard !platform.smmus.isEmpty else {
            Console.line("smmu: the DTB describes no arm,smmu-v3: the SMMU checks do not apply")
            return
        }
        guard !ready.isEmpty else {
            // Each was reported by SMMUSetup (nothing answered, or ID registers
            // this driver cannot drive): a described part the machine lacks is
            // skipped, not a failure of the checks that do apply.
            Console.line("smmu: no arm,smmu-v3 the DTB describes is usable: the SMMU checks are skipped")
            return
        }
        Checks.expect(true, "SMMU ID registers decoded and supported")
        var index = 0
        if let phandle = edu?.iommuPhandle {
            var i = 0
            while i < ready.count {
                if ready[i].phandle == phandle {
                    index = i
                    break
                }
                i &+= 1
            }
        }
        let chosen = ready[index]
        Console.line(chosen.mode == .stage2 ? "smmu: mode: stage 2 shares the P2M"
                                            : "smmu: mode: stage-1 IOMMU table mirrored from the P2M")
        let handle = chosen.handle
        Checks.expect(handle.smmu.checkGlobalErrors().isClean,
                      "SMMU brought up: stream table, queues, invalidate-all + CMD_SYNC, SMMUEN, no GERROR")
        commandErrorRecovery(&handle.smmu)

        guard let edu else {
            Console.line("smmu: no QEMU edu device to issue DMA with (-device edu): the DMA checks do not apply")
            return
        }
        guard let sid = edu.streamID, edu.iommuPhandle == nil || edu.iommuPhandle == chosen.phandle else {
            Checks.expect(false, "the edu device's requester ID maps to this SMMU through iommu-map")
            return
        }
        dmaScenario(handle: handle, features: handle.smmu.features, edu: edu, sid: sid, platform: platform, cpu: cpu,
                    frames: &frames)
    }

    /// Opcode 0x07 is not a command (HARDWARE.md trap 4: QEMU's CFGI_ALL enum
    /// value, which the SMMU rejects). The queue must stop with CERROR_ILL, the
    /// driver must report that very command, replace it and carry on.
    static let illegalOpcode: UInt64 = 0x07

    @_transparent
    static func commandErrorRecovery(_ smmu: inout BoardSMMU) {
        let bad = Command(dw0: illegalOpcode, dw1: 0)
        var reported = false
        do throws(CommandQueueError) {
            try smmu.push(bad)
            try smmu.sync()
        } catch {
            if case .commandRejected(let rejected) = error, rejected.command == bad, rejected.reason == .illegal {
                reported = true
                Console.say("smmu: command queue stopped at index %d with CERROR_ILL; the command was replaced by CMD_SYNC\n",
                            UInt64(rejected.index))
            }
        }
        var resumed = true
        do throws(CommandQueueError) {
            try smmu.push(.cfgiAll())
            try smmu.sync()
        } catch { resumed = false }
        Checks.expect(reported && resumed && smmu.checkGlobalErrors().isClean,
                      "SMMU command queue: an illegal command is reported (CERROR_ILL), replaced, and the queue resumes")
    }

    /// Commits a flush batch. A commit the SMMU did not confirm keeps every
    /// page the batch holds (XSA-346); the global errors are looked at and the
    /// commit retried once. A batch that still owes work cannot be dropped,
    /// so a second failure ends the run.
    @discardableResult
    static func commit(_ p2m: inout BoardP2M, _ batch: inout FlushBatch<FrameReferenceReleaser>,
                       _ handle: BoardSMMUHandle, holding lock: borrowing P2MLockHeld) -> FlushStatistics {
        do throws(P2MFlushError) {
            return try p2m.commit(&batch, holding: lock)
        } catch {
            Console.line("smmu: a flush batch was not confirmed by the SMMU; retrying after GERROR recovery")
            _ = handle.smmu.checkGlobalErrors()
        }
        do throws(P2MFlushError) {
            return try p2m.commit(&batch, holding: lock)
        } catch {
            Checks.expect(false, "the SMMU confirmed the flush batch's invalidations (CMD_SYNC)")
            finish()
        }
    }

    @_transparent
    static func printFeatures(_ f: SMMUFeatures) {
        Console.say("smmu: IDR0 %x IDR1 %x IDR3 %x IDR5 %x\n",
                    UInt64(f.idr0), UInt64(f.idr1), UInt64(f.idr3), UInt64(f.idr5))
        Console.say("smmu: stage 1: %y, stage 2: %y, coherent walks: %y, stream table: ",
                    Console.flag(f.stage1), Console.flag(f.stage2), Console.flag(f.coherentAccess))
        Console.put(f.twoLevelStreamTable ? "linear and 2-level" : "linear only")
        Console.say(", RIL: %y, VMID16: %y, ASID16: %y\n",
                    Console.flag(f.rangeInvalidation), Console.flag(f.vmid16), Console.flag(f.asid16))
        Console.say("smmu: OAS %d bits, StreamID bits %d, SubstreamID bits %d, cmdq 2^%d, evtq 2^%d",
                    UInt64(f.outputAddressBits), UInt64(f.streamIDBits), UInt64(f.substreamIDBits),
                    UInt64(f.commandQueueLog2Max), UInt64(f.eventQueueLog2Max))
        Console.say(" entries, MSI: %y, SEV: %y, EL2 streams: %y\n", Console.flag(f.msi), Console.flag(f.sev),
                    Console.flag(f.hyp))
    }

    /// One drain of an SMMU's event queue, counted every way the board's
    /// checks ask (one closure: each closure literal passed to `drainEvents`
    /// is a copy of the drain in the image).
    struct EventTally {
        /// `EventDrainResult.count`, and the records the closure was given.
        var drained = 0
        var records = 0
        /// C_BAD_STE or C_BAD_STREAMID records for `sid`, and the first of them.
        var badConfig = 0
        var firstBadConfig: SMMUEvent?
        /// F_TRANSLATION records, the first of them, and those for `sid` in the 4 KiB page at `page`.
        var translationFaults = 0
        var firstTranslation: SMMUEvent?
        var translationFaultsAtPage = 0

        /// Built in place: the closure counts into `self` (a local tally
        /// copied into `self` at the end was two `memcpy` calls on the board),
        /// and matches the kind by case (no `Kind ==` calls).
        init(_ handle: BoardSMMUHandle, sid: UInt32? = nil, page: UInt64 = 0) {
            drained = handle.smmu.drainEvents { event in
                records += 1
                let forSID = sid != nil && event.stream.raw == sid
                switch event.kind {
                case .badSTE, .badStreamID:
                    guard forSID else { return }
                    badConfig += 1
                    if firstBadConfig == nil { firstBadConfig = event }
                case .translation:
                    translationFaults += 1
                    if firstTranslation == nil { firstTranslation = event }
                    if forSID && event.inputAddress.raw & ~PageSize.offsetMask4K == page {
                        translationFaultsAtPage += 1
                    }
                default:
                    return
                }
            }.count
        }
    }

    /// Real DMA through the SMMU: edu's BAR, a domain whose P2M the SMMU uses,
    /// one page mapped and edu attached, a round trip that must land on that
    /// page, then an unmap after which the same DMA must fault.
    static func dmaScenario(handle: BoardSMMUHandle, features: SMMUFeatures, edu: PCIDevice, sid: UInt32,
                            platform: PlatformDescription, cpu: CPUIDRegisters, frames: inout FrameAllocator) {
        guard let device = assignBAR(edu, platform) else { return }
        let configuration = P2MConfiguration(vmid: vmid, cpu: cpu, sharedWith: features.outputAddressRange)
        guard var domain = makeDomain(configuration, handle, &frames) else { return }
        dmaBeforeAttach(device, handle, sid: sid, target: domain.backing)
        mapAndAttach(&domain, handle, sid: sid, &frames)
        Checks.expect(roundTrip(device, domain.backing),
                      "DMA through the SMMU: edu read the IOVA and wrote it back, data lands on the mapped frame")
        Checks.expect(EventTally(handle).records == 0, "no SMMU events while the page was mapped")
        unmapAndRetry(&domain, device, handle)
        expectTranslationFaults(handle, sid: sid)
        Checks.expect(handle.smmu.checkGlobalErrors().isClean, "no SMMU global errors after the scenario")
    }

    /// The test domain: its P2M, the IOMMU hooks that keep the SMMU in step
    /// with it, and the frame its one IOVA page maps to.
    struct Domain: ~Copyable {
        var p2m: BoardP2M
        /// Held for every edit of `p2m` (the P2M's API demands the token).
        let lock = P2MLock()
        let hooks: BoardHooks
        let backing: MFN
        var gfn: GFN { iova.asIPA.frame }
    }

    /// edu's BAR0 from the 32-bit window the DTB gives, then memory space and bus mastering.
    @_transparent
    static func assignBAR(_ edu: PCIDevice, _ platform: PlatformDescription) -> EduDevice? {
        guard let bridge = platform.pciHostBridge, let window32 = bridge.memory32Window else {
            Checks.expect(false, "a 32-bit PCI memory window in the DTB for edu's BAR0")
            return nil
        }
        let ecam = PCIBus.ecam(bridge)
        var window = PCIWindowAllocator(window: window32)
        let bar: AssignedBAR
        do throws(PCIError) {
            guard let assigned = try ecam.assignMemoryBAR(0, of: edu.function.address, from: &window) else {
                Checks.expect(false, "edu BAR0 present")
                return nil
            }
            bar = assigned
        } catch {
            Checks.expect(false, "edu BAR0 sized and assigned")
            return nil
        }
        ecam.enableMemoryAndBusMaster(edu.function.address)
        let device = EduDevice(registers: MMIORegisterBlock(base: bar.cpuAddress.raw))
        Console.say("edu: BAR0 at %x, identification %x\n", bar.cpuAddress.raw, UInt64(device.identificationValue))
        Checks.expect(device.identificationValue == EduDevice.expectedIdentification,
                      "edu BAR0 assigned from the DTB's window and answering")
        return device
    }

    /// VMID 1 with its own pools of table frames (the P2M's and the mirror's) and one frame to DMA into.
    static func makeDomain(_ configuration: P2MConfiguration, _ handle: BoardSMMUHandle,
                           _ frames: inout FrameAllocator) -> Domain? {
        let p2mPool: FramePool
        let mirrorPool: FramePool
        let backing: MFN
        do throws(FrameAllocatorError) {
            p2mPool = try FramePool(frames: tablePoolFrames, from: &frames)
            mirrorPool = try FramePool(frames: tablePoolFrames, from: &frames)
            backing = try frames.allocate()
        } catch {
            Checks.expect(false, "frames for the domain's tables and DMA buffer")
            return nil
        }
        let hooks: BoardHooks
        do throws(Stage1MirrorError) {
            hooks = try BoardHooks.make(handle: handle, asid: asid, ipaBits: configuration.ipaBits, pool: mirrorPool,
                                        allocator: &frames)
        } catch {
            Checks.expect(false, "the domain's IOMMU hooks (stage-1 mirror or stage-2 sharing)")
            return nil
        }
        let p2m: BoardP2M
        do throws(P2MError) {
            p2m = try BoardP2M(configuration: configuration, pool: p2mPool, hooks: hooks)
        } catch {
            Checks.expect(false, "P2M for the test domain")
            return nil
        }
        Console.say("domain: VMID 1, %d-bit IPA, VTCR_EL2 %x, VTTBR_EL2 %x\n",
                    UInt64(configuration.ipaBits), p2m.vtcr.raw, p2m.vttbr.raw)
        return Domain(p2m: p2m, hooks: hooks, backing: backing)
    }

    /// edu has bus mastering but its StreamID no STE yet (SMMUSetup left
    /// every one invalid): a DMA write must be aborted by the SMMU and reach
    /// no memory. The SMMU records C_BAD_STREAMID (IHI 0070 7.3.3) where the
    /// StreamID's level-1 descriptor has Span 0 (no level-2 table yet, as
    /// QEMU 7.2 reports it here) or the StreamID lies past the table, and
    /// C_BAD_STE (7.3.5) for an STE with V = 0. edu itself reports
    /// nothing (it ignores DMA errors), so the event queue and the frame the
    /// IOVA will map to are the evidence. With the SMMU bypassing, the write
    /// would go to PA = IOVA and record no event.
    @_transparent
    static func dmaBeforeAttach(_ device: EduDevice, _ handle: BoardSMMUHandle, sid: UInt32, target: MFN) {
        let earlier = EventTally(handle).records
        fill(target.address, pattern, numbered: true)
        let completed = device.dma(iova: iova, bufferOffset: 0, bytes: UInt64(patternWords * 8), toRAM: true)
        let unchanged = holds(target.address, pattern, numbered: true)
        let tally = EventTally(handle, sid: sid)
        if let event = tally.firstBadConfig {
            Console.put(event.kind == .badSTE ? "smmu: event C_BAD_STE" : "smmu: event C_BAD_STREAMID")
            Console.say(" streamid %x for edu's DMA before attach (%d events drained)\n", UInt64(event.stream.raw),
                        UInt64(tally.drained))
        }
        let other = tally.records - tally.badConfig
        Checks.expect(earlier == 0 && completed && unchanged && tally.badConfig > 0 && other == 0,
                      "DMA before attach: the SMMU aborts edu's write (C_BAD_STREAMID / C_BAD_STE for its StreamID) and memory is unchanged")
    }

    /// One page of the IOVA window onto the backing frame, then edu's StreamID attached.
    @_transparent
    static func mapAndAttach(_ domain: inout Domain, _ handle: BoardSMMUHandle, sid: UInt32,
                             _ frames: inout FrameAllocator) {
        let edit = editPage(&domain, map: true, handle)
        Checks.expect(edit.accepted && edit.now == domain.backing, "P2M maps the IOVA window onto a frame from the allocator")
        var attached = true
        do throws(AttachError) {
            try handle.smmu.attach(StreamID(sid), to: domain.hooks.domain(vttbr: domain.p2m.vttbr, vtcr: domain.p2m.vtcr),
                                   allocator: &frames)
        } catch {
            attached = false
        }
        Checks.expect(attached, "edu's StreamID attached to the domain (STE published, CFGI_STE + CMD_SYNC)")
        Console.say("dma: IOVA %x -> PA %x for streamid %x\n", iova.raw, domain.backing.address.raw, UInt64(sid))
    }

    /// The domain's one IOVA page mapped onto its backing frame (`map`) or
    /// unmapped under the domain's lock, and the batch committed: whether the
    /// P2M accepted the edit, the frame it then maps there (looked up before
    /// the release: after it, the lookup ran on a 400-byte copy of the P2M),
    /// and the commit's CPU TLBI count. One copy of the lock, batch and commit
    /// sequence for mapAndAttach and unmapAndRetry.
    @inline(never)
    static func editPage(_ domain: inout Domain, map: Bool, _ handle: BoardSMMUHandle)
        -> (accepted: Bool, now: MFN?, tlbiOperations: Int) {
        let held = domain.lock.acquire()
        var batch = BoardBatch.make()
        var accepted = true
        do throws(P2MError) {
            if map {
                try domain.p2m.map(domain.gfn, to: domain.backing, count: 1, as: .ramRW, flushing: &batch, holding: held)
            } else {
                try domain.p2m.unmap(domain.gfn, count: 1, flushing: &batch, holding: held)
            }
        } catch {
            accepted = false
        }
        let stats = commit(&domain.p2m, &batch, handle, holding: held)
        let now = domain.p2m.lookup(domain.gfn)?.mfn
        domain.lock.release(held)
        return (accepted, now, stats.tlbiOperations)
    }

    /// RAM -> edu's buffer -> RAM at another offset of the same page: true when
    /// both transfers completed and the pattern came back.
    @_transparent
    static func roundTrip(_ device: EduDevice, _ backing: MFN) -> Bool {
        fill(backing.address, pattern, numbered: true)
        fill(backing.address.adding(returnOffset), 0, numbered: false)
        let same = dmaThereAndBack(device)
        return holds(backing.address.adding(returnOffset), pattern, numbered: true) && same
    }

    /// Unmap, commit (CPU TLBI + SMMU invalidation + CMD_SYNC), and try the
    /// same DMA again: the write back must not reach the old frame.
    @_transparent
    static func unmapAndRetry(_ domain: inout Domain, _ device: EduDevice, _ handle: BoardSMMUHandle) {
        let edit = editPage(&domain, map: false, handle)
        Checks.expect(edit.accepted && edit.now == nil && handle.takeInvalidationFailure() == nil,
                      "unmap committed: CPU and SMMU invalidated and synchronised")
        Console.say("unmap: %d CPU TLB invalidation(s) for the batch\n", UInt64(edit.tlbiOperations))
        let returned = domain.backing.address.adding(returnOffset)
        fill(returned, pattern, numbered: false)
        _ = dmaThereAndBack(device)
        Checks.expect(holds(returned, pattern, numbered: false), "after unmap a DMA write no longer reaches the old frame")
    }

    /// edu reads `patternWords` words at the IOVA into its buffer, then writes
    /// them back at `returnOffset`.
    static func dmaThereAndBack(_ device: EduDevice) -> Bool {
        let bytes = UInt64(patternWords * 8)
        let there = device.dma(iova: iova, bufferOffset: 0, bytes: bytes, toRAM: false)
        let back = device.dma(iova: iova.adding(returnOffset), bufferOffset: 0, bytes: bytes, toRAM: true)
        return there && back
    }

    /// Word `i` of the `patternWords` at `base`: `value | i` when numbered, else `value`.
    @_transparent
    static func fill(_ base: PhysAddr, _ value: UInt64, numbered: Bool) {
        _ = pattern(base, value, numbered: numbered, store: true)
    }

    /// Whether the `patternWords` at `base` are what `fill` with the same arguments wrote.
    @_transparent
    static func holds(_ base: PhysAddr, _ value: UInt64, numbered: Bool) -> Bool {
        pattern(base, value, numbered: numbered, store: false)
    }

    /// `fill` (`store`) or `holds`: one loop for both, over word indices
    /// (no range iterator, no offset helper).
    @inline(never)
    static func pattern(_ base: PhysAddr, _ value: UInt64, numbered: Bool, store: Bool) -> Bool {
        var i: UInt64 = 0
        while i < UInt64(patternWords) {
            let address = base.adding(i &* 8)
            let word = numbered ? value | i : value
            if store {
                IdentityMemory().store64(address, word)
            } else if IdentityMemory().load64(address) != word {
                return false
            }
            i &+= 1
        }
        return true
    }

    /// The DMA after the unmap must have faulted with F_TRANSLATION, for
    /// edu's StreamID at the unmapped IOVA, and for nothing else.
    @_transparent
    static func expectTranslationFaults(_ handle: BoardSMMUHandle, sid: UInt32) {
        let tally = EventTally(handle, sid: sid, page: iova.raw)
        if let event = tally.firstTranslation {
            Console.say("smmu: event F_TRANSLATION streamid %x iova %x",
                        UInt64(event.stream.raw), event.inputAddress.raw)
            Console.put(event.isRead ? " read" : " write")
            Console.put(event.isStage2 ? " stage 2" : " stage 1")
            Console.say(" (%d events drained)\n", UInt64(tally.drained))
        }
        Checks.expect(tally.translationFaults > 0 && tally.translationFaultsAtPage == tally.translationFaults,
                      "the DMA after unmap faulted with F_TRANSLATION for edu's StreamID at the unmapped IOVA")
    }
}
