import XCTest
import AArch64
import Translation
import HostFakes
@testable import SMMUv3

/// Table pages for a P2M or a mirror over the SMMU tests' RAM.
typealias TestTablePool = FreeListPool<FakeMemory>

/// Hands every removed leaf's frames to the batch (as the page-state layer does
/// for foreign mappings), so the test can see when they are released.
struct HoldingListener: P2MEntryListener {
    mutating func entryRemoved<R: PageReferenceReleaser>(
        _ gfn: GFN, mfn: MFN, count: UInt64, type: P2MType, batch: inout FlushBatch<R>
    ) {
        batch.holdReference(mfn, count: count)
    }
}

/// Runs a check at the moment references are released: after the SMMU
/// invalidation must have completed.
struct CheckingReleaser: PageReferenceReleaser {
    final class Log { var releases = 0; var held: [MFN] = [] }
    let log = Log()
    let check: () -> Void
    mutating func hold(_ mfn: MFN, count: UInt64) { log.held.append(mfn) }
    mutating func releaseHeld() {
        check()
        log.releases += 1
    }
}

typealias TestHandle = SMMUHandle<FakeSMMU, FakeMemory, RecordingCache>
typealias TestMirror = Stage1Mirror<FakeSMMU, FakeMemory, RecordingCache, TestTablePool>

/// A brought-up SMMU in a handle, for the P2M hooks.
struct HookHarness {
    let memory = FakeMemory()
    let fake: FakeSMMU
    var allocator = FakeFrameAllocator()
    let handle: TestHandle

    init(_ profile: FakeSMMU.Profile, configuration: SMMUConfiguration = SMMUConfiguration()) throws {
        fake = FakeSMMU(profile: profile, memory: memory)
        handle = SMMUHandle(try TestSMMU.bringUp(registers: fake, memory: memory, cache: RecordingCache(memory: memory),
                                                 allocator: &allocator, configuration: configuration))
    }

    func p2mPool() -> TestTablePool { TestTablePool(memory: memory, first: MFN(0x60000), count: 64) }
    func mirrorPool(count: Int = 64) -> TestTablePool { TestTablePool(memory: memory, first: MFN(0x61000), count: count) }

    /// Commands the fake executed since `mark`.
    func commands(since mark: Int) -> [Command] { Array(fake.consumedCommands[mark...]) }
}
