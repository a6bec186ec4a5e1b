import AArch64

/// The SMMUv3 driver: one instance per SMMU.
///
/// Registers go through `R` (32-bit accesses for 32-bit registers, 64-bit only
/// for the BASE registers), memory through `M`, cache maintenance through `C`
/// (used for every structure the SMMU reads when it does not snoop, and as the
/// DSB ordering memory writes before a register write in every case).
public struct SMMU<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance>: ~Copyable {
    public let registers: R
    public let memory: M
    public var cache: C
    public let features: SMMUFeatures
    public let mode: TranslationMode
    /// COHACC and `dma-coherent` both: the SMMU snoops the CPU caches.
    public let coherent: Bool
    public internal(set) var commandQueue: CommandQueue
    public internal(set) var eventQueue: EventQueue
    public let streamTable: StreamTable
    public let pollLimit: Int
    /// Streams with a translating STE, sorted by StreamID.
    public internal(set) var attachments = SMMUAttachments()
    /// Released CD slots, most recent first: the head here, each slot's dw1
    /// holding the next one's address | 1 (0 ends the list). A released CD
    /// has V=0 and no STE points at it, so the SMMU reads none of it. A list
    /// in the slots themselves, not an array: no array growth code for it.
    var releasedContextDescriptors: PhysAddr?
    /// The next never-used slot of the newest CD frame (nil: none left).
    var freshContextDescriptor: PhysAddr?
    /// GERROR.SFM_ERR was seen: acknowledging it does not leave service failure
    /// mode (IHI 0070 6.3.19), so it is remembered here.
    public internal(set) var serviceFailureSeen = false

    /// Read and check the ID registers without touching anything else.
    @_transparent public static func probe(_ registers: R) throws(SMMUProbeError) -> SMMUFeatures {
        try SMMUFeatures.probe(registers)
    }

    /// Bring the SMMU up in the architected order (IHI 0070 6.3.9, 3.5; Linux
    /// `arm_smmu_device_reset`): GBPA abort, disable, CR1/CR2, stream table,
    /// command queue, invalidate everything, event queue, SMMUEN. Every CR0
    /// change waits for CR0ACK. On return every StreamID is V=0 (recorded as
    /// C_BAD_STE, aborted) until attached.
    ///
    /// Memory is allocated before any register is written; if allocation
    /// fails, what was taken is given back and the SMMU is untouched. A
    /// timeout later leaves the frames with the SMMU (it may still read them).
    public static func bringUp<A: ContiguousFrameAllocator>(
        registers: R, memory: M, cache: C, allocator: inout A,
        configuration: SMMUConfiguration = SMMUConfiguration()
    ) throws(BringUpError) -> SMMU {
        let features: SMMUFeatures
        do { features = try Self.probe(registers) } catch { throw .refused(error) }
        let coherent = features.coherentAccess && configuration.dmaCoherent
        let mode = configuration.mode ?? features.preferredMode(coherent: coherent)
        switch mode {
        case .stage1 where !features.stage1: throw .refused(.noTranslationStage)
        case .stage2 where !features.stage2: throw .refused(.noTranslationStage)
        default: break
        }
        let cmdLog2 = min(configuration.commandQueueLog2Entries, UInt32(features.commandQueueLog2Max))
        let evtLog2 = min(configuration.eventQueueLog2Entries, UInt32(features.eventQueueLog2Max))
        let sidBits = min(features.streamIDBits, configuration.maximumStreamIDBits)
        let format: StreamTable.Format =
            sidBits > configuration.linearStreamTableMaximumBits && features.twoLevelStreamTable
                && sidBits > StreamTable.defaultSplit
            ? .twoLevel(split: StreamTable.defaultSplit) : .linear

        // Allocate everything first.
        let tableFrames = StreamTable.frames(forBytes: StreamTable.baseBytes(format: format, streamIDBits: sidBits))
        let cmdFrames = StreamTable.frames(forBytes: Command.bytes << UInt64(cmdLog2))
        let evtFrames = StreamTable.frames(forBytes: SMMUEvent.bytes << UInt64(evtLog2))
        guard let table = allocator.allocateZeroed(tableFrames, memory: memory) else {
            throw .outOfMemory(frames: tableFrames)
        }
        guard let cmdq = allocator.allocateZeroed(cmdFrames, memory: memory) else {
            allocator.freeContiguous(table, count: tableFrames)
            throw .outOfMemory(frames: cmdFrames)
        }
        guard let evtq = allocator.allocateZeroed(evtFrames, memory: memory) else {
            allocator.freeContiguous(table, count: tableFrames)
            allocator.freeContiguous(cmdq, count: cmdFrames)
            throw .outOfMemory(frames: evtFrames)
        }

        var smmu = SMMU(registers: registers, memory: memory, cache: cache, features: features, mode: mode,
                        coherent: coherent, pollLimit: configuration.pollLimit,
                        streamTable: StreamTable(format: format, streamIDBits: sidBits, base: table.address,
                                                 baseFrames: tableFrames),
                        commandQueue: CommandQueue(base: cmdq.address, log2Entries: cmdLog2,
                                                   pollLimit: configuration.pollLimit),
                        eventQueue: EventQueue(base: evtq.address, log2Entries: evtLog2))
        try smmu.enable(tableFrames: tableFrames, commandQueueLog2: cmdLog2, eventQueueLog2: evtLog2,
                        eventFrames: evtFrames)
        return smmu
    }

