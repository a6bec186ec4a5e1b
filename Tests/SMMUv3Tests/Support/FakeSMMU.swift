import AArch64
import Translation
@testable import SMMUv3

/// A model of an SMMUv3 on host memory, strict where the architecture is and
/// QEMU-like in its timing: the command queue is consumed synchronously inside
/// the CMDQ_PROD write. It walks linear and two-level stream tables, decodes
/// STEs and CDs, walks stage-1 and stage-2 tables (4 KiB granule), caches
/// configurations and translations (so a missing CFGI or TLBI shows up as a
/// stale result), records events, and checks how the driver updates live STEs.
final class FakeSMMU: RegisterBlock {
    struct Profile {
        var idr0: UInt32
        var idr1: UInt32
        var idr3: UInt32
        var idr5: UInt32
        /// Queue-full signalling: architected OVFLG toggle, or QEMU 7.2's
        /// GERROR.EVTQ_ABT_ERR.
        var overflowViaGERROR = false

        /// Debian QEMU 7.2.22 `virt` (HARDWARE.md section 7): stage 1 only.
        static let qemu72 = Profile(idr0: 0x0d40_101a, idr1: 0x0273_0010, idr3: 0x1404, idr5: 0x74,
                                    overflowViaGERROR: true)
        /// QEMU 10.0 `virt`: stage 1 and stage 2.
        static let qemu10 = Profile(idr0: 0x0d44_101b, idr1: 0x0273_0010, idr3: 0x1414, idr5: 0x74)
        /// QEMU 7.2 without COHACC: tables and queues must be cleaned to PoC.
        static let qemu72NonCoherent = Profile(idr0: 0x0d40_101a & ~(1 << 4), idr1: 0x0273_0010, idr3: 0x1404,
                                               idr5: 0x74, overflowViaGERROR: true)
        var coherent: Bool { idr0 & (1 << 4) != 0 }
        /// IAS (IHI 0070 3.4) from IDR0.TTF [3:2] and IDR5.OAS [2:0], written out
        /// independently of the driver's decoding.
        var intermediateAddressBits: Int {
            let oas = [32, 36, 40, 42, 44, 48, 52, 52][Int(idr5 & 7)]
            return max(idr0 & (1 << 2) != 0 ? 40 : 0, idr0 & (1 << 3) != 0 ? oas : 0)
        }
        var stage1: Bool { idr0 & 2 != 0 }
        var stage2: Bool { idr0 & 1 != 0 }
        var hyp: Bool { idr0 & (1 << 9) != 0 }
        var rangeInvalidation: Bool { idr3 & (1 << 10) != 0 }
        func without(_ bit: UInt32, idr: Int) -> Profile {
            var p = self
            switch idr {
            case 0: p.idr0 &= ~bit
            case 3: p.idr3 &= ~bit
            default: p.idr5 &= ~bit
            }
            return p
        }
    }

    let memory: FakeMemory
    var profile: Profile

    // Registers
    var cr0: UInt32 = 0, cr0ack: UInt32 = 0, cr1: UInt32 = 0, cr2: UInt32 = 0, gbpa: UInt32 = 0
    var irqCtrl: UInt32 = 0, gerror: UInt32 = 0, gerrorn: UInt32 = 0
    var strtabBase: UInt64 = 0, strtabBaseCfg: UInt32 = 0
    var cmdqBase: UInt64 = 0, cmdqProd: UInt32 = 0, cmdqCons: UInt32 = 0
    var evtqBase: UInt64 = 0, evtqProd: UInt32 = 0, evtqCons: UInt32 = 0

