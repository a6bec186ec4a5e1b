import XCTest
import AArch64
import Translation
@testable import SMMUv3

typealias TestSMMU = SMMU<FakeSMMU, FakeMemory, RecordingCache>

/// A brought-up driver over a fake SMMU and fake RAM.
struct Harness: ~Copyable {
    let memory: FakeMemory
    let fake: FakeSMMU
    var allocator = FakeFrameAllocator()
    var smmu: TestSMMU
    var cacheLog: RecordingCache.Log { smmu.cache.log }

    init(_ profile: FakeSMMU.Profile, configuration: SMMUConfiguration = SMMUConfiguration()) throws {
        memory = FakeMemory()
        fake = FakeSMMU(profile: profile, memory: memory)
        smmu = try TestSMMU.bringUp(registers: fake, memory: memory, cache: RecordingCache(memory: memory),
                            allocator: &allocator, configuration: configuration)
    }

    /// A stage-1 domain over a fresh test table (39-bit IOVA).
    mutating func stage1Domain(asid: UInt16) throws -> (Stage1Domain, TestTables) {
        let dirtyBefore = memory.dirtyLines
        let tables = TestTables(memory: memory, stage: .stage1, inputBits: 39, allocator: &allocator)
        allocator = tables.allocator
        memory.dirtyLines = dirtyBefore.intersection(memory.dirtyLines)
        let domain = try smmu.makeStage1Domain(asid: asid, root: tables.root, inputBits: 39, mair: 0xFF,
                                               allocator: &allocator)
        return (domain, tables)
    }

    /// A stage-2 domain over a fresh test table (40-bit IPA, level-1 start, two concatenated roots).
    mutating func stage2Domain(vmid: UInt16) -> (Stage2Domain, TestTables) {
        let dirtyBefore = memory.dirtyLines
        let tables = TestTables(memory: memory, stage: .stage2, inputBits: 40, allocator: &allocator)
        allocator = tables.allocator
        memory.dirtyLines = dirtyBefore.intersection(memory.dirtyLines)
        return (Stage2Domain(vmid: vmid, root: tables.root.address, vtcr: tables.vtcr), tables)
    }

    mutating func map(_ tables: inout TestTables, _ iova: UInt64, to pa: UInt64, writable: Bool = true) {
        let dirtyBefore = memory.dirtyLines
        tables.allocator = allocator
        tables.map(iova, to: pa, writable: writable)
        allocator = tables.allocator
        // The test tables stand in for Translation's engine, which cleans what it
        // writes for a non-coherent walker: clean only the lines this map dirtied.
        memory.dirtyLines = dirtyBefore.intersection(memory.dirtyLines)
    }

    mutating func unmap(_ tables: inout TestTables, _ iova: UInt64) {
        let dirtyBefore = memory.dirtyLines
        tables.unmap(iova)
        memory.dirtyLines = dirtyBefore.intersection(memory.dirtyLines)
    }

    mutating func drain() -> ([SMMUEvent], EventDrainResult) {
        var events: [SMMUEvent] = []
        let result = smmu.drainEvents { events.append($0) }
        return (events, result)
    }
}

/// Bring-up that is expected to fail: the error, or nil if it succeeded.
func bringUpError(_ fake: FakeSMMU, _ memory: FakeMemory, _ allocator: inout FakeFrameAllocator,
                  _ configuration: SMMUConfiguration = SMMUConfiguration()) -> BringUpError? {
    do {
        _ = try TestSMMU.bringUp(registers: fake, memory: memory, cache: RecordingCache(memory: memory),
                                 allocator: &allocator, configuration: configuration)
        return nil
    } catch {
        return error
    }
}