    init(registers: R, memory: M, cache: C, features: SMMUFeatures, mode: TranslationMode, coherent: Bool,
         pollLimit: Int, streamTable: StreamTable, commandQueue: CommandQueue, eventQueue: EventQueue) {
        self.registers = registers
        self.memory = memory
        self.cache = cache
        self.features = features
        self.mode = mode
        self.coherent = coherent
        self.pollLimit = pollLimit
        self.streamTable = streamTable
        self.commandQueue = commandQueue
        self.eventQueue = eventQueue
    }

    /// Steps 1-8 of the bring-up, on a fully built driver value. Transparent:
    /// its one caller is `bringUp`.
    @_transparent mutating func enable(tableFrames: Int, commandQueueLog2 cmdLog2: UInt32, eventQueueLog2 evtLog2: UInt32,
                         eventFrames evtFrames: Int) throws(BringUpError) {
        let table = streamTable.base.frame
        let cmdq = commandQueue.base.frame
        let evtq = eventQueue.base.frame
        // The zeroed stream table (every STE or L1 descriptor invalid) must be
        // visible to a non-snooping SMMU before STRTAB_BASE points at it.
        if !coherent {
            cache.clean(table.address, bytes: UInt64(tableFrames) << PageSize.shift4K)
            cache.clean(evtq.address, bytes: UInt64(evtFrames) << PageSize.shift4K)
        }
        cache.synchronize()

        // 1. Abort incoming transactions while the SMMU is disabled, then disable.
        try updateGBPA(GBPA.abort)
        try writeCR0(0)
        // 2. Attributes of the SMMU's own accesses; record bad StreamIDs,
        //    ignore broadcast TLBI.
        registers.write32(SMMURegister.cr1, CR1.value(coherent: coherent))
        registers.write32(SMMURegister.cr2, CR2.recordInvalidStreamID | CR2.privateTLBMaintenance)
        // Start with no global error pending from a previous owner.
        registers.write32(SMMURegister.gerrorn, registers.read32(SMMURegister.gerror))
        // 3. Stream table.
        registers.write64(SMMURegister.strtabBase, streamTable.baseRegister)
        registers.write32(SMMURegister.strtabBaseCfg, streamTable.baseConfig)
        // 4. Command queue.
        registers.write64(SMMURegister.cmdqBase, QueueBase.value(base: cmdq.address, log2Entries: cmdLog2))
        registers.write32(SMMURegister.cmdqProd, 0)
        registers.write32(SMMURegister.cmdqCons, 0)
        try writeCR0(CR0.commandQueueEnable)
        // 5. Forget anything cached from before.
        do {
            try push(.cfgiAll())
            if features.hyp { try push(.tlbiEL2All()) }
            try push(.tlbiNSNHAll())
            try sync()
        } catch {
            throw .commandQueue(error)
        }
        // 6. Event queue (its index registers are in page 1).
        registers.write64(SMMURegister.evtqBase, QueueBase.value(base: evtq.address, log2Entries: evtLog2))
        registers.write32(SMMURegister.evtqProd, 0)
        registers.write32(SMMURegister.evtqCons, 0)
        try writeCR0(CR0.commandQueueEnable | CR0.eventQueueEnable)
        // 7. Interrupts stay off: the driver polls (wired SPIs are the board's choice).
        registers.write32(SMMURegister.irqCtrl, 0)
        if let last = pollRegister(SMMURegister.irqCtrlAck, until: 0) {
            throw .irqCtrlAckTimeout(expected: 0, last: last)
        }
        // 8. Translate.
        try writeCR0(CR0.commandQueueEnable | CR0.eventQueueEnable | CR0.smmuEnable)
    }