    // Fault injection
    /// CR0ACK ignores CR0 writes (timeout test).
    var cr0AckStuck = false
    /// The command queue is not consumed at all (a lost CMD_SYNC).
    var consumptionStalled = false
    /// Every TLBI is refused with CERROR_ILL (a command queue error that the
    /// driver's whole-scope fallback cannot get past either).
    var rejectInvalidations = false
    /// Consume this many more CMD_SYNCs, then stall (a CMD_SYNC lost mid-operation).
    var syncsBeforeStall: Int?
    /// The next fetches stop the queue with these CMDQ_CONS.ERR codes, one per
    /// fetch, before the command is looked at (CERROR_ABT: the read of the
    /// slot aborted; IHI 0070 7.1). CONS stays at the slot, which is fetched
    /// again once CMDQ_ERR is acknowledged.
    var injectedFetchErrors: [CommandConsumerError] = []
    /// The next CMD_SYNC stops the queue once with this code (CERROR_ATC_INV_SYNC:
    /// CONS stays at the CMD_SYNC).
    var stopAtNextSync: CommandConsumerError?
    /// Writes to the event queue abort (GERROR.EVENTQ_ABT_ERR), not a full queue.
    var eventWritesAbort = false

    // Observations
    var registerWrites: [(Int, UInt64)] = []
    var badAccesses: [Int] = []
    var consumedCommands: [Command] = []
    var steViolations: [String] = []
    /// Stage-1 TLBIs consumed while a walk of their range through the SMMU's
    /// view of memory still found a valid descriptor the CPU had changed or
    /// broken (`walkAtInvalidation`), and how many walks that check made.
    var staleWalksAtInvalidation: [String] = []
    var invalidationWalks = 0

    // Caches
    enum Config: Equatable {
        case abort
        case bypass
        case stage1(asid: UInt16, ttb: UInt64, inputBits: Int, record: Bool)
        case stage2(vmid: UInt16, ttb: UInt64, inputBits: Int, startLevel: Int, record: Bool)
    }
    struct TLBEntry { var pa: UInt64; var writable: Bool; var readable: Bool }
    var configCache: [UInt32: Config] = [:]
    var stage1TLB: [UInt16: [UInt64: TLBEntry]] = [:]
    var stage2TLB: [UInt16: [UInt64: TLBEntry]] = [:]
    var committedSTE: [UInt32: StreamTableEntry] = [:]
    var steTrace: [UInt32: [StreamTableEntry]] = [:]

    init(profile: Profile, memory: FakeMemory) {
        self.profile = profile
        self.memory = memory
        memory.storeObserver = { [unowned self] address in self.observeStore(address) }
    }

    // MARK: RegisterBlock

    static let sixtyFourBit: Set<Int> = [SMMURegister.strtabBase, SMMURegister.cmdqBase, SMMURegister.evtqBase]

    func read32(_ offset: Int) -> UInt32 {
        switch offset {
        case SMMURegister.idr0: return profile.idr0
        case SMMURegister.idr1: return profile.idr1
        case SMMURegister.idr2, SMMURegister.idr4: return 0
        case SMMURegister.idr3: return profile.idr3
        case SMMURegister.idr5: return profile.idr5
        case SMMURegister.cr0: return cr0
        case SMMURegister.cr0ack: return cr0ack
        case SMMURegister.cr1: return cr1
        case SMMURegister.cr2: return cr2
        case SMMURegister.gbpa: return gbpa
        case SMMURegister.irqCtrl, SMMURegister.irqCtrlAck: return irqCtrl
        case SMMURegister.gerror: return gerror
        case SMMURegister.gerrorn: return gerrorn
        case SMMURegister.strtabBaseCfg: return strtabBaseCfg
        case SMMURegister.cmdqProd: return cmdqProd
        case SMMURegister.cmdqCons: return cmdqCons
        case SMMURegister.evtqProd: return evtqProd
        case SMMURegister.evtqCons: return evtqCons
        default:
            badAccesses.append(offset)
            return 0
        }
    }

    func write32(_ offset: Int, _ value: UInt32) {
        registerWrites.append((offset, UInt64(value)))
        memory.record(.registerWrite(offset, UInt64(value)))
        switch offset {
        case SMMURegister.cr0:
            cr0 = value
            if !cr0AckStuck { cr0ack = value & 0x3DF }
        case SMMURegister.cr1: cr1 = value
        case SMMURegister.cr2: cr2 = value
        case SMMURegister.gbpa: gbpa = value & ~GBPA.update
        case SMMURegister.irqCtrl: irqCtrl = value
        case SMMURegister.gerrorn:
            gerrorn = value
            consumeCommands()
        case SMMURegister.strtabBaseCfg: strtabBaseCfg = value
        case SMMURegister.cmdqProd:
            cmdqProd = value
            consumeCommands()
        case SMMURegister.cmdqCons: cmdqCons = value
        case SMMURegister.evtqProd: evtqProd = value
        case SMMURegister.evtqCons: evtqCons = value
        default: badAccesses.append(offset)
        }
    }

