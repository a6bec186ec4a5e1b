import AArch64

extension SMMU {
    /// Write `new` into the live STE at `address` so that the SMMU, which may
    /// fetch any dword at any time with only 64-bit single-copy atomicity
    /// (IHI 0070 3.21.3), never sees a valid, translating entry made of old
    /// and new dwords:
    /// - the entry does not translate now (V=0, or Config=abort): write
    ///   dw1..dw7, clean, DSB, then dw0, clean, CFGI_STE + CMD_SYNC;
    /// - only one dword differs: write it in place, CFGI_STE + CMD_SYNC;
    /// - otherwise break first: dw0 = abort, CFGI_STE + CMD_SYNC, then as above.
    mutating func installEntry(_ entry: StreamTableEntry, for stream: StreamID, at address: PhysAddr)
        throws(CommandQueueError)
    {
        // One copy whose dwords are read in place (see `StreamTableEntry.word`).
        var new = entry
        // Bit i set: dword i differs (one pass over the live entry's dwords,
        // read in place rather than into a copy of the whole entry).
        var differing: UInt8 = 0
        for i in 0..<StreamTableEntry.dwordCount
        where memory.load64(address.adding(UInt64(i) &* 8)) != StreamTableEntry.word(i, in: &new) {
            differing |= 1 << i
        }
        guard differing != 0 else { return }
        var current = StreamTableEntry()
        current.dw0 = memory.load64(address)  // V and Config decide liveness
        let live = current.isLive
        if live && differing.nonzeroBitCount == 1 {
            let i = differing.trailingZeroBitCount
            storeSTEWord(i, StreamTableEntry.word(i, in: &new), at: address)
            try push(.cfgiSTE(stream: stream))
            try sync()
            return
        }
        if live {
            let abort = StreamTableEntry.abort()
            storeSTEWord(0, abort.dw0, at: address)
            try push(.cfgiSTE(stream: stream))
            try sync()
            if new.dw0 == abort.dw0 {
                // Going to abort (detach): the other dwords are now ignored; clear
                // them without another invalidation.
                storeDwordsAfterFirst(&new, differing: differing, at: address)
                return
            }
        }
        storeDwordsAfterFirst(&new, differing: differing, at: address)
        storeSTEWord(0, new.dw0, at: address)
        try push(.cfgiSTE(stream: stream))
        try sync()
    }

    /// dw1..dw7 of `new` where `differing` marks them, then clean and DSB: the
    /// SMMU sees them before anything written after this returns.
    @_transparent mutating func storeDwordsAfterFirst(_ new: inout StreamTableEntry, differing: UInt8,
                                                      at address: PhysAddr) {
        for i in 1..<StreamTableEntry.dwordCount where differing & (1 << i) != 0 {
            memory.store64(address.adding(UInt64(i) * 8), StreamTableEntry.word(i, in: &new))
        }
        if !coherent { cache.clean(address, bytes: StreamTableEntry.bytes) }
        cache.synchronize()
    }

    mutating func storeSTEWord(_ i: Int, _ value: UInt64, at address: PhysAddr) {
        let wordAddress = address.adding(UInt64(i) * 8)
        memory.store64(wordAddress, value)
        if !coherent { cache.clean(wordAddress, bytes: 8) }
        cache.synchronize()
    }

    /// The STE `stream` currently has (nil if its L2 array does not exist).
    public func entry(for stream: StreamID) -> StreamTableEntry? {
        streamTable.entryAddress(stream, memory: memory).map { streamTable.readEntry(at: $0, memory: memory) }
    }

    // MARK: Domains

    /// Allocate and write the CD of a stage-1 domain whose table (built with
    /// the stage-1 descriptor format) is rooted at `root`. Give each distinct
    /// table its own ASID (QEMU's IOTLB is keyed by ASID alone, trap 7).
    public mutating func makeStage1Domain<A: ContiguousFrameAllocator>(
        asid: UInt16, root: MFN, inputBits: Int, mair: UInt64, allocator: inout A
    ) throws(AttachError) -> Stage1Domain {
        guard features.stage1 else { throw .stage1Unsupported }
        guard features.asid16 || asid <= UInt8.max else { throw .asidOutOfRange(asid) }
        let t0sz = UInt64(64 - inputBits)
        guard inputBits > 0 && inputBits <= 64, ContextDescriptor.t0szRange.contains(t0sz) else {
            throw .inputBitsOutOfRange(inputBits)
        }
        guard root.address.raw >> UInt64(features.outputAddressBits) == 0 else { throw .rootOutOfRange(root.address) }
        guard !attachments.usesStage1ASID(asid) else { throw .domainInUse(asid: asid) }
        let slot: PhysAddr
        if let released = releasedContextDescriptors {
            let link = memory.load64(released.adding(8))
            releasedContextDescriptors = link == 0 ? nil : PhysAddr(link & ~1)
            slot = released
        } else {
            if let fresh = freshContextDescriptor {
                slot = fresh
            } else {
                guard let frame = allocator.allocateZeroed(1, memory: memory) else {
                    throw .outOfMemory(frames: 1)
                }
                slot = frame.address
            }
            // Lowest slot first; after the frame's last slot a new frame is needed.
            let next = slot.adding(ContextDescriptor.bytes)
            freshContextDescriptor = next.isPageAligned ? nil : next
        }
        let cd = ContextDescriptor.stage1(asid: asid, root: root.address, inputBits: inputBits,
                                          ipsCode: features.outputAddressSizeCode, mair: mair, coherent: coherent)
        // dw1..dw7 first, dw0 (V) last: no STE points here yet, but the order
        // costs nothing and keeps the rule uniform.
        // Named dwords (the word subscript reads a copy of the whole CD), then
        // dw4..dw7, zero; the slot may be a released one holding a link in dw1.
        memory.store64(slot.adding(8), cd.dw1)
        memory.store64(slot.adding(16), cd.dw2)
        memory.store64(slot.adding(24), cd.dw3)
        for i in 4..<ContextDescriptor.dwordCount { memory.store64(slot.adding(UInt64(i) &* 8), 0) }
        cache.synchronize()
        memory.store64(slot, cd.dw0)
        if !coherent { cache.clean(slot, bytes: ContextDescriptor.bytes) }
        cache.synchronize()
        return Stage1Domain(asid: asid, root: root.address, inputBits: inputBits, contextDescriptor: slot)
    }

