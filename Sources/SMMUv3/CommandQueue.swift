import AArch64

/// The command queue ring, as a single producer (IHI 0070 3.5, 4.1).
///
/// Commands are written into the ring and published in one CMDQ_PROD write;
/// when the ring fills, what is written so far is published and the producer
/// waits (bounded) for CONS to free space. `sync` appends the one CMD_SYNC of
/// a batch and waits for CONS to pass it: every earlier command is then
/// complete (IHI 0070 4.7.3). Waiting never spins forever: it gives up after
/// `pollLimit` reads of CONS with a typed timeout, and it repairs a stopped
/// queue (CERROR) on the way, so a lost or rejected command cannot hang the
/// hypervisor.
public struct CommandQueue: Sendable {
    public let base: PhysAddr
    public let log2Entries: UInt32
    /// What the SMMU has been told (last CMDQ_PROD value written).
    public private(set) var published: QueueIndex
    /// Where the next command goes (>= published).
    public private(set) var next: QueueIndex
    public var pollLimit: Int
    /// Totals since bring-up: every command and every CMD_SYNC written.
    public private(set) var commandsIssued: Int = 0
    public private(set) var syncsIssued: Int = 0
    /// The last command the SMMU rejected, with the reason.
    public private(set) var lastRejected: RejectedCommand?
    /// Command fetches that aborted (CERROR_ABT) and were retried in place.
    public private(set) var fetchAbortsRetried: Int = 0
    /// A rejection seen since the last `sync`, reported by that `sync`.
    @usableFromInline var rejectedInBatch: RejectedCommand?
    /// CONS as last read (it only moves forward, so a stale value is conservative).
    @usableFromInline var lastConsumer: QueueIndex

    public init(base: PhysAddr, log2Entries: UInt32, pollLimit: Int) {
        self.base = base
        self.log2Entries = log2Entries
        self.pollLimit = pollLimit
        published = QueueIndex(0, log2Entries: log2Entries)
        next = published
        lastConsumer = published
    }

    public var byteSize: UInt64 { Command.bytes << UInt64(log2Entries) }

    // Transparent: called as methods from the mutating ones, each call copied
    // the whole queue state (120 bytes) to the stack first.
    @_transparent func slotAddress(_ i: QueueIndex) -> PhysAddr { base.adding(UInt64(i.index) * Command.bytes) }

    @usableFromInline @_transparent func consumer<R: RegisterBlock>(_ registers: R) -> QueueIndex {
        QueueIndex(registers.read32(SMMURegister.cmdqCons), log2Entries: log2Entries)
    }

    /// Append one command, publishing and waiting for space if the ring is full.
    public mutating func push<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance>(
        _ command: Command, registers: R, memory: M, cache: inout C, coherent: Bool
    ) throws(CommandQueueError) {
        // CONS is read only when the last value seen says the ring is full.
        if next.isFull(consumer: lastConsumer) {
            try makeRoom(registers: registers, memory: memory, cache: &cache, coherent: coherent)
        }
        let slot = slotAddress(next)
        memory.store64(slot, command.dw0)
        memory.store64(slot.adding(8), command.dw1)
        next = next.advanced()
        commandsIssued += 1
        if command.opcode == Command.Opcode.sync.rawValue { syncsIssued += 1 }
    }

    /// `push` on a ring that looked full: read CONS again, and if it is still
    /// full, publish what is written and wait (bounded) for CONS to free a slot.
    @_transparent mutating func makeRoom<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance>(
        registers: R, memory: M, cache: inout C, coherent: Bool
    ) throws(CommandQueueError) {
        lastConsumer = consumer(registers)
        guard next.isFull(consumer: lastConsumer) else { return }
        publish(registers: registers, memory: memory, cache: &cache, coherent: coherent)
        try waitForConsumer(untilDrained: false, registers: registers, memory: memory, cache: &cache,
                            coherent: coherent)
    }

    /// The one bounded wait on CONS, from `lastConsumer` on: until the ring has
    /// a free slot (`push`), or until CONS passes everything published
    /// (`untilDrained`, `sync`). Each poll first repairs a stopped queue; past
    /// `pollLimit` polls it throws `.noSpace` or `.syncTimeout` respectively.
    @usableFromInline mutating func waitForConsumer<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance>(
        untilDrained: Bool, registers: R, memory: M, cache: inout C, coherent: Bool
    ) throws(CommandQueueError) {
        var polls = 0
        while untilDrained ? !published.isEmpty(consumer: lastConsumer) : next.isFull(consumer: lastConsumer) {
            try recoverIfStopped(registers: registers, memory: memory, cache: &cache, coherent: coherent)
            polls += 1
            if polls > pollLimit {
                throw untilDrained ? .syncTimeout(prod: published.position, cons: lastConsumer.position)
                    : .noSpace(prod: next.position, cons: lastConsumer.position)
            }
            lastConsumer = consumer(registers)
        }
    }

    /// Make written commands visible: clean them to PoC if the SMMU does not
    /// snoop, order the stores before the register write (DSB), then move PROD.
    public mutating func publish<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance>(
        registers: R, memory: M, cache: inout C, coherent: Bool
    ) {
        guard next != published else { return }
        if !coherent {
            let count = next.used(since: published)
            let first = published.index
            let tail = min(count, published.entries - first)
            cache.clean(slotAddress(published), bytes: UInt64(tail) * Command.bytes)
            if tail < count { cache.clean(base, bytes: UInt64(count - tail) * Command.bytes) }
        }
        cache.synchronize()
        registers.write32(SMMURegister.cmdqProd, next.position)
        published = next
    }