    func read64(_ offset: Int) -> UInt64 {
        switch offset {
        case SMMURegister.strtabBase: return strtabBase
        case SMMURegister.cmdqBase: return cmdqBase
        case SMMURegister.evtqBase: return evtqBase
        default:
            badAccesses.append(offset)
            return 0
        }
    }

    func write64(_ offset: Int, _ value: UInt64) {
        registerWrites.append((offset, value))
        memory.record(.registerWrite(offset, value))
        switch offset {
        case SMMURegister.strtabBase: strtabBase = value
        case SMMURegister.cmdqBase: cmdqBase = value
        case SMMURegister.evtqBase: evtqBase = value
        default: badAccesses.append(offset)
        }
    }

    // MARK: Helpers

    var coherentNow: Bool { profile.coherent }
    func load(_ address: UInt64) -> UInt64 { memory.deviceLoad(PhysAddr(address), coherent: coherentNow) }
    var cmdqLog2: UInt32 { UInt32(cmdqBase & 0x1F) }
    var evtqLog2: UInt32 { UInt32(evtqBase & 0x1F) }
    var errorActive: Bool { (gerror ^ gerrorn) & GERROR.commandQueueError != 0 }

    // MARK: Command queue

    func consumeCommands() {
        guard cr0 & CR0.commandQueueEnable != 0, !consumptionStalled, !errorActive else { return }
        let log2 = cmdqLog2
        let base = cmdqBase & QueueBase.addressMask
        var cons = QueueIndex(cmdqCons, log2Entries: log2)
        let prod = QueueIndex(cmdqProd, log2Entries: log2)
        while !prod.isEmpty(consumer: cons) {
            if !injectedFetchErrors.isEmpty {
                stop(at: cons, injectedFetchErrors.removeFirst())
                return
            }
            let slot = base + UInt64(cons.index) * Command.bytes
            let command = Command(dw0: load(slot), dw1: load(slot + 8))
            if command.opcode == Command.Opcode.sync.rawValue, let error = stopAtNextSync {
                stopAtNextSync = nil
                stop(at: cons, error)
                return
            }
            if command.opcode == Command.Opcode.sync.rawValue, let left = syncsBeforeStall {
                if left == 0 {
                    consumptionStalled = true
                    syncsBeforeStall = nil
                    return
                }
                syncsBeforeStall = left - 1
            }
            if !execute(command) {
                stop(at: cons, .illegal)
                return
            }
            consumedCommands.append(command)
            cons = cons.advanced()
            cmdqCons = cons.position | (cmdqCons & (CommandConsumerError.mask << CommandConsumerError.shift))
        }
    }

    /// Stop consuming at `cons`: CMDQ_CONS.ERR = `error`, GERROR.CMDQ_ERR activated.
    func stop(at cons: QueueIndex, _ error: CommandConsumerError) {
        cmdqCons = cons.position | UInt32(error.rawValue) << CommandConsumerError.shift
        gerror ^= GERROR.commandQueueError
    }