    // MARK: Register helpers

    /// Read the register at `offset` until its `mask` bits equal `expected`, at
    /// most `pollLimit` times more; nil when they did, else the last value read
    /// (for the caller's timeout error: a closure parameter here would put one
    /// copy of this loop in the image per caller).
    mutating func pollRegister(_ offset: Int, until expected: UInt32, mask: UInt32 = 0xFFFF_FFFF) -> UInt32? {
        var last = registers.read32(offset)
        var polls = 0
        while last & mask != expected {
            polls += 1
            if polls > pollLimit { return last }
            last = registers.read32(offset)
        }
        return nil
    }

    /// Write CR0 and wait for CR0ACK to show the same enables.
    mutating func writeCR0(_ value: UInt32) throws(BringUpError) {
        cache.synchronize()
        registers.write32(SMMURegister.cr0, value)
        if let last = pollRegister(SMMURegister.cr0ack, until: value) {
            throw .cr0AckTimeout(expected: value, last: last)
        }
    }

    /// GBPA: wait for any update in flight, write the value with UPDATE, wait
    /// for UPDATE to clear (IHI 0070 6.3.14: a write while UPDATE is 1 is lost).
    @_transparent mutating func updateGBPA(_ value: UInt32) throws(BringUpError) {
        if let last = pollRegister(SMMURegister.gbpa, until: 0, mask: GBPA.update) {
            throw .gbpaUpdateTimeout(last: last)
        }
        registers.write32(SMMURegister.gbpa, value | GBPA.update)
        if let last = pollRegister(SMMURegister.gbpa, until: 0, mask: GBPA.update) {
            throw .gbpaUpdateTimeout(last: last)
        }
    }

    // MARK: Command queue

    /// Queue one command (it runs no later than the next `sync`).
    public mutating func push(_ command: Command) throws(CommandQueueError) {
        try commandQueue.push(command, registers: registers, memory: memory, cache: &cache, coherent: coherent)
    }

    /// End the batch: one CMD_SYNC, wait for it.
    public mutating func sync() throws(CommandQueueError) {
        try commandQueue.sync(registers: registers, memory: memory, cache: &cache, coherent: coherent)
    }

    /// Invalidate `pages` pages from `first` in `scope` (range TLBIs where the
    /// SMMU has RIL) and wait for completion: one CMD_SYNC.
    public mutating func invalidate(_ scope: InvalidationScope, first: PageNumber, pages: UInt64,
                                    leafOnly: Bool = false) throws(CommandQueueError) {
        try queueInvalidation(scope, first: first, pages: pages, leafOnly: leafOnly)
        try sync()
    }