    /// Append the batch's CMD_SYNC, publish, and wait until CONS passes it.
    /// If the SMMU rejected a command on the way, the queue is repaired, the
    /// rest of the batch still completes, and the rejection is then thrown
    /// (a retried fetch abort is not a rejection: that command ran).
    /// Transparent: on the board its one caller is `SMMU.sync`.
    @_transparent public mutating func sync<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance>(
        registers: R, memory: M, cache: inout C, coherent: Bool
    ) throws(CommandQueueError) {
        try push(.sync(), registers: registers, memory: memory, cache: &cache, coherent: coherent)
        publish(registers: registers, memory: memory, cache: &cache, coherent: coherent)
        lastConsumer = consumer(registers)
        try waitForConsumer(untilDrained: true, registers: registers, memory: memory, cache: &cache,
                            coherent: coherent)
        if let rejected = rejectedInBatch {
            rejectedInBatch = nil
            throw .commandRejected(rejected)
        }
    }

    /// The rejection seen since the last `sync`, handed to the caller once.
    @_transparent mutating func takeRejection() -> RejectedCommand? {
        defer { rejectedInBatch = nil }
        return rejectedInBatch
    }

    /// GERROR.CMDQ_ERR active: the SMMU stopped at CONS with CONS.ERR naming
    /// why (IHI 0070 7.1). What is at CONS decides the repair; acknowledging
    /// through GERRORN then restarts consumption, which fetches the slot at
    /// CONS again:
    /// - CERROR_ILL (and any code the architecture does not define): the
    ///   command can never run. It is recorded and overwritten with a CMD_SYNC
    ///   (harmless, always legal), so the rest of the batch still runs.
    /// - CERROR_ABT: the fetch of the command aborted; the command itself is
    ///   fine and must not be lost (a dropped TLBI would leave a stale
    ///   translation). It stays in place and is fetched again; a fetch that
    ///   keeps aborting ends in the caller's bounded wait.
    /// - CERROR_ATC_INV_SYNC: CONS is at the CMD_SYNC whose ATC invalidations
    ///   timed out; it stays in place and is retried (this driver sends no
    ///   ATC_INV, so it is recorded as a rejection).
    /// - CERROR_NONE is never reported with CMDQ_ERR; nothing is skipped.
    /// CONS.ERR itself is not trusted to clear (QEMU keeps it, HARDWARE.md
    /// trap 5); the GERROR ^ GERRORN difference is the signal.
    mutating func recoverIfStopped<R: RegisterBlock, M: PhysicalMemory, C: CacheMaintenance>(
        registers: R, memory: M, cache: inout C, coherent: Bool
    ) throws(CommandQueueError) {
        let gerror = registers.read32(SMMURegister.gerror)
        let gerrorn = registers.read32(SMMURegister.gerrorn)
        guard (gerror ^ gerrorn) & GERROR.commandQueueError != 0 else { return }
        let consRaw = registers.read32(SMMURegister.cmdqCons)
        let cons = QueueIndex(consRaw, log2Entries: log2Entries)
        let slot = slotAddress(cons)
        let code = CommandConsumerError.field(of: consRaw)
        // The reason, from the codes the architecture defines; any other code
        // is treated as CERROR_ILL.
        let reason = CommandConsumerError(rawValue: code) ?? .illegal
        if reason == .abort {
            fetchAbortsRetried += 1
        } else if reason != .none {
            // CERROR_ILL or CERROR_ATC_INV_SYNC: recorded (one read of the slot
            // for both); only an illegal command is overwritten with CMD_SYNC.
            let illegal = reason == .illegal
            if illegal && !coherent { cache.cleanAndInvalidate(slot, bytes: Command.bytes) }
            let rejected = Command(dw0: memory.load64(slot), dw1: memory.load64(slot.adding(8)))
            record(RejectedCommand(command: rejected, reason: reason, index: cons.index))
            if illegal {
                let replacement = Command.sync()
                memory.store64(slot, replacement.dw0)
                memory.store64(slot.adding(8), replacement.dw1)
                if !coherent { cache.clean(slot, bytes: Command.bytes) }
            }
        }
        cache.synchronize()
        registers.write32(SMMURegister.gerrorn, gerrorn ^ GERROR.commandQueueError)
    }

    @_transparent mutating func record(_ rejected: RejectedCommand) {
        lastRejected = rejected
        if rejectedInBatch == nil { rejectedInBatch = rejected }
    }
}

/// A command the SMMU refused, as found at CMDQ_CONS when it stopped.
public struct RejectedCommand: Equatable, Sendable {
    public var command: Command
    public var reason: CommandConsumerError
    public var index: UInt32
}

public enum CommandQueueError: Error, Equatable, Sendable {
    /// The ring stayed full for the whole poll budget.
    case noSpace(prod: UInt32, cons: UInt32)
    /// CONS did not pass the CMD_SYNC within the poll budget.
    case syncTimeout(prod: UInt32, cons: UInt32)
    /// A command was rejected: an illegal one (CERROR_ILL) was replaced by
    /// CMD_SYNC, a CMD_SYNC whose ATC invalidations timed out
    /// (CERROR_ATC_INV_SYNC) was retried; the rest of the batch completed.
    /// An aborted fetch (CERROR_ABT) is retried and is not a rejection.
    case commandRejected(RejectedCommand)
}