    /// Run one command; false = CERROR_ILL.
    func execute(_ c: Command) -> Bool {
        let sid = UInt32(c.dw0 >> 32)
        let vmid = UInt16(truncatingIfNeeded: c.dw0 >> 32)
        let asid = UInt16(truncatingIfNeeded: c.dw0 >> 48)
        let tlbis: [Command.Opcode] = [.tlbiNHAll, .tlbiNHASID, .tlbiNHVA, .tlbiEL2All, .tlbiS12VMAll, .tlbiS2IPA,
                                       .tlbiNSNHAll]
        if rejectInvalidations, let op = Command.Opcode(rawValue: c.opcode), tlbis.contains(op) { return false }
        switch Command.Opcode(rawValue: c.opcode) {
        case .prefetchConfig: return true
        case .cfgiSTE:
            if c.dw0 & (1 << 10) != 0 { return false }  // SSec
            invalidateConfig(first: sid, count: 1)
        case .cfgiSTERange:
            let range = c.dw1 & 0x1F
            let count = UInt64(1) << (range + 1)
            invalidateConfig(first: UInt32(UInt64(sid) & ~(count - 1) & 0xFFFF_FFFF), count: count)
        case .cfgiCD, .cfgiCDAll: configCache.removeValue(forKey: sid)
        case .tlbiNHAll:
            walkAtInvalidation("TLBI_NH_ALL", asid: nil, 0..<UInt64.max)
            stage1TLB = [:]
        case .tlbiNHASID:
            walkAtInvalidation("TLBI_NH_ASID", asid: asid, 0..<UInt64.max)
            stage1TLB.removeValue(forKey: asid)
        case .tlbiNHVA:
            guard let pages = rangePages(c) else { return false }
            let first = (c.dw1 & Command.vaMask) >> 12
            walkAtInvalidation("TLBI_NH_VA", asid: asid, first..<(first + pages))
            for p in 0..<pages { stage1TLB[asid]?.removeValue(forKey: first + p) }
        case .tlbiEL2All:
            return profile.hyp
        case .tlbiS12VMAll:
            guard profile.stage2 else { return false }
            stage2TLB.removeValue(forKey: vmid)
        case .tlbiS2IPA:
            guard profile.stage2, let pages = rangePages(c) else { return false }
            let first = (c.dw1 & Command.ipaMask) >> 12
            for p in 0..<pages { stage2TLB[vmid]?.removeValue(forKey: first + p) }
        case .tlbiNSNHAll:
            walkAtInvalidation("TLBI_NSNH_ALL", asid: nil, 0..<UInt64.max)
            stage1TLB = [:]
            stage2TLB = [:]
        case .sync: return true
        case nil: return false
        }
        return true
    }

    /// An SMMU may walk the tables and cache what it finds at any time, not only
    /// for a transaction (prefetch and speculation, as a PE's TLB may), so from
    /// the moment a TLBI is consumed it may refill its
    /// TLB and walk caches for the invalidated range from memory as it sees it:
    /// RAM, when it does not snoop the CPU's caches. For each stage-1
    /// configuration on `asid` (nil: every ASID) that the SMMU holds or may
    /// fetch (a stream whose STE a CFGI has published), walk `pages` (input
    /// frames) through that view next to the CPU's: a valid descriptor there
    /// that the CPU has since broken or changed, and not yet cleaned to PoC, is
    /// one the TLBI cannot keep out of the TLB.
    func walkAtInvalidation(_ name: String, asid: UInt16?, _ pages: Range<UInt64>) {
        var configs = Array(configCache.values)
        for sid in committedSTE.keys.sorted() where configCache[sid] == nil {
            if case .success(let config) = fetchConfig(sid) { configs.append(config) }
        }
        var walked: [Config] = []
        for config in configs where !walked.contains(config) {
            guard case .stage1(let a, let ttb, let bits, _) = config, asid == nil || a == asid else { continue }
            walked.append(config)
            invalidationWalks += 1
            let startLevel = 4 - (bits - 12 + 8) / 9
            let entries = UInt64(1) << UInt64(bits - 12 - 9 * (3 - startLevel))
            compareWalk(ttb, level: startLevel, base: 0, entries: entries, pages) { level, iova, seen, written in
                let range = "0x\(String(pages.lowerBound, radix: 16))..<0x\(String(pages.upperBound, radix: 16))"
                self.staleWalksAtInvalidation.append(
                    "\(name) ASID \(a) input frames \(range): a walk still finds valid 0x\(String(seen, radix: 16)) "
                    + "at level \(level), IOVA frame 0x\(String(iova, radix: 16)), where the CPU wrote "
                    + "0x\(String(written, radix: 16)) and did not clean it to PoC")
            }
        }
    }