    /// Retire a stage-1 domain once no stream uses it: its CD is cleared
    /// (V=0; dw1 links the released slots), its ASID's TLB entries are
    /// invalidated (so a later domain reusing the ASID starts clean) and the
    /// CD slot is reused by the next `makeStage1Domain`.
    public mutating func releaseStage1Domain(_ domain: Stage1Domain) throws(AttachError) {
        for i in 0..<attachments.count where attachments[i].domain == .stage1(domain) {
            throw .domainInUse(asid: domain.asid)
        }
        // Cleared (V=0) but for dw1, the link to the slot released before it.
        var link: UInt64 = 0
        if let next = releasedContextDescriptors { link = next.raw | 1 }
        for i in 0..<ContextDescriptor.dwordCount {
            memory.store64(domain.contextDescriptor.adding(UInt64(i) * 8), i == 1 ? link : 0)
        }
        if !coherent { cache.clean(domain.contextDescriptor, bytes: ContextDescriptor.bytes) }
        do {
            try push(.tlbiNHASID(asid: domain.asid))
            try sync()
        } catch {
            throw .commandQueue(error)
        }
        releasedContextDescriptors = domain.contextDescriptor
    }

    /// Point `stream` at `domain`: stage 1 through the domain's CD, stage 2
    /// straight at the domain's P2M. Re-attaching to another domain goes
    /// through an abort STE (several dwords change).
    public mutating func attach<A: ContiguousFrameAllocator>(_ stream: StreamID, to domain: SMMUDomain,
                                                             allocator: inout A) throws(AttachError) {
        let ste: StreamTableEntry
        switch domain {
        case .stage1(let d):
            guard features.stage1 else { throw .stage1Unsupported }
            ste = .stage1(contextDescriptor: d.contextDescriptor, coherent: coherent,
                          attributeTypesOverride: features.attributeTypesOverride)
        case .stage2(let d):
            guard features.stage2 else { throw .stage2Unsupported }
            guard coherent else { throw .stage2NeedsCoherentSMMU }
            guard features.vmid16 || d.vmid <= UInt8.max else { throw .vmidOutOfRange(d.vmid) }
            guard d.root.raw >> UInt64(features.outputAddressBits) == 0 else { throw .rootOutOfRange(d.root) }
            // STE.S2T0SZ must describe an input range the SMMU supports: outside
            // it the STE is ILLEGAL from SMMUv3.1 (C_BAD_STE on every access) and
            // CONSTRAINED UNPREDICTABLE on v3.0 (IHI 0070 5.2, STE.S2T0SZ).
            let inputBits = 64 - Int(d.vtcr & Stage2Domain.t0szMask)
            guard features.stage2InputBits.contains(inputBits) else {
                throw .stage2InputBitsOutOfRange(inputBits, supported: features.stage2InputBits)
            }
            ste = .stage2(vmid: d.vmid, vtcr: d.vtcr, root: d.root,
                          attributeTypesOverride: features.attributeTypesOverride)
        }
        let address = try streamTable.ensureEntry(stream, memory: memory, cache: &cache, coherent: coherent,
                                                  allocator: &allocator)
        do { try installEntry(ste, for: stream, at: address) } catch { throw .commandQueue(error) }
        attachments.set(SMMUAttachment(stream: stream, domain: domain))
    }

    /// Make `stream` abort all its DMA (V=1, Config=abort, no events).
    public mutating func detach(_ stream: StreamID) throws(AttachError) {
        guard let i = attachments.index(of: stream), let address = streamTable.entryAddress(stream, memory: memory)
        else { throw .notAttached(stream) }
        do { try installEntry(.abort(), for: stream, at: address) } catch { throw .commandQueue(error) }
        attachments.remove(at: i)
    }

    /// Which domain `stream` is attached to.
    public func domain(of stream: StreamID) -> SMMUDomain? {
        guard let i = attachments.index(of: stream) else { return nil }
        return attachments[i].domain
    }
}
