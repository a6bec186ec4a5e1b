import AArch64
import Translation
@testable import SMMUv3

/// A minimal VMSAv8-64 4 KiB table writer for the tests (the product tables
/// come from Translation's engine); enough to give the fake SMMU something
/// to walk. Descriptor bits: Arm ARM D8.3.
struct TestTables {
    enum Stage { case stage1, stage2 }
    let memory: FakeMemory
    let stage: Stage
    let inputBits: Int
    let root: MFN
    var allocator: FakeFrameAllocator

    init(memory: FakeMemory, stage: Stage, inputBits: Int, allocator: inout FakeFrameAllocator) {
        self.memory = memory
        self.stage = stage
        self.inputBits = inputBits
        // Stage 2 with a 40-bit IPA starts at level 1 with two concatenated tables.
        let rootFrames = stage == .stage2 && inputBits == 40 ? 2 : 1
        root = allocator.allocateContiguous(count: rootFrames, alignmentFrames: rootFrames)!
        for i in 0..<rootFrames { memory.zeroFrame(root.adding(UInt64(i))) }
        self.allocator = allocator
    }

    var startLevel: Int { stage == .stage2 && inputBits == 40 ? 1 : 4 - (inputBits - 12 + 8) / 9 }

    static let valid: UInt64 = 0b11
    static let accessFlag: UInt64 = 1 << 10
    static let innerShareable: UInt64 = 3 << 8

    /// Map one 4 KiB page.
    mutating func map(_ input: UInt64, to pa: UInt64, writable: Bool = true) {
        var table = root.address.raw
        var level = startLevel
        while level < 3 {
            let shift = UInt64(12 + 9 * (3 - level))
            let bits = level == startLevel ? UInt64(inputBits) - shift : 9
            let slot = table + ((input >> shift) & ((1 << bits) - 1)) * 8
            var d = memory.load64(PhysAddr(slot))
            if d & 1 == 0 {
                let frame = allocator.allocateContiguous(count: 1, alignmentFrames: 1)!
                memory.zeroFrame(frame)
                d = frame.address.raw | Self.valid
                memory.store64(PhysAddr(slot), d)
            }
            table = d & 0x0000_FFFF_FFFF_F000
            level += 1
        }
        let leafSlot = table + ((input >> 12) & 0x1FF) * 8
        let permissions: UInt64
        switch stage {
        case .stage1: permissions = writable ? 1 << 6 : 3 << 6          // AP[2:1]
        case .stage2: permissions = (writable ? 3 : 1) << 6 | 0xF << 2  // S2AP, MemAttr WB
        }
        memory.store64(PhysAddr(leafSlot), pa | permissions | Self.accessFlag | Self.innerShareable | Self.valid)
    }

    /// Remove one page's leaf entry (no invalidation: that is the driver's job).
    mutating func unmap(_ input: UInt64) {
        var table = root.address.raw
        var level = startLevel
        while level < 3 {
            let shift = UInt64(12 + 9 * (3 - level))
            let bits = level == startLevel ? UInt64(inputBits) - shift : 9
            let d = memory.load64(PhysAddr(table + ((input >> shift) & ((1 << bits) - 1)) * 8))
            guard d & 1 != 0 else { return }
            table = d & 0x0000_FFFF_FFFF_F000
            level += 1
        }
        memory.store64(PhysAddr(table + ((input >> 12) & 0x1FF) * 8), 0)
    }

    /// VTCR_EL2 for this stage-2 table: T0SZ, SL0, IRGN0/ORGN0 = WB, SH0 = inner, TG0 = 4K, PS = 40 bits.
    var vtcr: UInt64 {
        let t0sz = UInt64(64 - inputBits)
        let sl0: UInt64 = UInt64(2 - startLevel)
        return 1 << 31 | t0sz | sl0 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | 2 << 16
    }
}
