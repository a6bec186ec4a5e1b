import AArch64

/// The event queue, as its single consumer (IHI 0070 3.5, 7.2).
public struct EventQueue: Sendable {
    public let base: PhysAddr
    public let log2Entries: UInt32
    public private(set) var consumed: QueueIndex
    /// OVFLG as last acknowledged (EVTQ_CONS bit 31 mirrors EVTQ_PROD bit 31).
    var overflowAcknowledged: UInt32 = 0

    public static let overflowFlag: UInt32 = 1 << 31

    public init(base: PhysAddr, log2Entries: UInt32) {
        self.base = base
        self.log2Entries = log2Entries
        consumed = QueueIndex(0, log2Entries: log2Entries)
    }

    public var byteSize: UInt64 { SMMUEvent.bytes << UInt64(log2Entries) }

    /// Read every record the SMMU has written, hand each to `handle`, and free
    /// the entries. Lost events are reported the two ways the architecture
    /// signals them, which are different conditions:
    /// - overflow (IHI 0070 7.4): the queue was full and a record was dropped;
    ///   EVTQ_PROD.OVFLG then differs from the copy last acknowledged, and is
    ///   acknowledged by writing it back as EVTQ_CONS.OVACKFLG with the new RD.
    /// - GERROR.EVENTQ_ABT_ERR (7.2.2): a queue access aborted; records may
    ///   have been lost and none are written until it is acknowledged through
    ///   GERRORN, which this drain does after freeing the entries.
    /// QEMU 7.2 signals a full queue with EVENTQ_ABT_ERR and never sets OVFLG
    /// (HARDWARE.md section 5): there the result says `writeAborted`, as QEMU
    /// reports it, and no separate path is needed, since both conditions mean
    /// "records were lost" and both are acknowledged here.
    /// At most one queue's worth is read per call, so a device faulting
    /// continuously cannot keep the caller here.
    public mutating func drain<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance>(
        registers: R, memory: M, cache: inout C, coherent: Bool, handle: (SMMUEvent) -> Void
    ) -> EventDrainResult {
        // Three steps, inlined here (transparent): the board drains through
        // one handler closure, so there is one copy of this function, and
        // separate functions only added their calls and prologues. (With
        // several handlers, @inline(never) on the steps would share them.)
        var pass = beginDrain(registers: registers, cache: &cache)
        while let event = nextEvent(&pass, memory: memory, cache: &cache, coherent: coherent) {
            handle(event)
        }
        return endDrain(pass, registers: registers, cache: &cache)
    }

    /// One `drain` in progress: what was read before the first record.
    struct DrainPass {
        var result = EventDrainResult()
        let prod: QueueIndex
        let aborted: Bool
        var budget: UInt32
    }

    @_transparent mutating func beginDrain<R: RegisterBlock, C: CacheMaintenance>(registers: R, cache: inout C) -> DrainPass {
        // GERROR before PROD: a synchronous abort completes every earlier write
        // before it is flagged, so the records up to the PROD read next are
        // valid ones (7.2.2). Whether aborts are synchronous is IMPLEMENTATION
        // DEFINED; with an asynchronous one these records may be invalid, which
        // `writeAborted` tells the caller.
        let aborted = (registers.read32(SMMURegister.gerror) ^ registers.read32(SMMURegister.gerrorn))
            & GERROR.eventQueueAbortError != 0
        let prodRaw = registers.read32(SMMURegister.evtqProd)
        // Records up to PROD are complete in memory once PROD is read; keep the
        // record loads after that read (DSB; Linux's readl has the same barrier).
        cache.synchronize()
        var pass = DrainPass(prod: QueueIndex(prodRaw, log2Entries: log2Entries), aborted: aborted,
                             budget: consumed.entries)
        let flag = prodRaw & Self.overflowFlag
        if flag != overflowAcknowledged {
            pass.result.overflowed = true
            overflowAcknowledged = flag
        }
        return pass
    }

    /// The next record up to the PROD read by `beginDrain`, at most one queue's
    /// worth per pass; nil when there is none.
    @_transparent mutating func nextEvent<M: PhysicalMemory, C: CacheMaintenance>(
        _ pass: inout DrainPass, memory: M, cache: inout C, coherent: Bool
    ) -> SMMUEvent? {
        guard !pass.prod.isEmpty(consumer: consumed) && pass.budget > 0 else { return nil }
        let slot = base.adding(UInt64(consumed.index) * SMMUEvent.bytes)
        // The SMMU wrote the record behind the cache: drop any stale line first.
        if !coherent {
            cache.cleanAndInvalidate(slot, bytes: SMMUEvent.bytes)
            cache.synchronize()
        }
        let event = SMMUEvent(dw0: memory.load64(slot), dw1: memory.load64(slot.adding(8)),
                              dw2: memory.load64(slot.adding(16)), dw3: memory.load64(slot.adding(24)))
        pass.result.count += 1
        consumed = consumed.advanced()
        pass.budget -= 1
        return event
    }

    @_transparent mutating func endDrain<R: RegisterBlock, C: CacheMaintenance>(
        _ pass: DrainPass, registers: R, cache: inout C
    ) -> EventDrainResult {
        var result = pass.result
        // Publishing CONS gives the entries back to the SMMU, which may then
        // overwrite them: every load of a record must be complete first. A load
        // followed by a store to another location may be reordered (Arm ARM
        // B2.3), so order them (DSB; Linux's `queue_sync_cons_out` uses DMB OSH).
        cache.synchronize()
        registers.write32(SMMURegister.evtqCons, consumed.position | overflowAcknowledged)
        if pass.aborted {
            result.writeAborted = true
            let gerrorn = registers.read32(SMMURegister.gerrorn)
            registers.write32(SMMURegister.gerrorn, gerrorn ^ GERROR.eventQueueAbortError)
        }
        return result
    }
}

public struct EventDrainResult: Equatable, Sendable {
    /// Records read in this call.
    public var count: Int = 0
    /// EVTQ_PROD.OVFLG toggled: the queue was full and records were dropped.
    public var overflowed: Bool = false
    /// GERROR.EVENTQ_ABT_ERR was active: a queue access aborted and records may
    /// have been lost (QEMU 7.2 also reports a full queue this way).
    public var writeAborted: Bool = false
    public init(count: Int = 0, overflowed: Bool = false, writeAborted: Bool = false) {
        self.count = count
        self.overflowed = overflowed
        self.writeAborted = writeAborted
    }
    /// Some records never reached the queue.
    public var eventsLost: Bool { overflowed || writeAborted }
}
