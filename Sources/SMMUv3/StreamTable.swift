import AArch64

/// The stream table (IHI 0070 3.3): linear, or two-level with SPLIT = 8 and L2
/// arrays allocated when a span's first StreamID is used.
public struct StreamTable: Sendable {
    public enum Format: Equatable, Sendable {
        case linear
        /// `split`: StreamID bits resolved by an L2 array (2^split STEs).
        case twoLevel(split: Int)
    }

    public let format: Format
    /// log2 of the number of StreamIDs covered (STRTAB_BASE_CFG.LOG2SIZE).
    public let streamIDBits: Int
    /// The linear table, or the L1 descriptor array.
    public let base: PhysAddr
    /// Frames of the linear table or L1 array (for `freeContiguous`).
    public let baseFrames: Int

    /// Linux's choice: 256 STEs (16 KiB) per L2 array.
    public static let defaultSplit = 8
    static let framesPerL2Array = (StreamTableEntry.bytes << UInt64(defaultSplit)) >> PageSize.shift4K

    public static func frames(forBytes bytes: UInt64) -> Int {
        Int(max(1, (bytes + PageSize.offsetMask4K) >> PageSize.shift4K))
    }

    /// Bytes of the linear table or L1 array for this layout.
    @_transparent public static func baseBytes(format: Format, streamIDBits: Int) -> UInt64 {
        switch format {
        case .linear: return StreamTableEntry.bytes << UInt64(streamIDBits)
        case .twoLevel(let split): return 8 << UInt64(streamIDBits - split)
        }
    }

    public init(format: Format, streamIDBits: Int, base: PhysAddr, baseFrames: Int) {
        self.format = format
        self.streamIDBits = streamIDBits
        self.base = base
        self.baseFrames = baseFrames
    }

    @_transparent public var baseConfig: UInt32 {
        switch format {
        case .linear:
            return StreamTableBase.formatLinear << StreamTableBase.formatShift
                | UInt32(streamIDBits) << StreamTableBase.log2SizeShift
        case .twoLevel(let split):
            return StreamTableBase.formatTwoLevel << StreamTableBase.formatShift
                | UInt32(split) << StreamTableBase.splitShift
                | UInt32(streamIDBits) << StreamTableBase.log2SizeShift
        }
    }
    public var baseRegister: UInt64 { StreamTableBase.readAllocate | base.raw & StreamTableBase.addressMask }

    public func contains(_ stream: StreamID) -> Bool { UInt64(stream.raw) >> UInt64(streamIDBits) == 0 }

    /// Address of the L1 descriptor covering `stream` (two-level only).
    @usableFromInline func l1DescriptorAddress(_ stream: StreamID, split: Int) -> PhysAddr {
        base.adding(UInt64(stream.raw >> UInt32(split)) * 8)
    }

    /// Where `stream`'s STE lives, or nil if its L2 array is not allocated yet.
    @_transparent public func entryAddress<M: PhysicalMemory>(_ stream: StreamID, memory: M) -> PhysAddr? {
        guard contains(stream) else { return nil }
        switch format {
        case .linear:
            return base.adding(UInt64(stream.raw) * StreamTableEntry.bytes)
        case .twoLevel(let split):
            let l1 = StreamTableL1Descriptor(raw: memory.load64(l1DescriptorAddress(stream, split: split)))
            guard l1.isValid else { return nil }
            let index = UInt64(stream.raw) & ((1 << UInt64(split)) - 1)
            return l1.l2Table.adding(index * StreamTableEntry.bytes)
        }
    }

    /// Make sure `stream`'s STE exists, allocating its span's L2 array (all
    /// STEs V=0, cleaned before the L1 descriptor that publishes it).
    /// Transparent: its one caller, `SMMU.attach`, copied the whole table
    /// description (40 bytes, `bl memcpy`) to call it as a method.
    @_transparent public func ensureEntry<M: PhysicalMemory, C: CacheMaintenance, A: ContiguousFrameAllocator>(
        _ stream: StreamID, memory: M, cache: inout C, coherent: Bool, allocator: inout A
    ) throws(AttachError) -> PhysAddr {
        guard contains(stream) else { throw .streamOutOfRange(stream, bits: streamIDBits) }
        if let address = entryAddress(stream, memory: memory) { return address }
        guard case .twoLevel(let split) = format else { preconditionFailure("linear tables are complete") }
        let frames = Self.frames(forBytes: StreamTableEntry.bytes << UInt64(split))
        guard let l2 = allocator.allocateZeroed(frames, memory: memory) else { throw .outOfMemory(frames: frames) }
        let l2Bytes = StreamTableEntry.bytes << UInt64(split)
        if !coherent { cache.clean(l2.address, bytes: l2Bytes) }
        cache.synchronize()
        let descriptorAddress = l1DescriptorAddress(stream, split: split)
        memory.store64(descriptorAddress, StreamTableL1Descriptor.table(at: l2.address, split: split).raw)
        if !coherent { cache.clean(descriptorAddress, bytes: 8) }
        cache.synchronize()
        return entryAddress(stream, memory: memory)!
    }

    public func readEntry<M: PhysicalMemory>(at address: PhysAddr, memory: M) -> StreamTableEntry {
        var e = StreamTableEntry()
        for i in 0..<StreamTableEntry.dwordCount { e[word: i] = memory.load64(address.adding(UInt64(i) * 8)) }
        return e
    }
}