    /// Compare the descriptors of table `table` (at `level`, its first entry
    /// mapping input frame `base`) that cover `pages`, as the SMMU reads them and
    /// as the CPU wrote them, following tables both agree on.
    func compareWalk(_ table: UInt64, level: Int, base: UInt64, entries: UInt64, _ pages: Range<UInt64>,
                     stale: (Int, UInt64, UInt64, UInt64) -> Void) {
        let span = UInt64(1) << UInt64(9 * (3 - level))
        guard pages.upperBound > base else { return }
        let low = pages.lowerBound > base ? (pages.lowerBound - base) / span : 0
        let high = min(entries, (pages.upperBound - base - 1) / span + 1)
        guard low < high else { return }
        for i in low..<high {
            let address = PhysAddr(table + i * 8)
            let written = memory.peek(address)
            let seen = coherentNow ? written : memory.dramLoad(address)
            guard seen & 1 != 0 else { continue }
            if seen != written {
                stale(level, base + i * span, seen, written)
            } else if level < 3 && seen & 2 != 0 {
                compareWalk(seen & 0x0000_FFFF_FFFF_F000, level: level + 1, base: base + i * span, entries: 512, pages,
                            stale: stale)
            }
        }
    }

    /// Pages covered by a TLBI by address, or nil if the range fields are illegal.
    func rangePages(_ c: Command) -> UInt64? {
        let tg = c.dw1 >> Command.tgShift & Command.tgMask
        let num = c.dw0 >> Command.numShift & Command.numMask
        let scale = c.dw0 >> Command.scaleShift & Command.scaleMask
        let ttl = c.dw1 >> Command.ttlShift & Command.ttlMask
        if tg == 0 { return num == 0 && scale == 0 ? 1 : nil }
        guard profile.rangeInvalidation, tg == Command.tg4K else { return nil }
        if num == 0 && scale == 0 && ttl == 0 { return nil }  // Reserved (IHI 0070 4.4.1)
        return (num + 1) << scale
    }

    func invalidateConfig(first: UInt32, count: UInt64) {
        for sid in Array(configCache.keys) where UInt64(sid) >= UInt64(first) && UInt64(sid) < UInt64(first) + count {
            configCache.removeValue(forKey: sid)
        }
        // Live-STE check: every state the STE went through since the previous
        // invalidation must be non-translating, the old entry, or the new one.
        for sid in Array(steTrace.keys) where UInt64(sid) >= UInt64(first) && UInt64(sid) < UInt64(first) + count {
            let old = committedSTE[sid] ?? StreamTableEntry()
            let new = currentSTE(sid) ?? StreamTableEntry()
            for state in steTrace[sid]! where Self.readsBeyondWordZero(state) && state != old && state != new {
                steViolations.append("SID \(sid): SMMU could fetch a mixed STE \(state)")
            }
            committedSTE[sid] = new
            steTrace[sid] = nil
        }
        for sid in UInt64(first)..<min(UInt64(first) + count, 1 << 16) where committedSTE[UInt32(sid)] == nil {
            if let ste = currentSTE(UInt32(sid)) { committedSTE[UInt32(sid)] = ste }
        }
    }

    static func readsBeyondWordZero(_ e: StreamTableEntry) -> Bool { e.isValid && e.config & 0b100 != 0 }

    // MARK: Stream table

    var streamIDBits: Int { Int(strtabBaseCfg & 0x3F) }
    var twoLevel: Bool { (strtabBaseCfg >> 16) & 3 == 1 }
    var split: Int { Int((strtabBaseCfg >> 6) & 0x1F) }
    var tableBase: UInt64 { strtabBase & StreamTableBase.addressMask }

    enum Lookup { case entry(UInt64), badStreamID }

    func steAddress(_ sid: UInt32, device: Bool) -> Lookup {
        guard UInt64(sid) >> UInt64(streamIDBits) == 0 else { return .badStreamID }
        if !twoLevel { return .entry(tableBase + UInt64(sid) * 64) }
        let descAddress = tableBase + UInt64(sid >> UInt32(split)) * 8
        let desc = StreamTableL1Descriptor(raw: device ? load(descAddress) : memory.peek(PhysAddr(descAddress)))
        guard desc.isValid else { return .badStreamID }
        let index = UInt64(sid) & ((1 << UInt64(split)) - 1)
        guard index < (1 << (desc.span - 1)) else { return .badStreamID }
        return .entry(desc.l2Table.raw + index * 64)
    }