    /// Queue the TLBIs for a page run without the CMD_SYNC (for callers that
    /// batch several runs behind one sync).
    @_transparent public mutating func queueInvalidation(_ scope: InvalidationScope, first: PageNumber, pages: UInt64,
                                           leafOnly: Bool = false) throws(CommandQueueError) {
        let planner = InvalidationPlanner(rangeInvalidation: features.rangeInvalidation, leafOnly: leafOnly)
        var failure: CommandQueueError?
        planner.plan(scope, first: first, pages: pages) { command in
            guard failure == nil else { return }
            do throws(CommandQueueError) { try push(command) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Everything of one ASID or VMID, then CMD_SYNC.
    public mutating func invalidateAll(_ scope: InvalidationScope) throws(CommandQueueError) {
        try push(scope.invalidateAllCommand)
        try sync()
    }

    // MARK: Events and global errors

    /// Read and free every pending event record.
    public mutating func drainEvents(_ handle: (SMMUEvent) -> Void) -> EventDrainResult {
        eventQueue.drain(registers: registers, memory: memory, cache: &cache, coherent: coherent, handle: handle)
    }

    /// Look at GERROR ^ GERRORN, repair what can be repaired and acknowledge
    /// every active error by toggling its GERRORN bit, and only those (IHI 0070
    /// 6.3.20: toggling an inactive bit is CONSTRAINED UNPREDICTABLE):
    /// - CMDQ_ERR: the queue is repaired at CONS first (see
    ///   `CommandQueue.recoverIfStopped`), since the acknowledgement restarts it;
    /// - EVENTQ_ABT_ERR, PRIQ_ABT_ERR: records may have been lost; the
    ///   acknowledgement lets the SMMU write the queue again;
    /// - MSI_*_ABT_ERR: an MSI write aborted (this driver enables no MSIs);
    /// - SFM_ERR: service failure mode; acknowledged so a later error is seen,
    ///   but the mode stays, so every later report says `serviceFailure`.
    public mutating func checkGlobalErrors() -> GlobalErrorReport {
        let gerrorn = registers.read32(SMMURegister.gerrorn)
        let active = (registers.read32(SMMURegister.gerror) ^ gerrorn) & GERROR.mask
        var report = GlobalErrorReport(active: active)
        let others = active & ~GERROR.commandQueueError
        if others != 0 { registers.write32(SMMURegister.gerrorn, gerrorn ^ others) }
        if active & GERROR.commandQueueError != 0 {
            try? commandQueue.recoverIfStopped(registers: registers, memory: memory, cache: &cache, coherent: coherent)
            // Reported here, so the next `sync` does not report it again.
            report.rejectedCommand = commandQueue.takeRejection()
        }
        report.eventQueueWriteAborted = active & GERROR.eventQueueAbortError != 0
        report.priQueueWriteAborted = active & GERROR.priQueueAbortError != 0
        report.msiWriteAborts = active & GERROR.msiAbortErrors
        if active & GERROR.serviceFailureMode != 0 { serviceFailureSeen = true }
        report.serviceFailure = serviceFailureSeen
        return report
    }
}

/// What `checkGlobalErrors` found (and, where possible, repaired).
public struct GlobalErrorReport: Equatable, Sendable {
    /// GERROR ^ GERRORN when checked (each of these bits is now acknowledged).
    public var active: UInt32
    public var rejectedCommand: RejectedCommand?
    /// EVENTQ_ABT_ERR: an event queue access aborted, records may be lost
    /// (QEMU 7.2 also reports a full event queue this way).
    public var eventQueueWriteAborted = false
    /// PRIQ_ABT_ERR: a PRI queue access aborted.
    public var priQueueWriteAborted = false
    /// The MSI_*_ABT_ERR bits (GERROR [7:4]) that were active.
    public var msiWriteAborts: UInt32 = 0
    /// SFM_ERR now or at any earlier check: the SMMU stopped serving; only a
    /// reset recovers.
    public var serviceFailure = false
    public init(active: UInt32) { self.active = active }
    public var isClean: Bool { active == 0 && !serviceFailure }
}