    func currentSTE(_ sid: UInt32) -> StreamTableEntry? {
        guard case .entry(let a) = steAddress(sid, device: false) else { return nil }
        var e = StreamTableEntry()
        for i in 0..<8 { e[word: i] = memory.peek(PhysAddr(a + UInt64(i) * 8)) }
        return e
    }

    func observeStore(_ address: PhysAddr) {
        guard strtabBase != 0 else { return }
        let a = address.raw
        let sids: [UInt32]
        if !twoLevel {
            let size = UInt64(64) << UInt64(streamIDBits)
            guard a >= tableBase && a < tableBase + size else { return }
            sids = [UInt32((a - tableBase) / 64)]
        } else {
            var found: [UInt32] = []
            let l1Count = UInt64(1) << UInt64(streamIDBits - split)
            for i in 0..<l1Count {
                let desc = StreamTableL1Descriptor(raw: memory.peek(PhysAddr(tableBase + i * 8)))
                guard desc.isValid else { continue }
                let l2 = desc.l2Table.raw
                if a >= l2 && a < l2 + (UInt64(64) << UInt64(split)) {
                    found.append(UInt32(i << UInt64(split) + (a - l2) / 64))
                }
            }
            sids = found
        }
        for sid in sids {
            if let ste = currentSTE(sid) { steTrace[sid, default: []].append(ste) }
        }
    }

    // MARK: Translation

    enum DMAResult: Equatable {
        case ok(PhysAddr)
        case aborted
        case fault(SMMUEvent.Kind)
    }

    /// A DMA access of 8 bytes by `stream` at `iova`; on success the data moves.
    @discardableResult
    func dma(stream: UInt32, iova: UInt64, write: Bool, value: UInt64 = 0) -> (DMAResult, UInt64) {
        let result = translate(stream: stream, iova: iova, write: write)
        guard case .ok(let pa) = result else { return (result, 0) }
        if write {
            memory.deviceStore(pa, value)
            return (result, 0)
        }
        return (result, memory.peek(pa))
    }

    func translate(stream sid: UInt32, iova: UInt64, write: Bool) -> DMAResult {
        guard cr0 & CR0.smmuEnable != 0 else {
            return gbpa & GBPA.abort != 0 && profile.stage2 ? .aborted : .ok(PhysAddr(iova))
        }
        let config: Config
        if let cached = configCache[sid] {
            config = cached
        } else {
            switch fetchConfig(sid) {
            case .success(let c): config = c
            case .failure(let kind):
                record(kind, sid: sid, iova: iova, write: write)
                return .fault(kind.kind)
            }
            configCache[sid] = config
        }
        switch config {
        case .abort: return .aborted
        case .bypass: return .ok(PhysAddr(iova))
        case .stage1(let asid, let ttb, let bits, let rec):
            let page = iova >> 12
            if let hit = stage1TLB[asid]?[page] {
                if write && !hit.writable { return fault(.permission, sid, iova, write, rec, s2: false, ipa: 0) }
                return .ok(PhysAddr(hit.pa | iova & 0xFFF))
            }
            guard iova >> UInt64(bits) == 0 else { return fault(.translation, sid, iova, write, rec, s2: false, ipa: 0) }
            let startLevel = 4 - (bits - 12 + 8) / 9
            switch walk(ttb, input: iova, inputBits: bits, startLevel: startLevel, stage2: false) {
            case .failure(let k): return fault(k.kind, sid, iova, write, rec, s2: false, ipa: 0)
            case .success(let e):
                stage1TLB[asid, default: [:]][page] = e
                if write && !e.writable { return fault(.permission, sid, iova, write, rec, s2: false, ipa: 0) }
                return .ok(PhysAddr(e.pa | iova & 0xFFF))
            }
        case .stage2(let vmid, let ttb, let bits, let startLevel, let rec):
            let page = iova >> 12
            let entry: TLBEntry
            if let hit = stage2TLB[vmid]?[page] {
                entry = hit
            } else {
                guard iova >> UInt64(bits) == 0 else { return fault(.translation, sid, iova, write, rec, s2: true, ipa: iova) }
                switch walk(ttb, input: iova, inputBits: bits, startLevel: startLevel, stage2: true) {
                case .failure(let k): return fault(k.kind, sid, iova, write, rec, s2: true, ipa: iova)
                case .success(let e): entry = e
                }
                stage2TLB[vmid, default: [:]][page] = entry
            }
            if write ? !entry.writable : !entry.readable {
                return fault(.permission, sid, iova, write, rec, s2: true, ipa: iova)
            }
            return .ok(PhysAddr(entry.pa | iova & 0xFFF))
        }
    }

    struct ConfigFault: Error { var kind: SMMUEvent.Kind }

    func fetchConfig(_ sid: UInt32) -> Result<Config, ConfigFault> {
        guard case .entry(let a) = steAddress(sid, device: true) else { return .failure(ConfigFault(kind: .badStreamID)) }
        var ste = StreamTableEntry()
        for i in 0..<8 { ste[word: i] = load(a + UInt64(i) * 8) }
        guard ste.isValid else { return .failure(ConfigFault(kind: .badSTE)) }
        // STE.SHCFG is RES0 without SMMU_IDR1.ATTR_TYPES_OVR (IHI 0070 5.2): strict here.
        if profile.idr1 & (1 << 27) == 0 && ste.dw1 & StreamTableEntry.shareConfigMask != 0 && ste.config & 0b100 != 0 {
            return .failure(ConfigFault(kind: .badSTE))
        }
        switch ste.config {
        case 0b000, 0b001, 0b010, 0b011: return .success(.abort)
        case 0b100: return .success(.bypass)
        case 0b101:
            guard profile.stage1, ste.dw0 >> 59 == 0, ste.dw1 & (1 << 27) == 0 else {
                return .failure(ConfigFault(kind: .badSTE))
            }
            let cdAddress = ste.dw0 & StreamTableEntry.contextPointerMask
            let dw0 = load(cdAddress), dw1 = load(cdAddress + 8)
            let t0sz = dw0 & 0x3F
            let tg0 = dw0 >> 6 & 3
            let ok = dw0 & ContextDescriptor.valid != 0 && dw0 & ContextDescriptor.aarch64 != 0
                && dw0 & ContextDescriptor.abortOnFault != 0 && dw0 & (1 << 44) == 0 && dw0 & (3 << 42) == 0
                && dw0 & (1 << 15) == 0 && ContextDescriptor.t0szRange.contains(t0sz) && tg0 == 0
            guard ok else { return .failure(ConfigFault(kind: .badCD)) }
            return .success(.stage1(asid: UInt16(dw0 >> 48), ttb: dw1 & ContextDescriptor.ttbMask,
                                    inputBits: 64 - Int(t0sz), record: dw0 & ContextDescriptor.record != 0))
        case 0b110:
            guard profile.stage2, ste.dw2 & StreamTableEntry.s2AArch64 != 0 else {
                return .failure(ConfigFault(kind: .badSTE))
            }
            let t0sz = Int(ste.dw2 >> 32 & 0x3F)
            let sl0 = Int(ste.dw2 >> 38 & 3)
            let tg = ste.dw2 >> 46 & 3
            // S2T0SZ from MAX(16, 64 - IAS) to 39 (IHI 0070 5.2; ILLEGAL outside from v3.1).
            guard tg == 0, sl0 <= 2, t0sz >= max(16, 64 - profile.intermediateAddressBits), t0sz <= 39 else {
                return .failure(ConfigFault(kind: .badSTE))
            }
            return .success(.stage2(vmid: UInt16(truncatingIfNeeded: ste.dw2), ttb: ste.dw3 & StreamTableEntry.s2TTBMask,
                                    inputBits: 64 - t0sz, startLevel: 2 - sl0,
                                    record: ste.dw2 & StreamTableEntry.s2Record != 0))
        default:
            return .failure(ConfigFault(kind: .badSTE))
        }
    }

    /// VMSAv8-64 4 KiB-granule walk (Arm ARM D8.2); the start level may index
    /// concatenated tables (stage 2).
    func walk(_ root: UInt64, input: UInt64, inputBits: Int, startLevel: Int, stage2: Bool)
        -> Result<TLBEntry, ConfigFault>
    {
        var table = root
        var level = startLevel
        while true {
            let shift = UInt64(12 + 9 * (3 - level))
            let indexBits = level == startLevel ? UInt64(inputBits) - shift : 9
            let index = (input >> shift) & ((1 << indexBits) - 1)
            let d = load(table + index * 8)
            guard d & 1 != 0 else { return .failure(ConfigFault(kind: .translation)) }
            if level < 3 && d & 2 != 0 {
                table = d & 0x0000_FFFF_FFFF_F000
                level += 1
                continue
            }
            if level == 3 && d & 2 == 0 { return .failure(ConfigFault(kind: .translation)) }
            if level < 1 { return .failure(ConfigFault(kind: .translation)) }
            guard d & (1 << 10) != 0 else { return .failure(ConfigFault(kind: .access)) }
            let outMask: UInt64 = 0x0000_FFFF_FFFF_F000 & ~((1 << shift) - 1)
            let pa = (d & outMask) | (input & ((1 << shift) - 1) & ~0xFFF)
            if stage2 {
                return .success(TLBEntry(pa: pa, writable: d & (1 << 7) != 0, readable: d & (1 << 6) != 0))
            }
            return .success(TLBEntry(pa: pa, writable: d & (1 << 7) == 0, readable: true))
        }
    }

    func fault(_ kind: SMMUEvent.Kind, _ sid: UInt32, _ iova: UInt64, _ write: Bool, _ recordFault: Bool,
               s2: Bool, ipa: UInt64) -> DMAResult {
        if recordFault { record(ConfigFault(kind: kind), sid: sid, iova: iova, write: write, s2: s2, ipa: ipa) }
        return .fault(kind)
    }

    static func id(_ k: SMMUEvent.Kind) -> UInt64 {
        switch k {
        case .badStreamID: return 0x02
        case .badSTE: return 0x04
        case .badCD: return 0x0A
        case .translation: return 0x10
        case .access: return 0x12
        case .permission: return 0x13
        default: return 0xFF
        }
    }

    func record(_ f: ConfigFault, sid: UInt32, iova: UInt64, write: Bool, s2: Bool = false, ipa: UInt64 = 0) {
        guard cr0 & CR0.eventQueueEnable != 0 else { return }
        let abortActive = (gerror ^ gerrorn) & GERROR.eventQueueAbortError != 0
        // Architecturally the queue is not writable while EVENTQ_ABT_ERR is
        // active (IHI 0070 7.2.1); QEMU 7.2 does not look at it.
        if abortActive && !profile.overflowViaGERROR { return }
        if eventWritesAbort {
            // A synchronous abort: PROD does not move, the record is lost (7.2.2).
            if !abortActive { gerror ^= GERROR.eventQueueAbortError }
            return
        }
        let log2 = evtqLog2
        let prod = QueueIndex(evtqProd, log2Entries: log2)
        let cons = QueueIndex(evtqCons, log2Entries: log2)
        if prod.isFull(consumer: cons) {
            if profile.overflowViaGERROR {
                if !abortActive { gerror ^= GERROR.eventQueueAbortError }
            } else if evtqProd & EventQueue.overflowFlag == evtqCons & EventQueue.overflowFlag {
                // OVFLG toggles only when no overflow is already pending (7.4).
                evtqProd ^= EventQueue.overflowFlag
            }
            return
        }
        let translationClass: UInt64 = f.kind.isTranslationFault ? 2 : 0
        let dw0 = Self.id(f.kind) | UInt64(sid) << 32
        let dw1 = (write ? 0 : SMMUEvent.readNotWrite) | (s2 ? SMMUEvent.stage2Fault : 0) | translationClass << 40
        let slot = (evtqBase & QueueBase.addressMask) + UInt64(prod.index) * 32
        memory.deviceStore(PhysAddr(slot), dw0)
        memory.deviceStore(PhysAddr(slot + 8), dw1)
        memory.deviceStore(PhysAddr(slot + 16), iova)
        memory.deviceStore(PhysAddr(slot + 24), s2 ? ipa & SMMUEvent.ipaMask : 0)
        evtqProd = prod.advanced().position | (evtqProd & EventQueue.overflowFlag)
    }
}

extension StreamTableEntry: CustomStringConvertible {
    public var description: String {
        (0..<8).map { String(self[word: $0], radix: 16) }.joined(separator: " ")
    }
}
